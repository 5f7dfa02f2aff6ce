using System.Diagnostics;
using System.Globalization;
using System.Text;
using ManagedClip.Kernels;

namespace ManagedClip.Benchmarks.Compare;

/// <summary>
/// <c>gemm-efficiency [--rounds N] [--out FILE.md]</c>: the GEMM at the model's shapes as a share of this machine's
/// FMA peak, and the second core's speed-up, measured interleaved so that every ratio compares numbers taken
/// moments apart.
/// </summary>
/// <remarks>
/// <para>Why not only BenchmarkDotNet: <c>--filter '*KernelFmaPeak*' '*KernelGemm*'</c> times the same things,
/// but one benchmark after another over ~15 minutes, and this VM's speed drifts by up to 40% in that time (one
/// such run measured the single-core FMA peak at 98 GFLOPS and, minutes later, at 170). A percentage of peak
/// whose two halves were measured ten minutes apart says little. Here each round measures, back to back, the
/// FMA peak on 1 core, the GEMM on 1 core, the FMA peak on 2 cores and the GEMM on 2 cores, for one shape;
/// the percentages and speed-ups are per-round ratios (GEMM over the mean of the peak measured just before and
/// just after it), reported as medians over the rounds.</para>
/// <para>Weights: as in <see cref="KernelGemmBenchmarks"/>, each call uses the next of several copies of W that
/// together fill 64 MB, so W comes from DRAM as in a forward pass; both the in-place (row-major, packed slice by
/// slice) and the packed-once layouts are timed.</para>
/// </remarks>
internal static class GemmEfficiency
{
    public const string Command = "gemm-efficiency";

    private const int DefaultRounds = 25, MaxRounds = 1000;

    /// <summary>Each timed measurement repeats its call until at least this long has passed.</summary>
    private static readonly TimeSpan MinimumTime = TimeSpan.FromMilliseconds(15);

    private const int FmaIterations = 1 << 21; // per core: 2M steps × 12 FMAs ≈ 5 ms

    // GFLOPS per round; Independent: `Cores` one-core GEMMs at once (empty on 1 core), see IndependentGflops.
    private sealed record Row(GemmShape Shape, int Cores, double[] InPlace, double[] Packed, double[] Independent, double[] Peak);

    public static int Run(string[] args)
    {
        if (CommandSupport.ParseRoundsAndOut(args, Command, DefaultRounds, MaxRounds) is not { } options) return 2;
        int rounds = options.Rounds;
        string? markdownPath = options.MarkdownPath;

        string started = DateTime.UtcNow.ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture);
        string loadBefore = CommandSupport.LoadAverage();
        int allCores = Environment.ProcessorCount;
        var rows = new List<Row>();
        foreach (var shape in KernelGemmBenchmarks.Shapes())
        {
            Console.Error.WriteLine($"// {shape}: {rounds} rounds");
            var (x, bias, y, weights) = KernelGemmBenchmarks.Operands(shape);
            var inPlace = KernelGemmBenchmarks.Weights(shape, weights, packed: false);
            var packed = KernelGemmBenchmarks.Weights(shape, weights, packed: true);
            int next = 0;
            double Gemm(WeightMatrix[] layout) => TimedGflops(shape.FlopCount,
                () => Kernels.Gemm.Multiply(x, shape.Rows, layout[next = (next + 1) % layout.Length], bias, y));

            var coreCounts = new[] { 1, allCores }.Distinct().ToArray();
            var outputs = Enumerable.Range(0, allCores).Select(_ => KernelGemmBenchmarks.LineAligned(shape.Rows * shape.Outputs)).ToArray();
            var results = coreCounts.ToDictionary(c => c, c => (InPlace: new double[rounds], Packed: new double[rounds],
                Independent: new double[c > 1 ? rounds : 0], Peak: new double[rounds]));
            foreach (int cores in coreCounts) // warm-up: JIT, worker threads, first touch of every copy
            {
                Parallelism.MaxDegree = cores;
                Gemm(inPlace);
                Gemm(packed);
                FmaPeak(cores);
            }
            for (int round = 0; round < rounds; round++)
                foreach (int cores in coreCounts)
                {
                    Parallelism.MaxDegree = cores;
                    var r = results[cores];
                    double peakBefore = FmaPeak(cores);
                    r.InPlace[round] = Gemm(inPlace);
                    r.Packed[round] = Gemm(packed);
                    if (cores > 1) r.Independent[round] = IndependentGflops(shape, x, bias, packed, outputs.AsSpan(0, cores).ToArray());
                    r.Peak[round] = (peakBefore + FmaPeak(cores)) / 2; // the peak around the GEMMs, not just before
                }
            Parallelism.MaxDegree = allCores;
            rows.AddRange(coreCounts.Select(c => new Row(shape, c, results[c].InPlace, results[c].Packed, results[c].Independent, results[c].Peak)));
        }

        string loadAfter = CommandSupport.LoadAverage();
        string markdown = Markdown(rows, rounds, started, loadBefore, loadAfter, allCores, args);
        Console.Write(markdown);
        if (markdownPath != null) File.WriteAllText(markdownPath, markdown);
        return 0;
    }

    /// <summary>GFLOPS of the Vector512 FMA throughput loop on <paramref name="cores"/> cores at once.</summary>
    private static double FmaPeak(int cores)
    {
        var sinks = new float[cores];
        return TimedGflops(2.0 * 12 * 16 * FmaIterations * cores,
            () => Parallelism.For(cores, core => sinks[core] = KernelFmaPeakBenchmarks.Fma512(FmaIterations)));
    }

    /// <summary>
    /// GFLOPS of one-core GEMMs on every core at once, each with its own Y and its own run through the W copies (X is
    /// only read, by all), started together: no work is divided and nobody waits, so this is what the machine itself
    /// gives that many busy cores at this shape (caches, memory, the host), the yardstick for the split GEMM.
    /// </summary>
    private static unsafe double IndependentGflops(GemmShape shape, ArraySegment<float> x, float[] bias, WeightMatrix[] weights,
        ArraySegment<float>[] outputs)
    {
        int cores = outputs.Length, arrived = 0;
        var gflops = new double[cores];
        Parallelism.For(cores, core =>
        {
            // Each body must run on its own thread: wait until all have started (the pool hands out one index per
            // worker here, as no other loop runs in this program).
            Interlocked.Increment(ref arrived);
            long waitStart = Stopwatch.GetTimestamp();
            while (Volatile.Read(ref arrived) < cores)
            {
                if (Stopwatch.GetElapsedTime(waitStart) > TimeSpan.FromSeconds(10))
                    throw new InvalidOperationException("the independent GEMMs did not start on separate cores");
                Thread.SpinWait(20);
            }
            int next = core * weights.Length / cores; // the cores start on different copies of W
            fixed (float* input = x.AsSpan(), b = bias, y = outputs[core].AsSpan())
            {
                nint inputAddress = (nint)input, biasAddress = (nint)b, outputAddress = (nint)y;
                gflops[core] = TimedGflops(shape.FlopCount, () =>
                {
                    var product = new GemmProduct((float*)inputAddress, shape.Inputs, shape.Rows, weights[next = (next + 1) % weights.Length],
                        (float*)biasAddress, (float*)outputAddress, shape.Outputs, GemmEpilogue.Store, KernelPaths.Best, degree: 1);
                    Kernels.Gemm.Run(product, maxDegree: 1); // the one-core plan, on this thread
                });
            }
        });
        return gflops.Sum();
    }

    private static double TimedGflops(double flopsPerCall, Action call)
    {
        int calls = 0;
        long start = Stopwatch.GetTimestamp();
        do
        {
            call();
            calls++;
        }
        while (Stopwatch.GetElapsedTime(start) < MinimumTime);
        return flopsPerCall * calls / Stopwatch.GetElapsedTime(start).TotalSeconds / 1e9;
    }

    private static string Markdown(List<Row> rows, int rounds, string started, string loadBefore, string loadAfter, int allCores, string[] args)
    {
        var md = new StringBuilder();
        md.AppendLine($"GEMM efficiency, interleaved with the FMA peak: {started}; {CommandSupport.MachineDescription()}, " +
            $"kernel path {KernelPaths.Best}; " +
            $"load average {loadBefore} before, {loadAfter} after; `ManagedClip.Benchmarks {string.Join(' ', new[] { Command }.Concat(args))}`");
        md.AppendLine();
        md.AppendLine("| Shape (M × K→N) | Cores | FMA peak GFLOPS | W in place: GFLOPS | % of peak | W packed once: GFLOPS | % of peak | Packed: speed-up over 1 core | Independent 1-core GEMMs: speed-up | FMA loop's own speed-up |");
        md.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var group in rows.GroupBy(r => r.Shape))
        {
            var single = group.First(r => r.Cores == 1);
            foreach (var r in group)
            {
                string speedUp = r.Cores == 1 ? "–"
                    : F(CommandSupport.Median(r.Packed.Zip(single.Packed, (many, one) => many / one)), 2) + "×";
                string independentSpeedUp = r.Cores == 1 ? "–"
                    : F(CommandSupport.Median(r.Independent.Zip(single.Packed, (many, one) => many / one)), 2) + "×";
                string peakSpeedUp = r.Cores == 1 ? "–"
                    : F(CommandSupport.Median(r.Peak.Zip(single.Peak, (many, one) => many / one)), 2) + "×";
                md.AppendLine($"| {r.Shape} | {r.Cores} | {F(CommandSupport.Median(r.Peak), 1)} | {F(CommandSupport.Median(r.InPlace), 1)} | " +
                    $"{F(100 * CommandSupport.Median(r.InPlace.Zip(r.Peak, (g, p) => g / p)), 0)}% | {F(CommandSupport.Median(r.Packed), 1)} | " +
                    $"**{F(100 * CommandSupport.Median(r.Packed.Zip(r.Peak, (g, p) => g / p)), 0)}%** | {speedUp} | {independentSpeedUp} | {peakSpeedUp} |");
            }
        }
        md.AppendLine();
        md.AppendLine($"{rounds} rounds per shape; each round measures, back to back, the FMA peak, both GEMM layouts and the peak " +
            $"again on 1 core, then on {allCores}; a round's peak is the mean of its two. Every number is a median over rounds; a percentage is the median of the rounds' GEMM / peak " +
            "ratios (so it is not exactly the ratio of the two median columns), and the speed-up the median of the rounds' " +
            $"{allCores}-core / 1-core ratios. The independent column runs {allCores} one-core GEMMs at once, each with its own " +
            "output and its own run through the weight copies, started together: the same work with nothing shared and nobody " +
            "waiting, i.e. what the machine gave two busy cores at that shape in those minutes (above 2× where a lone core " +
            $"streams weights from memory more slowly than each of two busy ones). Each measurement repeats its call for at least {MinimumTime.TotalMilliseconds:F0} ms; " +
            "W cycles through 64 MB of copies. Other VMs on the host contend for memory and cache, which slows the GEMM " +
            "but barely the FMA loop (it touches no memory), so the shares vary from run to run. The last column is the " +
            "same ratio for the FMA loop, which has no memory traffic and no synchronisation: below " + allCores + "× it " +
            "shows the host taking time from the VM's cores (see `host-check`), which no kernel can win back.");
        return md.ToString();
    }

    private static string F(double value, int decimals) => value.ToString("F" + decimals, CultureInfo.InvariantCulture);
}
