using System.Diagnostics;
using System.Globalization;
using ManagedClip.IO.Formats;
using ManagedClip.Kernels;
using ManagedClip.Model;

namespace ManagedClip.Benchmarks.Profile;

/// <summary>
/// <c>profile [images]</c>: where the image tower's time goes, per kind of work, for a batch of 1 (default) or
/// more images on the full-size synthetic weights (<c>MANAGEDCLIP_SYNTH_DIR</c>). Times 20 passes of
/// <see cref="ProfiledVisionTower"/> after 3 warm-ups, prints the median of each stage as a markdown table with
/// its GFLOPS, and the real <c>VisionTransformer.Forward</c>'s median over 20 passes interleaved with the replica's, to check
/// the replica's total.
/// </summary>
internal static class VisionProfile
{
    public const string Command = "profile";

    private const int Runs = 20, WarmUps = 3;

    public static int Run(string[] args)
    {
        int images = 1;
        if (args.Length > 1 || (args.Length == 1 && (!int.TryParse(args[0], out images) || images is < 1 or > 64)))
            throw new ArgumentException($"usage: {Command} [images]; images is a batch size from 1 to 64 (got '{string.Join(' ', args)}')");

        var config = ClipConfig.BiomedClip;
        var v = config.Vision;
        string weights = SyntheticModelFolder.WeightsPath;
        VisionTransformer real;
        ProfiledVisionTower replica;
        using var store = SafeTensorsFile.Open(weights); // open while the towers run: they read weights in place
        real = VisionTransformer.Load(store, v, config.EmbedDim);
        replica = new ProfiledVisionTower(store, v, config.EmbedDim);
        var pixels = BenchmarkInputs.Pixels(images);
        var features = new float[images * config.EmbedDim];
        int stageCount = Enum.GetValues<VisionStage>().Length;

        // Replica and real passes alternate, so load from other processes hits both alike.
        var stageTimes = new double[stageCount][]; // [stage][run] ms
        for (int s = 0; s < stageCount; s++) stageTimes[s] = new double[Runs];
        var realTimes = new double[Runs];           // [run] ms
        for (int run = -WarmUps; run < Runs; run++)
        {
            var ticks = new long[stageCount];
            replica.Forward(pixels, images, features, ticks);
            long start = Stopwatch.GetTimestamp();
            real.Forward(pixels, images, features);
            long realTicks = Stopwatch.GetTimestamp() - start;
            if (run < 0) continue;
            for (int s = 0; s < stageCount; s++) stageTimes[s][run] = Milliseconds(ticks[s]);
            realTimes[run] = Milliseconds(realTicks);
        }
        double realForward = Median(realTimes);

        // The GELU is fused into fc1's epilogue, so its cost is fc1 with it minus fc1 without it.
        int rows = images * v.TokenCount;
        var random = new Random(1);
        var normed = Enumerable.Range(0, rows * v.Width).Select(_ => random.NextSingle() * 4 - 2).ToArray(); // [rows, D], LayerNorm-like range
        var hidden = new float[rows * v.MlpHidden];
        double fc1Plain = MedianMilliseconds(() => replica.Fc1(normed, rows, hidden, GemmEpilogue.Store));
        double fc1Gelu = MedianMilliseconds(() => replica.Fc1(normed, rows, hidden, GemmEpilogue.StoreGelu));

        Print(images, v, config.EmbedDim, stageTimes, realForward, fc1Plain, fc1Gelu);
        return 0;
    }

    private static void Print(int images, VisionConfig v, int embedDim, double[][] stageTimes, double realForward,
        double fc1Plain, double fc1Gelu)
    {
        int t = v.TokenCount, d = v.Width, m = v.MlpHidden, full = v.Depth - 1;
        double rows = (double)images * t;
        var work = new Dictionary<VisionStage, (string What, double Flops, bool IsGemm)>
        {
            [VisionStage.PatchEmbed] = ($"{images}× GEMM {t - 1}×{3 * v.PatchSize * v.PatchSize}→{d} + unfold", 2.0 * images * (t - 1) * 3 * v.PatchSize * v.PatchSize * d, true),
            [VisionStage.LayerNorm] = ($"{2 * full + 1}× LN [{rows}, {d}]", 0, false),
            [VisionStage.QkvGemm] = ($"{v.Depth}× GEMM {rows}×{d}→{3 * d}", 2.0 * v.Depth * rows * d * 3 * d, true),
            [VisionStage.Attention] = ($"{v.Depth}×{images} × {v.HeadCount} heads, T={t}, hs={v.HeadSize}", 4.0 * v.Depth * images * t * t * d, false),
            [VisionStage.ProjGemm] = ($"{full}× GEMM {rows}×{d}→{d}", 2.0 * full * rows * d * d, true),
            [VisionStage.Fc1GeluGemm] = ($"{full}× GEMM {rows}×{d}→{m} + GELU", 2.0 * full * rows * d * m, true),
            [VisionStage.Fc2Gemm] = ($"{full}× GEMM {rows}×{m}→{d}", 2.0 * full * rows * m * d, true),
            [VisionStage.LastBlockTail] = ($"last block on {images} class row(s), norm, head", 2.0 * images * (d * d + 2.0 * d * m + d * embedDim), true),
        };

        var medians = stageTimes.Select(Median).ToArray();
        double total = medians.Sum(), gemmMs = 0, gemmFlops = 0;
        Console.WriteLine($"Image tower, batch {images}: median of {Runs} passes per stage (after {WarmUps} warm-ups), " +
            $"Parallelism.MaxDegree = {Parallelism.MaxDegree}, {Environment.ProcessorCount} cores, kernel path {KernelPaths.Best}");
        Console.WriteLine();
        Console.WriteLine("| Stage | Work per forward | ms | Share | GFLOPS |");
        Console.WriteLine("|---|---|---:|---:|---:|");
        foreach (var stage in Enum.GetValues<VisionStage>())
        {
            double ms = medians[(int)stage];
            var (what, flops, isGemm) = work[stage];
            if (isGemm) { gemmMs += ms; gemmFlops += flops; }
            Console.WriteLine($"| {stage} | {what} | {F(ms, 2)} | {F(100 * ms / total, 1)} % | {(flops > 0 ? F(flops / ms / 1e6, 1) : "-")} |");
        }
        Console.WriteLine($"| **Sum of stages** | | **{F(total, 2)}** | 100 % | {F(work.Values.Sum(w => w.Flops) / total / 1e6, 1)} |");
        Console.WriteLine($"| All GEMMs | | {F(gemmMs, 2)} | {F(100 * gemmMs / total, 1)} % | {F(gemmFlops / gemmMs / 1e6, 1)} |");
        Console.WriteLine();
        Console.WriteLine($"Real VisionTransformer.Forward, median of {Runs}: {F(realForward, 2)} ms (replica sum {F(total, 2)} ms).");
        Console.WriteLine($"GELU epilogue: fc1 {F(fc1Plain, 3)} ms plain, {F(fc1Gelu, 3)} ms with GELU → " +
            $"{F(full * (fc1Gelu - fc1Plain), 2)} ms per forward ({full} fc1 layers) of the Fc1GeluGemm row.");
    }

    private static double MedianMilliseconds(Action action)
    {
        for (int i = 0; i < WarmUps; i++) action();
        var times = new double[Runs];
        for (int i = 0; i < Runs; i++)
        {
            long start = Stopwatch.GetTimestamp();
            action();
            times[i] = Milliseconds(Stopwatch.GetTimestamp() - start);
        }
        return Median(times);
    }

    private static double Milliseconds(long ticks) => ticks * 1000.0 / Stopwatch.Frequency;

    private static double Median(double[] values)
    {
        var sorted = values.Order().ToArray();
        int middle = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
    }

    private static string F(double value, int decimals) => value.ToString("F" + decimals, CultureInfo.InvariantCulture);
}
