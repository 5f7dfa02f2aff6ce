using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using ManagedClip.Benchmarks.Onnx;

namespace ManagedClip.Benchmarks;

/// <summary>
/// ManagedClip against ONNX Runtime on the full-size BiomedCLIP towers, same weights, same inputs, one table.
/// Each category is one workload; the ONNX Runtime method is its baseline, so the Ratio columns read
/// "ManagedClip time / ONNX Runtime time".
/// </summary>
/// <remarks>
/// <para>Both sides start from the same normalised pixels and token ids (preprocessing and tokenization are
/// left out) and end with the same unnormalised features; zero-shot adds the same score math on both sides.
/// Text batches are handed to both sides as [count, length] ids: ONNX Runtime computes every position with
/// the mask, ManagedClip drops the trailing [PAD] ids and computes the real tokens only, as the library does.</para>
/// <para>Threads: ManagedClip runs with <c>Parallelism.MaxDegree</c> at its default, all cores; ONNX Runtime
/// with an intra-op pool of all cores shared by both sessions (global thread pool, per-session threads off),
/// one inter-op thread, sequential execution, every graph optimisation (see <see cref="OrtTowers"/>).</para>
/// <para>Weights: <c>MANAGEDCLIP_SYNTH_DIR</c> (default /tmp/managedclip-test-synthetic-full-v1) holds the
/// full-size <c>model.safetensors</c>. The ONNX graphs are <c>vision.onnx</c>/<c>text.onnx</c> beside it, else
/// exported once to a temp-folder cache (≈ 30 s, 780 MB). Setup checks that both sides produce the same features.
/// Run (≈ 10 min on 2 cores):
/// <c>dotnet run -c Release --project benchmarks/ManagedClip.Benchmarks -- --filter '*OrtBaseline*'</c></para>
/// </remarks>
[Config(typeof(OrtBaselineConfig))]
public class OrtBaselineBenchmarks
{
    private const string ImageBatch1 = "Image batch 1";
    private const string ImageBatch8 = "Image batch 8";
    private const string PromptPadded = "Text 12 tokens, padded 256";
    private const string PromptUnpadded = "Text 12 tokens, unpadded";
    private const string LabelsPadded = "Text 16 labels, padded 256";
    private const string LabelsUnpadded = "Text 16 labels, unpadded";
    private const string ZeroShot = "Zero-shot 1 image x 5 labels";

    private OrtTowers ort = null!;
    private ManagedTowers managed = null!;
    private float[] pixels1 = null!;   // [1, 3, 224, 224]
    private float[] pixels8 = null!;   // [8, 3, 224, 224]
    private TextBatch promptPadded = null!, promptUnpadded = null!, labelsPadded = null!, labelsUnpadded = null!;
    private TextBatch zeroShotPrompts = null!; // [5, longest] with mask
    private float[] images1 = null!, images8 = null!;     // ManagedClip features [1, E], [8, E]
    private float[] prompt = null!, labels = null!;       // ManagedClip features [1, E], [16, E]
    private float[] zeroShotImage = null!, zeroShotTexts = null!; // ManagedClip features [1, E], [5, E]

    [GlobalSetup]
    public void Setup()
    {
        string weights = SyntheticModelFolder.WeightsPath;
        ort = new OrtTowers(OnnxExport.EnsureExported(weights));
        managed = new ManagedTowers(weights);
        pixels1 = BenchmarkInputs.Pixels(1);
        pixels8 = BenchmarkInputs.Pixels(8);
        promptPadded = BenchmarkInputs.Prompt(padToContext: true);
        promptUnpadded = BenchmarkInputs.Prompt(padToContext: false);
        labelsPadded = BenchmarkInputs.LabelPrompts(padToContext: true);
        labelsUnpadded = BenchmarkInputs.LabelPrompts(padToContext: false);
        zeroShotPrompts = BenchmarkInputs.ZeroShotPrompts();
        int e = managed.EmbedDim;
        images1 = new float[e];
        images8 = new float[8 * e];
        prompt = new float[e];
        labels = new float[BenchmarkInputs.LabelCount * e];
        zeroShotImage = new float[e];
        zeroShotTexts = new float[BenchmarkInputs.ZeroShotLabelCount * e];
        CheckBothSidesAgree();
    }

    [GlobalCleanup]
    public void Cleanup() => ort.Dispose();

    // ---- ONNX Runtime (baseline of each category) ----

    [Benchmark(Baseline = true), BenchmarkCategory(ImageBatch1)]
    public float[] OrtImageBatch1() => ort.EmbedImages(pixels1, 1);

    [Benchmark(Baseline = true), BenchmarkCategory(ImageBatch8)]
    public float[] OrtImageBatch8() => ort.EmbedImages(pixels8, 8);

    [Benchmark(Baseline = true), BenchmarkCategory(PromptPadded)]
    public float[] OrtPromptPadded() => OrtEmbedTexts(promptPadded);

    [Benchmark(Baseline = true), BenchmarkCategory(PromptUnpadded)]
    public float[] OrtPromptUnpadded() => OrtEmbedTexts(promptUnpadded);

    [Benchmark(Baseline = true), BenchmarkCategory(LabelsPadded)]
    public float[] OrtLabelsPadded() => OrtEmbedTexts(labelsPadded);

    [Benchmark(Baseline = true), BenchmarkCategory(LabelsUnpadded)]
    public float[] OrtLabelsUnpadded() => OrtEmbedTexts(labelsUnpadded);

    [Benchmark(Baseline = true), BenchmarkCategory(ZeroShot)]
    public float[] OrtZeroShot() =>
        ZeroShotScores.Probabilities(ort.EmbedImages(pixels1, 1), OrtEmbedTexts(zeroShotPrompts), managed.LogitScaleLog);

    // ---- ManagedClip: the same inputs through VisionTransformer / BertTextEncoder ----

    [Benchmark, BenchmarkCategory(ImageBatch1)]
    public float[] ManagedClipImageBatch1() => ManagedEmbedImages(pixels1, 1, images1);

    [Benchmark, BenchmarkCategory(ImageBatch8)]
    public float[] ManagedClipImageBatch8() => ManagedEmbedImages(pixels8, 8, images8);

    [Benchmark, BenchmarkCategory(PromptPadded)]
    public float[] ManagedClipPromptPadded() => ManagedEmbedTexts(promptPadded, prompt);

    [Benchmark, BenchmarkCategory(PromptUnpadded)]
    public float[] ManagedClipPromptUnpadded() => ManagedEmbedTexts(promptUnpadded, prompt);

    [Benchmark, BenchmarkCategory(LabelsPadded)]
    public float[] ManagedClipLabelsPadded() => ManagedEmbedTexts(labelsPadded, labels);

    [Benchmark, BenchmarkCategory(LabelsUnpadded)]
    public float[] ManagedClipLabelsUnpadded() => ManagedEmbedTexts(labelsUnpadded, labels);

    [Benchmark, BenchmarkCategory(ZeroShot)]
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
    private void CheckBothSidesAgree()
    {
        void Check(string what, float[] ortFeatures, float[] managedFeatures)
        {
            float scale = ortFeatures.Max(MathF.Abs), worst = 0;
            for (int i = 0; i < ortFeatures.Length; i++) worst = MathF.Max(worst, MathF.Abs(ortFeatures[i] - managedFeatures[i]));
            Console.WriteLine($"// {what}: max |ManagedClip − ONNX Runtime| = {worst:G3} (features up to {scale:G3})");
            if (!(worst <= 1e-3f * scale))
                throw new InvalidDataException($"{what}: ManagedClip and ONNX Runtime disagree by {worst:G3} (features up to {scale:G3}); " +
                    "are the ONNX graphs exported from the same model.safetensors?");
        }
        Check("image batch 8", OrtImageBatch8(), ManagedClipImageBatch8().ToArray());
        Check("16 labels padded", OrtLabelsPadded(), ManagedClipLabelsPadded().ToArray());
        Check("16 labels unpadded", OrtLabelsUnpadded(), ManagedClipLabelsUnpadded().ToArray());
        Check("zero-shot probabilities", OrtZeroShot(), ManagedClipZeroShot().ToArray());
    }
}

/// <summary>
/// One process per benchmark, 2 warm-ups and 10 measured calls: each call takes 0.02–5 s, so this gives stable
/// medians in about 10 minutes. Columns add median, min, max and the median ratio to the ONNX Runtime baseline.
/// </summary>
public sealed class OrtBaselineConfig : ManualConfig
{
    public OrtBaselineConfig()
    {
        AddJob(Job.Default.WithLaunchCount(1).WithWarmupCount(2).WithIterationCount(10));
        AddColumn(StatisticColumn.Median, StatisticColumn.Min, StatisticColumn.Max, new MedianRatioColumn(), CategoriesColumn.Default);
        AddLogicalGroupRules(BenchmarkLogicalGroupRule.ByCategory);
    }
}
