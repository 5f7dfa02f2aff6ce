using System.Diagnostics;
using System.Globalization;
using ManagedClip.IO.Formats;
using ManagedClip.Kernels;
using ManagedClip.Model;

namespace ManagedClip.Benchmarks.Profile;

/// <summary>
/// <c>profile [images] [fp32|bf16|int8]</c>: where the image tower's time goes, step by step, for a batch of 1
/// (default) or more images, in a precision mode (default fp32), on the full-size synthetic weights (<c>MANAGEDCLIP_SYNTH_DIR</c>). The real <c>VisionTransformer.Forward</c> runs
/// with a <see cref="StepTimer"/> hook, which reads the clock as each module reports its output; the blocks' steps
/// are summed over the blocks. Prints the median of 20 passes (after 3 warm-ups) of each step as a markdown table
/// with its GFLOPS, and the median of 20 passes without the hook, interleaved with the hooked ones, to show what the
/// clock reads cost.
/// </summary>
internal static class VisionProfile
{
    public const string Command = "profile";

    private const int Runs = 20, WarmUps = 3;

    public static int Run(string[] args)
    {
        if (args.FirstOrDefault() == TextProfile.Command) return TextProfile.Run(args[1..]);
        int images = 1;
        ClipPrecision? precision = args.Length < 2 ? ClipPrecision.Float32 : args[1] switch
        {
            "fp32" => ClipPrecision.Float32,
            "bf16" => ClipPrecision.BFloat16,
            "int8" => ClipPrecision.Int8,
            _ => null,
        };
        if (args.Length > 2 || precision == null || (args.Length >= 1 && (!int.TryParse(args[0], out images) || images is < 1 or > 64)))
            throw new ArgumentException($"usage: {Command} [images] [fp32|bf16|int8]; images is a batch size from 1 to 64 (got '{string.Join(' ', args)}')");

        var config = ClipConfig.BiomedClip;
        using var store = SafeTensorsFile.Open(SyntheticModelFolder.WeightsPath); // open while the tower runs: its head is read in place
        var tower = VisionTransformer.Load(new StoreWeights(store, precision: precision.Value), config.Vision, config.EmbedDim, store);
        var pixels = BenchmarkInputs.Pixels(images);
        var features = new float[images * config.EmbedDim];
        var timer = new StepTimer(tower.Blocks.Select(b => b.Name));

        // Hooked and plain passes alternate, so load from other processes hits both alike.
        var plainTimes = new double[Runs]; // [run] ms
        for (int run = -WarmUps; run < Runs; run++)
        {
            timer.StartPass(record: run >= 0);
            tower.Forward(pixels, images, features, timer);
            long start = Stopwatch.GetTimestamp();
            tower.Forward(pixels, images, features);
            if (run >= 0) plainTimes[run] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        }

        // The GELU is fused into fc1's epilogue, so its cost is fc1 with it minus fc1 without it.
        var fc1 = tower.Blocks[0].Mlp.Fc1;
        int rows = images * config.Vision.TokenCount;
        var random = new Random(1);
        var normed = Enumerable.Range(0, rows * fc1.InputCount).Select(_ => random.NextSingle() * 4 - 2).ToArray(); // LayerNorm-like range
        var hidden = new float[rows * fc1.OutputCount];
        double fc1Plain = MedianMilliseconds(() => fc1.Apply(normed, hidden, GemmEpilogue.Store));
        double fc1Gelu = MedianMilliseconds(() => fc1.Apply(normed, hidden, GemmEpilogue.StoreGelu));

        Console.WriteLine($"Image tower, batch {images}: median of {Runs} passes per step (after {WarmUps} warm-ups), " +
            $"Parallelism.MaxDegree = {Parallelism.MaxDegree}, {Environment.ProcessorCount} cores, kernel path {KernelPaths.Best}, precision {precision}" +
            (precision == ClipPrecision.Int8 ? $", int8 kernel {GemmInt8.KernelFor(KernelPaths.Best, GemmInt8.WeightLevels)}" : ""));
        Console.WriteLine();
        timer.Print(Console.Out);
        Console.WriteLine();
        Console.WriteLine($"VisionTransformer.Forward without the hook, median of {Runs}, interleaved: {F(Median(plainTimes), 2)} ms.");
        Console.WriteLine($"GELU epilogue: {fc1.Name} {F(fc1Plain, 3)} ms plain, {F(fc1Gelu, 3)} ms with GELU → " +
            $"{F((tower.Blocks.Length - 1) * (fc1Gelu - fc1Plain), 2)} ms per forward ({tower.Blocks.Length - 1} fc1 layers on every row).");
        return 0;
    }

    internal static double MedianMilliseconds(Action action, Func<double>? clockMilliseconds = null)
    {
        var clock = clockMilliseconds ?? (() => Stopwatch.GetTimestamp() * 1000.0 / Stopwatch.Frequency);
        for (int i = 0; i < WarmUps; i++) action();
        var times = new double[Runs];
        for (int i = 0; i < Runs; i++)
        {
            double start = clock();
            action();
            times[i] = clock() - start;
        }
        return Median(times);
    }

    internal static double Median(double[] values)
    {
        var sorted = values.Order().ToArray();
        int middle = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
    }

    internal static string F(double value, int decimals) => value.ToString("F" + decimals, CultureInfo.InvariantCulture);
}
