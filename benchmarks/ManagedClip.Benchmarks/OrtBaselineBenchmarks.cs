using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using ManagedClip.Benchmarks.Onnx;

namespace ManagedClip.Benchmarks;

/// <summary>
/// ManagedClip against ONNX Runtime on the full-size BiomedCLIP towers, same weights, same inputs, one table.
/// Each category is one workload; the ONNX Runtime method is its baseline, so the Ratio column reads
/// "ManagedClip time / ONNX Runtime time".
/// </summary>
/// <remarks>
/// Needs <c>MANAGEDCLIP_SYNTH_DIR</c>: a folder with the full-size <c>model.safetensors</c> (e.g. the synthetic
/// weights). The ONNX graphs are taken from <c>vision.onnx</c>/<c>text.onnx</c> beside it, else exported once to
/// a temp-folder cache (≈ 30 s, 780 MB). Run:
/// <c>dotnet run -c Release --project benchmarks/ManagedClip.Benchmarks -- --filter *OrtBaseline*</c>.
/// </remarks>
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByCategory)]
[CategoriesColumn]
// Each call takes 0.1–5 s on a laptop-class CPU: a few iterations give stable means without an hour-long run.
[SimpleJob(launchCount: 1, warmupCount: 2, iterationCount: 8)]
public class OrtBaselineBenchmarks
{
    private const string ImageBatch1 = "Image batch 1";
    private const string ImageBatch8 = "Image batch 8";
    private const string PromptPadded = "Text 12 tokens, padded 256";
    private const string PromptUnpadded = "Text 12 tokens, unpadded";
    private const string LabelsPadded = "Text 16 labels, padded 256";
    private const string LabelsUnpadded = "Text 16 labels, unpadded";

    private OrtTowers ort = null!;
    private float[] pixels1 = null!;   // [1, 3, 224, 224]
    private float[] pixels8 = null!;   // [8, 3, 224, 224]
    private TextBatch promptPadded = null!, promptUnpadded = null!, labelsPadded = null!, labelsUnpadded = null!;

    /// <summary>Full-size weights file named by <c>MANAGEDCLIP_SYNTH_DIR</c>.</summary>
    public static string WeightsPath
    {
        get
        {
            string? directory = Environment.GetEnvironmentVariable("MANAGEDCLIP_SYNTH_DIR");
            if (string.IsNullOrEmpty(directory))
                throw new InvalidOperationException("Set MANAGEDCLIP_SYNTH_DIR to the folder holding the full-size model.safetensors.");
            return Path.Combine(directory, "model.safetensors");
        }
    }

    [GlobalSetup]
    public void Setup()
    {
        ort = new OrtTowers(OnnxExport.EnsureExported(WeightsPath));
        pixels1 = BenchmarkInputs.Pixels(1);
        pixels8 = BenchmarkInputs.Pixels(8);
        promptPadded = BenchmarkInputs.Prompt(padToContext: true);
        promptUnpadded = BenchmarkInputs.Prompt(padToContext: false);
        labelsPadded = BenchmarkInputs.LabelPrompts(padToContext: true);
        labelsUnpadded = BenchmarkInputs.LabelPrompts(padToContext: false);
    }

    [GlobalCleanup]
    public void Cleanup() => ort.Dispose();

    // ---- ONNX Runtime (baseline of each category) ----

    [Benchmark(Baseline = true), BenchmarkCategory(ImageBatch1)]
    public float[] OrtImageBatch1() => ort.EmbedImages(pixels1, 1);

    [Benchmark(Baseline = true), BenchmarkCategory(ImageBatch8)]
    public float[] OrtImageBatch8() => ort.EmbedImages(pixels8, 8);

    [Benchmark(Baseline = true), BenchmarkCategory(PromptPadded)]
    public float[] OrtPromptPadded() => EmbedTexts(promptPadded);

    [Benchmark(Baseline = true), BenchmarkCategory(PromptUnpadded)]
    public float[] OrtPromptUnpadded() => EmbedTexts(promptUnpadded);

    [Benchmark(Baseline = true), BenchmarkCategory(LabelsPadded)]
    public float[] OrtLabelsPadded() => EmbedTexts(labelsPadded);

    [Benchmark(Baseline = true), BenchmarkCategory(LabelsUnpadded)]
    public float[] OrtLabelsUnpadded() => EmbedTexts(labelsUnpadded);

    // ---- ManagedClip: one method per category above, same inputs, added when the towers land ----

    private float[] EmbedTexts(TextBatch batch) => ort.EmbedTexts(batch.InputIds, batch.AttentionMask, batch.Count, batch.Length);
}
