using System.Diagnostics;
using System.Runtime.InteropServices;
using ManagedClip.IO.Formats;
using ManagedClip.Kernels;
using ManagedClip.Model;
using static ManagedClip.Benchmarks.Profile.VisionProfile;

namespace ManagedClip.Benchmarks.Profile;

/// <summary>
/// <c>profile text [fp32|bf16|int8] [--cpu]</c>: where the text tower's time goes for the benchmarks' 12-token prompt
/// (<see cref="BenchmarkInputs.Prompt"/>), step by step, in a precision mode, on the full-size synthetic weights. As the
/// image profile: the real <c>BertTextEncoder.Forward</c> with a <see cref="StepTimer"/> hook, the layers' steps summed
/// over the layers, hooked and plain passes alternating. Then the costs the step table cannot show: one GEMM of each
/// kind alone at M = 12 with its weight cold (cycled through copies ≫ L3) and warm (the same copy again), and what one
/// parallel region costs (start and join of the workers with nothing to do). With <c>--cpu</c> everything runs on one
/// worker and is timed in the thread's CPU time, which other processes' load does not inflate (it still shares the
/// caches and memory with them): the form to compare steps and modes on a busy machine.
/// </summary>
internal static class TextProfile
{
    public const string Command = "text";

    private const int Runs = 20, WarmUps = 3;

    public static int Run(string[] args)
    {
        bool cpuTime = args.Contains("--cpu");
        args = args.Where(a => a != "--cpu").ToArray();
        if (cpuTime) Parallelism.MaxDegree = 1;
        Func<double> clock = cpuTime ? ThreadCpuMilliseconds : () => Stopwatch.GetTimestamp() * 1000.0 / Stopwatch.Frequency;
        ClipPrecision? precision = args.Length < 1 ? ClipPrecision.Float32 : args[0] switch
        {
            "fp32" => ClipPrecision.Float32,
            "bf16" => ClipPrecision.BFloat16,
            "int8" => ClipPrecision.Int8,
            _ => null,
        };
        if (args.Length > 1 || precision == null)
            throw new ArgumentException($"usage: profile {Command} [fp32|bf16|int8] [--cpu] (got '{string.Join(' ', args)}')");

        var config = ClipConfig.BiomedClip;
        using var store = SafeTensorsFile.Open(SyntheticModelFolder.WeightsPath); // open: word embeddings and head are read in place
        var tower = BertTextEncoder.Load(new StoreWeights(store, precision: precision.Value), config.Text, config.EmbedDim, store);
        var (tokenIds, lengths) = BenchmarkInputs.Prompt(padToContext: false).RealTokens();
        var features = new float[config.EmbedDim];
        var timer = new StepTimer(tower.Layers.Select(layer => layer.Name), clock);

        var plainTimes = new double[Runs]; // [run] ms
        for (int run = -WarmUps; run < Runs; run++)
        {
            timer.StartPass(record: run >= 0);
            tower.Forward(tokenIds, lengths, features, timer);
            double start = clock();
            tower.Forward(tokenIds, lengths, features);
            if (run >= 0) plainTimes[run] = clock() - start;
        }

        Console.WriteLine($"Text tower, one prompt of {tokenIds.Length} tokens: median of {Runs} passes per step (after {WarmUps} warm-ups), " +
            $"Parallelism.MaxDegree = {Parallelism.MaxDegree}, {Environment.ProcessorCount} cores, kernel path {KernelPaths.Best}, precision {precision}" +
            (precision == ClipPrecision.Int8 ? $", int8 kernel {GemmInt8.KernelFor(KernelPaths.Best, GemmInt8.WeightLevels)}" : "") +
            $"; {(cpuTime ? "thread CPU time" : "wall time")}; load average {CommandSupport.LoadAverage()}");
        Console.WriteLine();
        timer.Print(Console.Out);
        Console.WriteLine();
        Console.WriteLine($"BertTextEncoder.Forward without the hook, median of {Runs}, interleaved: {F(Median(plainTimes), 2)} ms.");
        Console.WriteLine();
        PrintLoneGemms(tower, tokenIds.Length, precision.Value, clock);
        PrintParallelRegionCost();
        return 0;
    }

    /// <summary>
    /// Each GEMM kind of a layer alone on <paramref name="rows"/> rows: cold (the 12 layers' weights in turn, as a pass
    /// reads them: 12 × 28 MB in float32 is far beyond any cache) and warm (layer 0's again). Cold minus warm is the time
    /// the weights take to arrive; warm is what the kernel does with them.
    /// </summary>
    private static void PrintLoneGemms(BertTextEncoder tower, int rows, ClipPrecision precision, Func<double> clock)
    {
        var kinds = new (string Name, Func<BertTextEncoder.Layer, Linear> Of, GemmEpilogue Epilogue)[]
        {
            ("attention.self (qkv)", l => l.Attention.Qkv, GemmEpilogue.Store),
            ("attention.output.dense", l => l.Attention.Proj, GemmEpilogue.AddToOutput),
            ("intermediate.dense (+GELU)", l => l.FeedForward.Fc1, GemmEpilogue.StoreGelu),
            ("output.dense", l => l.FeedForward.Fc2, GemmEpilogue.AddToOutput),
        };
        var random = new Random(1);
        Console.WriteLine($"One GEMM alone, {rows} rows, median of {Runs} (each cold call reads the next layer's weight):");
        Console.WriteLine();
        Console.WriteLine("| GEMM [N, K] | cold ms | GFLOP/s | warm ms | GFLOP/s | weight bytes | cold GB/s |");
        Console.WriteLine("|---|---:|---:|---:|---:|---:|---:|");
        foreach (var (name, of, epilogue) in kinds)
        {
            var first = of(tower.Layers[0]);
            var input = Enumerable.Range(0, rows * first.InputCount).Select(_ => random.NextSingle() * 4 - 2).ToArray(); // [rows, K]
            var output = new float[rows * first.OutputCount];                                                          // [rows, N]
            int next = 0;
            double cold = MedianMilliseconds(() => of(tower.Layers[next++ % tower.Layers.Length]).Apply(input, output, epilogue), clock);
            double warm = MedianMilliseconds(() => first.Apply(input, output, epilogue), clock);
            double flop = 2.0 * rows * first.OutputCount * first.InputCount;
            long bytes = (long)first.OutputCount * first.InputCount * BytesPerWeight(precision);
            Console.WriteLine($"| {name} [{first.OutputCount}, {first.InputCount}] | {F(cold, 3)} | {F(flop / cold / 1e6, 1)} | " +
                $"{F(warm, 3)} | {F(flop / warm / 1e6, 1)} | {bytes / 1e6:F2} MB | {F(bytes / cold / 1e6, 1)} |");
        }
        Console.WriteLine();
    }

    /// <summary>Bytes of one block weight in <paramref name="precision"/> (int8's scales and sums are 0.3% more, left out).</summary>
    internal static int BytesPerWeight(ClipPrecision precision) => precision switch
    {
        ClipPrecision.BFloat16 => 2,
        ClipPrecision.Int8 => 1,
        _ => 4,
    };

    /// <summary>A parallel region with nothing to do: the start-and-join cost every GEMM, attention and quantization pays.</summary>
    private static void PrintParallelRegionCost()
    {
        int degree = Parallelism.MaxDegree;
        const int Regions = 1000;
        double milliseconds = MedianMilliseconds(() =>
        {
            for (int i = 0; i < Regions; i++) Parallelism.For(degree, new Nothing());
        });
        Console.WriteLine($"An empty parallel region on {degree} workers: {F(1000 * milliseconds / Regions, 2)} µs (median of {Runs} × {Regions}).");
    }

    [DllImport("libc", EntryPoint = "clock_gettime")]
    private static extern int ClockGetTime(int clock, out TimeSpec time);

    private struct TimeSpec
    {
        public long Seconds, Nanoseconds;
    }

    /// <summary>The calling thread's CPU time (Linux CLOCK_THREAD_CPUTIME_ID), in milliseconds.</summary>
    private static double ThreadCpuMilliseconds()
    {
        const int ThreadCpuTimeClock = 3;
        if (ClockGetTime(ThreadCpuTimeClock, out var time) != 0) throw new PlatformNotSupportedException("--cpu needs Linux's per-thread CPU clock");
        return time.Seconds * 1e3 + time.Nanoseconds / 1e6;
    }

    private readonly struct Nothing : Parallelism.IParallelBody
    {
        public void Run(int index) { }
    }
}
