using ManagedClip.Benchmarks.Onnx;

namespace ManagedClip.Benchmarks;

/// <summary>One workload run by both engines: the same inputs in, the same features (or probabilities) out.</summary>
/// <param name="Name">The workload, as the benchmark category and the comparison table name it.</param>
/// <param name="Ort">One ONNX Runtime call.</param>
/// <param name="ManagedClip">One ManagedClip call.</param>
/// <param name="IsSlow">Calls take seconds (texts padded to 256, 8 images), so a comparison gives it fewer rounds.</param>
internal sealed record Workload(string Name, Func<float[]> Ort, Func<float[]> ManagedClip, bool IsSlow);

/// <summary>
/// ONNX Runtime and ManagedClip on the full-size BiomedCLIP towers, loaded once, with the inputs of the seven
/// side-by-side workloads: the common ground of <see cref="OrtBaselineBenchmarks"/> (one BenchmarkDotNet process
/// per method) and <see cref="Compare.InterleavedComparison"/> (both engines in one process, alternating).
/// </summary>
/// <remarks>
/// Both sides start from the same normalised pixels and token ids and end with the same unnormalised features;
/// zero-shot adds the same score math on both sides. ManagedClip drops each text's trailing [PAD] ids, as the
/// library does; ONNX Runtime computes every position with the mask. <see cref="CheckBothSidesAgree"/> proves
/// the two compute the same thing before anything is timed.
/// </remarks>
internal sealed class SideBySideWorkloads : IDisposable
{
    public const string ImageBatch1 = "Image batch 1";
    public const string ImageBatch8 = "Image batch 8";
    public const string PromptPadded = "Text 12 tokens, padded 256";
    public const string PromptUnpadded = "Text 12 tokens, unpadded";
    public const string LabelsPadded = "Text 16 labels, padded 256";
    public const string LabelsUnpadded = "Text 16 labels, unpadded";
    public const string ZeroShot = "Zero-shot 1 image x 5 labels";

    private readonly OrtTowers ort;
    private readonly ManagedTowers managed;
    private readonly float[] pixels1 = BenchmarkInputs.Pixels(1);   // [1, 3, 224, 224]
    private readonly float[] pixels8 = BenchmarkInputs.Pixels(8);   // [8, 3, 224, 224]
    private readonly TextBatch promptPadded = BenchmarkInputs.Prompt(padToContext: true);
    private readonly TextBatch promptUnpadded = BenchmarkInputs.Prompt(padToContext: false);
    private readonly TextBatch labelsPadded = BenchmarkInputs.LabelPrompts(padToContext: true);
    private readonly TextBatch labelsUnpadded = BenchmarkInputs.LabelPrompts(padToContext: false);
    private readonly TextBatch zeroShotPrompts = BenchmarkInputs.ZeroShotPrompts(); // [5, longest] with mask
    // ManagedClip writes into caller-owned buffers, allocated once so its calls time the towers only.
    private readonly float[] images1, images8;            // [1, E], [8, E]
    private readonly float[] prompt, labels;              // [1, E], [16, E]
    private readonly float[] zeroShotImage, zeroShotTexts; // [1, E], [5, E]

    /// <summary>
    /// Loads both engines from the full-size <paramref name="weightsPath"/>; the ONNX graphs are the ones beside
    /// it, else exported once to a temp-folder cache (see <see cref="OnnxExport.EnsureExported"/>).
    /// </summary>
    public SideBySideWorkloads(string weightsPath)
    {
        ort = new OrtTowers(OnnxExport.EnsureExported(weightsPath));
        managed = new ManagedTowers(weightsPath);
        int e = managed.EmbedDim;
        images1 = new float[e];
        images8 = new float[8 * e];
        prompt = new float[e];
        labels = new float[BenchmarkInputs.LabelCount * e];
        zeroShotImage = new float[e];
        zeroShotTexts = new float[BenchmarkInputs.ZeroShotLabelCount * e];
    }

    /// <summary>The seven workloads, in the order the tables list them.</summary>
    public IReadOnlyList<Workload> All =>
    [
        new(ImageBatch1, OrtImageBatch1, ManagedClipImageBatch1, IsSlow: false),
        new(ImageBatch8, OrtImageBatch8, ManagedClipImageBatch8, IsSlow: true),
        new(PromptPadded, OrtPromptPadded, ManagedClipPromptPadded, IsSlow: true),
        new(PromptUnpadded, OrtPromptUnpadded, ManagedClipPromptUnpadded, IsSlow: false),
        new(LabelsPadded, OrtLabelsPadded, ManagedClipLabelsPadded, IsSlow: true),
        new(LabelsUnpadded, OrtLabelsUnpadded, ManagedClipLabelsUnpadded, IsSlow: false),
        new(ZeroShot, OrtZeroShot, ManagedClipZeroShot, IsSlow: false),
    ];

    // ---- ONNX Runtime ----

    public float[] OrtImageBatch1() => ort.EmbedImages(pixels1, 1);

    public float[] OrtImageBatch8() => ort.EmbedImages(pixels8, 8);

    public float[] OrtPromptPadded() => OrtEmbedTexts(promptPadded);

    public float[] OrtPromptUnpadded() => OrtEmbedTexts(promptUnpadded);

    public float[] OrtLabelsPadded() => OrtEmbedTexts(labelsPadded);

    public float[] OrtLabelsUnpadded() => OrtEmbedTexts(labelsUnpadded);

    public float[] OrtZeroShot() =>
        ZeroShotScores.Probabilities(ort.EmbedImages(pixels1, 1), OrtEmbedTexts(zeroShotPrompts), managed.LogitScaleLog);

    // ---- ManagedClip: the same inputs through VisionTransformer / BertTextEncoder ----

    public float[] ManagedClipImageBatch1() => ManagedEmbedImages(pixels1, 1, images1);

    public float[] ManagedClipImageBatch8() => ManagedEmbedImages(pixels8, 8, images8);

    public float[] ManagedClipPromptPadded() => ManagedEmbedTexts(promptPadded, prompt);

    public float[] ManagedClipPromptUnpadded() => ManagedEmbedTexts(promptUnpadded, prompt);

    public float[] ManagedClipLabelsPadded() => ManagedEmbedTexts(labelsPadded, labels);

    public float[] ManagedClipLabelsUnpadded() => ManagedEmbedTexts(labelsUnpadded, labels);

    public float[] ManagedClipZeroShot() =>
        ZeroShotScores.Probabilities(ManagedEmbedImages(pixels1, 1, zeroShotImage),
            ManagedEmbedTexts(zeroShotPrompts, zeroShotTexts), managed.LogitScaleLog);

    private float[] OrtEmbedTexts(TextBatch batch) => ort.EmbedTexts(batch.InputIds, batch.AttentionMask, batch.Count, batch.Length);

    private float[] ManagedEmbedImages(float[] pixels, int count, float[] features)
    {
        managed.EmbedImages(pixels, count, features);
        return features;
    }

    private float[] ManagedEmbedTexts(TextBatch batch, float[] features)
    {
        managed.EmbedTexts(batch, features);
        return features;
    }

    /// <summary>
    /// Both sides must compute the same features, or the timings compare different work (e.g. ONNX graphs
    /// exported from other weights). fp32 towers that sum in different orders differ by ~1e-5 of the feature
    /// scale; 1e-3 leaves room for that and still catches a wrong graph or wrong input, which differ by O(1).
    /// </summary>
    /// <param name="log">Gets one line per check with the largest difference found.</param>
    /// <exception cref="InvalidDataException">The two sides disagree.</exception>
    public void CheckBothSidesAgree(TextWriter log)
    {
        void Check(string what, float[] ortFeatures, float[] managedFeatures)
        {
            float scale = ortFeatures.Max(MathF.Abs), worst = 0;
            for (int i = 0; i < ortFeatures.Length; i++) worst = MathF.Max(worst, MathF.Abs(ortFeatures[i] - managedFeatures[i]));
            log.WriteLine($"// {what}: max |ManagedClip − ONNX Runtime| = {worst:G3} (features up to {scale:G3})");
            if (!(worst <= 1e-3f * scale))
                throw new InvalidDataException($"{what}: ManagedClip and ONNX Runtime disagree by {worst:G3} (features up to {scale:G3}); " +
                    "are the ONNX graphs exported from the same model.safetensors?");
        }
        Check("image batch 8", OrtImageBatch8(), ManagedClipImageBatch8().ToArray());
        Check("16 labels padded", OrtLabelsPadded(), ManagedClipLabelsPadded().ToArray());
        Check("16 labels unpadded", OrtLabelsUnpadded(), ManagedClipLabelsUnpadded().ToArray());
        Check("zero-shot probabilities", OrtZeroShot(), ManagedClipZeroShot().ToArray());
    }

    /// <inheritdoc/>
    public void Dispose() => ort.Dispose();
}
