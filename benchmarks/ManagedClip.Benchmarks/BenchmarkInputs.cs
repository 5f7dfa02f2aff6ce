namespace ManagedClip.Benchmarks;

/// <summary>A batch of token ids and their mask, row-major [Count, Length].</summary>
/// <param name="InputIds">Token ids [Count, Length]; [PAD] = 0 fills each row after its [SEP].</param>
/// <param name="AttentionMask">1 for real tokens, 0 for [PAD] (open_clip's <c>id != 0</c>) [Count, Length].</param>
/// <param name="Count">Texts in the batch.</param>
/// <param name="Length">Positions per text: 256 when padded to the context, else the longest text's length.</param>
public sealed record TextBatch(long[] InputIds, long[] AttentionMask, int Count, int Length)
{
    /// <summary>
    /// The same texts as ManagedClip's text tower takes them: each row without its trailing [PAD] ids, rows
    /// stacked one after another (ids [ΣT]), with each text's token count T (lengths [Count]).
    /// </summary>
    public (int[] TokenIds, int[] Lengths) RealTokens()
    {
        var lengths = new int[Count];
        for (int row = 0; row < Count; row++)
            lengths[row] = InputIds.AsSpan(row * Length, Length).LastIndexOfAnyExcept(0L) + 1;
        var tokenIds = new int[lengths.Sum()];
        for (int row = 0, offset = 0; row < Count; offset += lengths[row++])
            for (int t = 0; t < lengths[row]; t++) tokenIds[offset + t] = (int)InputIds[row * Length + t];
        return (tokenIds, lengths);
    }
}

/// <summary>
/// Deterministic inputs for the side-by-side benchmarks, so ManagedClip and ONNX Runtime do identical work.
/// Values only need to be realistic in range: speed does not depend on them.
/// </summary>
public static class BenchmarkInputs
{
    /// <summary>Image side (224).</summary>
    public const int ImageSize = 224;

    /// <summary>open_clip's context length: texts padded to it are what <c>tokenize()</c> returns (256).</summary>
    public const int ContextLength = 256;

    /// <summary>Token count of the single prompt ([CLS] + 10 pieces + [SEP]).</summary>
    public const int PromptTokens = 12;

    /// <summary>Zero-shot label prompts in one batch ("this is a photo of {label}" for 16 labels).</summary>
    public const int LabelCount = 16;

    /// <summary>Labels of the zero-shot workload: one image against this many prompts.</summary>
    public const int ZeroShotLabelCount = 5;

    private const long ClsId = 2, SepId = 3, FirstWordId = 5, VocabularyLines = 28_895;

    /// <summary>Normalised pixels [count, 3, 224, 224] in the range CLIP normalisation produces (≈ −1.8…2.1).</summary>
    public static float[] Pixels(int count)
    {
        var random = new Random(20240611 + count);
        var pixels = new float[count * 3 * ImageSize * ImageSize];
        for (int i = 0; i < pixels.Length; i++) pixels[i] = random.NextSingle() * 3.9f - 1.8f;
        return pixels;
    }

    /// <summary>The single 12-token prompt, padded to 256 or not.</summary>
    public static TextBatch Prompt(bool padToContext) => Texts([PromptTokens], padToContext);

    /// <summary>
    /// 16 label prompts of 8–12 tokens (the template's 7 plus 1–5 label pieces), padded to 256 or to the longest.
    /// </summary>
    public static TextBatch LabelPrompts(bool padToContext) =>
        Texts(Enumerable.Range(0, LabelCount).Select(i => 8 + i % 5).ToArray(), padToContext);

    /// <summary>The 5 prompts of the zero-shot workload (8–12 tokens), padded to the longest, with their mask.</summary>
    public static TextBatch ZeroShotPrompts() =>
        Texts(Enumerable.Range(0, ZeroShotLabelCount).Select(i => 8 + i % 5).ToArray(), padToContext: false);

    private static TextBatch Texts(int[] tokenCounts, bool padToContext)
    {
        int length = padToContext ? ContextLength : tokenCounts.Max();
        var random = new Random(20240611 + tokenCounts.Length);
        var ids = new long[tokenCounts.Length * length]; // [count, length], [PAD] = 0
        for (int row = 0; row < tokenCounts.Length; row++)
        {
            var tokens = ids.AsSpan(row * length, length);
            tokens[0] = ClsId;
            for (int t = 1; t < tokenCounts[row] - 1; t++) tokens[t] = random.NextInt64(FirstWordId, VocabularyLines);
            tokens[tokenCounts[row] - 1] = SepId;
        }
        var mask = ids.Select(id => id != 0 ? 1L : 0L).ToArray();
        return new TextBatch(ids, mask, tokenCounts.Length, length);
    }
}
