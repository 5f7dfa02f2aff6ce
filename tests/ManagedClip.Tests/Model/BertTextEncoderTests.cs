using ManagedClip.IO.Formats;
using ManagedClip.Kernels;
using ManagedClip.Model;
using Xunit.Abstractions;

namespace ManagedClip.Tests.Model;

/// <summary>
/// The text tower against PyTorch's outputs for the tiny model, stage by stage, from the reference input_ids.
/// The reference ran on 256 padded positions; we run on the real tokens, so per-token stages are compared on
/// rows 0..L−1 (padding rows are checked separately by running the padded ids). Tolerances as for the image
/// tower (README: float32 vs float64 differs by 2e-7 on these features; 1e-4 catches real mistakes).
/// </summary>
public class BertTextEncoderTests(ITestOutputHelper output)
{
    private const float StageTolerance = 1e-4f;
    private const float FeatureTolerance = 1e-4f;
    private const double MinimumCosine = 0.99999;

    // Batched, padded or concurrent runs do the same arithmetic per row in the same order: the GEMM cuts k into the
    // same 256-step blocks whatever the row count or task split, and attention, softmax and LayerNorm work row by
    // row. So they give the same bits.
    private const float SameComputationTolerance = 0f;

    // Two float32 computations of the same features in different summation orders, about 10 roundings deep: measured
    // 1.8e-7 on features of magnitude ≤ 2 (a few ulps); 1e-5 leaves an order of magnitude and is still 100 times
    // smaller than the difference a wrong eps or GELU form makes.
    private const float ReferenceKernelTolerance = 1e-5f;

    private static TinyModel Model => TinyModel.Instance;
    private static int Hidden => TinyModel.TextConfig.Hidden;

    public static IEnumerable<object[]> Texts => TinyModel.TextKeyData;

    /// <summary>
    /// Records the steps PyTorch recorded, by module name: embeddings (the output of its LayerNorm), layer 0, the last
    /// layer (its [CLS] rows only, last_hidden_cls) and text.proj.0 (its GELU fused in, proj_hidden).
    /// </summary>
    private static ForwardTrace TextTrace()
    {
        var text = Model.Text;
        return new ForwardTrace(text.Embeddings.Norm.Name, text.Layers[0].Name, text.Layers[^1].Name, text.Projection.Fc1.Name);
    }

    [Theory]
    [MemberData(nameof(Texts))]
    public void TextMatchesReferenceStageByStage(string text)
    {
        var ids = Model.RealIds(text);
        var trace = TextTrace();
        var features = new float[TinyModel.EmbedDim];
        Model.Text.Forward(ids, [ids.Length], features, trace);

        string prefix = text + ".";
        int realRows = ids.Length * Hidden;
        TensorAssert.Close(prefix + "embeddings[0..L)", Model.Reference(prefix + "embeddings").AsSpan(0, realRows),
            trace[Model.Text.Embeddings.Norm.Name], StageTolerance, output);
        TensorAssert.Close(prefix + "layer0[0..L)", Model.Reference(prefix + "layer0").AsSpan(0, realRows),
            trace[Model.Text.Layers[0].Name], StageTolerance, output);
        TensorAssert.Close(prefix + "last_hidden_cls", Model.Reference(prefix + "last_hidden_cls"),
            trace[Model.Text.Layers[^1].Name], StageTolerance, output);
        TensorAssert.Close(prefix + "proj_hidden", Model.Reference(prefix + "proj_hidden"),
            trace[Model.Text.Projection.Fc1.Name], StageTolerance, output);
        var expected = Model.Reference(prefix + "features");
        TensorAssert.Close(prefix + "features", expected, features, FeatureTolerance, output);
        TensorAssert.Cosine(prefix + "features", expected, features, MinimumCosine);
    }

    [Fact]
    public void ReferenceKernelsGiveTheSameFeaturesUpToRounding()
    {
        // The whole tower once more on the plain-loop reference kernels: the same sums in another order, so the two
        // may differ by float32 rounding only, and both must match PyTorch.
        var sequences = TinyModel.TextKeys.Select(Model.RealIds).ToList();
        var fast = Model.TextFeatures(sequences);
        float[] reference;
        using (KernelPaths.Use(KernelPath.Reference)) reference = Model.TextFeatures(sequences);
        TensorAssert.Close("reference kernels vs fast kernels", reference, fast, ReferenceKernelTolerance, output);
        for (int i = 0; i < TinyModel.TextKeys.Length; i++)
        {
            string name = TinyModel.TextKeys[i] + ".features";
            TensorAssert.Close(name + " (reference kernels)", Model.Reference(name), reference.AsSpan(i * TinyModel.EmbedDim, TinyModel.EmbedDim),
                FeatureTolerance, output);
        }
    }

    /// <summary>
    /// Computing only the real tokens is exact, not an approximation: BERT masks every key whose id is 0, and the
    /// float.MinValue mask gives those keys a softmax weight of exactly 0. Feeding the padded ids (all 256 positions,
    /// trailing [PAD] keys masked, [PAD] queries computed) must therefore reproduce the reference on every row —
    /// padding rows included — and give the same features as the real tokens alone.
    /// </summary>
    [Theory]
    [MemberData(nameof(Texts))]
    public void PaddedIdsGiveTheReferenceOnAllRowsAndTheSameFeatures(string text)
    {
        var padded = Model.PaddedIds(text);
        var trace = TextTrace();
        var paddedFeatures = new float[TinyModel.EmbedDim];
        Model.Text.Forward(padded, [padded.Length], paddedFeatures, trace);

        string prefix = text + ".";
        TensorAssert.Close(prefix + "embeddings (256 rows)", Model.Reference(prefix + "embeddings"), trace[Model.Text.Embeddings.Norm.Name], StageTolerance);
        TensorAssert.Close(prefix + "layer0 (256 rows)", Model.Reference(prefix + "layer0"), trace[Model.Text.Layers[0].Name], StageTolerance, output);
        var realFeatures = Model.TextFeatures([Model.RealIds(text)]);
        TensorAssert.Close(prefix + "features padded vs real tokens", realFeatures, paddedFeatures, SameComputationTolerance, output);
    }

    [Fact]
    public void PadIdInsideTheTextIsMaskedAsAKey()
    {
        // text.11 is "[CLS] [SEP] [MASK] [PAD] [UNK] inside text": a written [PAD] (id 0) at position 4.
        var ids = Model.RealIds("text.11");
        Assert.Equal(0, ids[4]);
        var withPadKey = Model.TextFeatures([ids]);
        TensorAssert.Close("text.11 features", Model.Reference("text.11.features"), withPadKey, FeatureTolerance);

        // Were the [PAD] an ordinary key, the features would differ clearly: this shows the masked path matters.
        var unmaskedLookalike = (int[])ids.Clone();
        unmaskedLookalike[4] = 1; // [UNK]: same position, now attended to (different embedding too)
        var (diff, _) = TensorAssert.MaxAbsDiff(withPadKey, Model.TextFeatures([unmaskedLookalike]));
        Assert.True(diff > 1e-3, $"replacing the masked [PAD] changed features by only {diff:E2}");
    }

    [Fact]
    public void BatchOfDifferentLengthsEqualsOneAtATime()
    {
        var sequences = TinyModel.TextKeys.Select(Model.RealIds).ToArray(); // lengths 2 … 256, one with a [PAD] inside
        var batched = Model.TextFeatures(sequences);
        for (int i = 0; i < sequences.Length; i++)
        {
            var single = Model.TextFeatures([sequences[i]]);
            TensorAssert.Close($"batch row {i} ({TinyModel.TextKeys[i]}, {sequences[i].Length} tokens)", single,
                batched.AsSpan(i * TinyModel.EmbedDim, TinyModel.EmbedDim), SameComputationTolerance, output);
        }
    }

    [Fact]
    public void ConcurrentForwardCallsGiveTheSameFeatures()
    {
        var sequences = TinyModel.TextKeys.Select(Model.RealIds).ToArray();
        var sequential = sequences.Select(s => Model.TextFeatures([s])).ToArray();
        var concurrent = new float[sequences.Length][];
        Parallel.For(0, sequences.Length, new ParallelOptions { MaxDegreeOfParallelism = 4 },
            i => concurrent[i] = Model.TextFeatures([sequences[i]]));
        for (int i = 0; i < sequences.Length; i++)
            TensorAssert.Close($"concurrent {TinyModel.TextKeys[i]}", sequential[i], concurrent[i], SameComputationTolerance);
    }

    [Fact]
    public void UnpaddedLengthDropsOnlyTrailingPadding()
    {
        Assert.Equal(9, BertTextEncoder.UnpaddedLength(Model.PaddedIds("text.11"))); // keeps the [PAD] at position 4
        Assert.Equal(2, BertTextEncoder.UnpaddedLength(Model.PaddedIds("text.06"))); // empty text: [CLS] [SEP]
        Assert.Equal(256, BertTextEncoder.UnpaddedLength(Model.PaddedIds("text.05")));
    }

    [Fact]
    public void BadIdsAndLengthsAreRejectedWithAClearMessage()
    {
        var features = new float[TinyModel.EmbedDim];
        int vocab = TinyModel.TextConfig.VocabSize;

        var ex = Assert.Throws<ArgumentException>(() => Model.Text.Forward([2, vocab, 3], [3], features));
        Assert.Contains($"token id {vocab} at position 1", ex.Message);
        ex = Assert.Throws<ArgumentException>(() => Model.Text.Forward([2, -1, 3], [3], features));
        Assert.Contains("token id -1", ex.Message);

        int tooLong = TinyModel.TextConfig.MaxPositions + 1;
        ex = Assert.Throws<ArgumentException>(() => Model.Text.Forward(new int[tooLong], [tooLong], features));
        Assert.Contains($"{tooLong} tokens", ex.Message);

        ex = Assert.Throws<ArgumentException>(() => Model.Text.Forward([2, 3], [3], features));
        Assert.Contains("add up to 3", ex.Message);
        ex = Assert.Throws<ArgumentException>(() => Model.Text.Forward([0, 0], [2], features));
        Assert.Contains("only of [PAD]", ex.Message);
        Assert.Throws<ArgumentException>(() => Model.Text.Forward([2, 3], [], features));
        Assert.Throws<ArgumentException>(() => Model.Text.Forward([2, 3], [0, 2], new float[2 * TinyModel.EmbedDim]));
        Assert.Throws<ArgumentException>(() => Model.Text.Forward([2, 3], [2], new float[TinyModel.EmbedDim - 1]));
    }

    [Fact]
    public void ConfigThatDisagreesWithTheCheckpointNamesTheTensor()
    {
        using var weights = SafeTensorsFile.Open(Path.Combine(TestData.Tiny, "model.safetensors"));
        var ex = Assert.Throws<InvalidDataException>(() =>
            BertTextEncoder.Load(weights, TinyModel.TextConfig with { Intermediate = 512 }, TinyModel.EmbedDim));
        Assert.Contains("text.transformer.encoder.layer.0.intermediate.dense.weight", ex.Message);
        ex = Assert.Throws<InvalidDataException>(() =>
            BertTextEncoder.Load(weights, TinyModel.TextConfig, TinyModel.EmbedDim * 2));
        Assert.Contains("text.proj.0.weight", ex.Message);
    }
}
