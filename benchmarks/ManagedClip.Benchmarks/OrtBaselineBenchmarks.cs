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
/// <para>Each method runs in its own process, minutes after the other side's, so on a host whose speed drifts
/// the ratios drift with it; the <c>compare</c> command (<see cref="Compare.InterleavedComparison"/>) alternates
/// both engines call by call in one process and reports paired ratios instead.</para>
/// </remarks>
[Config(typeof(OrtBaselineConfig))]
public class OrtBaselineBenchmarks
{
    private SideBySideWorkloads sides = null!;

    [GlobalSetup]
    public void Setup()
    {
        sides = new SideBySideWorkloads(SyntheticModelFolder.WeightsPath);
        sides.CheckBothSidesAgree(Console.Out);
    }

    [GlobalCleanup]
    public void Cleanup() => sides.Dispose();

    // ---- ONNX Runtime (baseline of each category) ----

    [Benchmark(Baseline = true), BenchmarkCategory(SideBySideWorkloads.ImageBatch1)]
    public float[] OrtImageBatch1() => sides.OrtImageBatch1();

    [Benchmark(Baseline = true), BenchmarkCategory(SideBySideWorkloads.ImageBatch8)]
    public float[] OrtImageBatch8() => sides.OrtImageBatch8();

    [Benchmark(Baseline = true), BenchmarkCategory(SideBySideWorkloads.PromptPadded)]
    public float[] OrtPromptPadded() => sides.OrtPromptPadded();

    [Benchmark(Baseline = true), BenchmarkCategory(SideBySideWorkloads.PromptUnpadded)]
    public float[] OrtPromptUnpadded() => sides.OrtPromptUnpadded();

    [Benchmark(Baseline = true), BenchmarkCategory(SideBySideWorkloads.LabelsPadded)]
    public float[] OrtLabelsPadded() => sides.OrtLabelsPadded();

    [Benchmark(Baseline = true), BenchmarkCategory(SideBySideWorkloads.LabelsUnpadded)]
    public float[] OrtLabelsUnpadded() => sides.OrtLabelsUnpadded();

    [Benchmark(Baseline = true), BenchmarkCategory(SideBySideWorkloads.ZeroShot)]
    public float[] OrtZeroShot() => sides.OrtZeroShot();

    // ---- ManagedClip: the same inputs through VisionTransformer / BertTextEncoder ----

    [Benchmark, BenchmarkCategory(SideBySideWorkloads.ImageBatch1)]
    public float[] ManagedClipImageBatch1() => sides.ManagedClipImageBatch1();

    [Benchmark, BenchmarkCategory(SideBySideWorkloads.ImageBatch8)]
    public float[] ManagedClipImageBatch8() => sides.ManagedClipImageBatch8();

    [Benchmark, BenchmarkCategory(SideBySideWorkloads.PromptPadded)]
    public float[] ManagedClipPromptPadded() => sides.ManagedClipPromptPadded();

    [Benchmark, BenchmarkCategory(SideBySideWorkloads.PromptUnpadded)]
    public float[] ManagedClipPromptUnpadded() => sides.ManagedClipPromptUnpadded();

    [Benchmark, BenchmarkCategory(SideBySideWorkloads.LabelsPadded)]
    public float[] ManagedClipLabelsPadded() => sides.ManagedClipLabelsPadded();

    [Benchmark, BenchmarkCategory(SideBySideWorkloads.LabelsUnpadded)]
    public float[] ManagedClipLabelsUnpadded() => sides.ManagedClipLabelsUnpadded();

    [Benchmark, BenchmarkCategory(SideBySideWorkloads.ZeroShot)]
    public float[] ManagedClipZeroShot() => sides.ManagedClipZeroShot();
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
