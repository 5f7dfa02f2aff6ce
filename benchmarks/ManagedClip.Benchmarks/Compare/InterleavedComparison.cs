using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using System.Text;
using System.Xml.Linq;
using Microsoft.ML.OnnxRuntime;

namespace ManagedClip.Benchmarks.Compare;

/// <summary>
/// <c>compare [--rounds N] [--out FILE.md] [--svg FILE.svg] [--only TEXT]</c>: ManagedClip against ONNX Runtime on the seven
/// side-by-side workloads of <see cref="SideBySideWorkloads"/>, both engines in one process taking turns call
/// by call, reported as a markdown table of times and paired ratios (and optionally a <see cref="RatioPlotSvg"/>).
/// N rounds per workload (default 15), half as many (at least 1) for the three slow ones; ≈ 4 minutes on 2 cores.
/// <c>--only "Text 12"</c> times only the workloads whose name contains the text (here the 12-token prompt's two).
/// </summary>
/// <remarks>
/// <para>Why interleave: on a shared VM the speed drifts by up to 40 % from one minute to the next.
/// BenchmarkDotNet measures each method in its own process, one after another, so ONNX Runtime and ManagedClip
/// are timed minutes apart and their ratio carries the drift. Here each round times one call of each engine
/// back to back; the two calls of a round see nearly the same machine, so the round's ratio cancels slow drift,
/// and the median over rounds discards the rounds a burst of load hit on one side only.</para>
/// <para>Fairness: the order alternates (ONNX Runtime first on even rounds, ManagedClip first on odd), so
/// neither side always runs in the other's wake, and a 150 ms pause at every switch lets the previous engine's
/// worker threads stop spinning before the next engine starts: ONNX Runtime's pool keeps spinning after each run
/// (measured: 40–58 ms of CPU in the 250 ms after a call), and a 30 ms pause left it competing with ManagedClip's
/// next call for the two cores.</para>
/// </remarks>
internal static class InterleavedComparison
{
    public const string Command = "compare";

    private const int DefaultRounds = 15, MaxRounds = 1000, WarmUpCalls = 2;
    private static readonly TimeSpan SwitchPause = TimeSpan.FromMilliseconds(150);

    /// <summary>The per-call times of one workload, in milliseconds, round by round.</summary>
    private sealed record Timings(string Workload, double[] OrtMs, double[] ManagedMs)
    {
        /// <summary>Each round's ManagedClip time / ONNX Runtime time: &lt; 1 means ManagedClip was faster.</summary>
        public double[] Ratios { get; } = ManagedMs.Zip(OrtMs, (managed, ort) => managed / ort).ToArray();
    }

    /// <summary>Runs the command; 0 on success, 2 on bad arguments.</summary>
    public static int Run(string[] args)
    {
        if (CommandSupport.ParseRoundsAndOut(args, Command, DefaultRounds, MaxRounds, "--svg", "--only") is not { } options) return 2;
        string? only = options.All.GetValueOrDefault("--only"); // run only the workloads whose name contains this, e.g. "Text 12"
        int rounds = options.Rounds;
        string? markdownPath = options.MarkdownPath, svgPath = options.All.GetValueOrDefault("--svg");
        CommandSupport.CheckFolderExists(svgPath);

        string date = DateTime.UtcNow.ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture);
        string loadBefore = CommandSupport.LoadAverage(); // before loading: the load other processes put on the machine
        var results = new List<Timings>();
        using (var sides = new SideBySideWorkloads(SyntheticModelFolder.WeightsPath))
        {
            // Progress goes to stderr, so stdout is the markdown alone.
            sides.CheckBothSidesAgree(Console.Error);
            foreach (var workload in sides.All.Where(w => only == null || w.Name.Contains(only, StringComparison.OrdinalIgnoreCase)))
            {
                // Slow workloads take up to 8 s a call: half the rounds keeps the default run near 4 minutes.
                int workloadRounds = workload.IsSlow ? Math.Max(1, rounds / 2) : rounds;
                Console.Error.WriteLine($"// {workload.Name}: {WarmUpCalls} warm-up calls per engine, {workloadRounds} rounds");
                results.Add(Measure(workload, workloadRounds));
            }
        }
        string loadAfter = CommandSupport.LoadAverage();

        string machine = MachineDescription();
        string markdown = Markdown(date, machine, loadBefore, loadAfter, CommandLine(args), results);
        Console.Write(markdown);
        if (markdownPath != null) File.WriteAllText(markdownPath, markdown);
        if (svgPath != null)
        {
            var bars = results.Select(r => new RatioBar(r.Workload, CommandSupport.Median(r.Ratios), CommandSupport.Quantile(r.Ratios, 0.25), CommandSupport.Quantile(r.Ratios, 0.75))).ToList();
            File.WriteAllText(svgPath, RatioPlotSvg.Render(
                $"ManagedClip / ONNX Runtime time, interleaved, {date}", machine, bars));
            _ = XDocument.Load(svgPath); // a file that is not well-formed XML fails here, not in someone's README
            Console.Error.WriteLine($"// wrote {svgPath}");
        }
        return 0;
    }

    /// <summary>
    /// Warms each engine up, then times <paramref name="rounds"/> rounds of one call per engine, alternating
    /// which goes first and pausing whenever the engine changes.
    /// </summary>
    private static Timings Measure(Workload workload, int rounds)
    {
        Func<float[]>? previous = null;
        double TimedCall(Func<float[]> engine)
        {
            if (previous is not null && previous != engine) Thread.Sleep(SwitchPause);
            previous = engine;
            long start = Stopwatch.GetTimestamp();
            engine();
            return Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        }

        for (int i = 0; i < WarmUpCalls; i++) TimedCall(workload.Ort);
        for (int i = 0; i < WarmUpCalls; i++) TimedCall(workload.ManagedClip);
        var ort = new double[rounds];
        var managed = new double[rounds];
        for (int round = 0; round < rounds; round++)
        {
            if (round % 2 == 0)
            {
                ort[round] = TimedCall(workload.Ort);
                managed[round] = TimedCall(workload.ManagedClip);
            }
            else
            {
                managed[round] = TimedCall(workload.ManagedClip);
                ort[round] = TimedCall(workload.Ort);
            }
        }
        return new Timings(workload.Name, ort, managed);
    }

    private static string Markdown(string date, string machine, string loadBefore, string loadAfter, string commandLine,
        IReadOnlyList<Timings> results)
    {
        var md = new StringBuilder();
        md.AppendLine($"ManagedClip vs ONNX Runtime, interleaved: {date}; {machine}; " +
            $"load average (1/5/15 min) {loadBefore} before, {loadAfter} after; `{commandLine}`");
        md.AppendLine();
        md.AppendLine("| Workload | Rounds | ONNX Runtime ms, median (min–max) | ManagedClip ms, median (min–max) | ManagedClip / ONNX Runtime, paired median | Paired ratio IQR |");
        md.AppendLine("|---|---:|---:|---:|---:|---:|");
        foreach (var r in results)
            md.AppendLine($"| {r.Workload} | {r.Ratios.Length} | {Spread(r.OrtMs)} | {Spread(r.ManagedMs)} | " +
                $"**{RatioPlotSvg.FormatRatio(CommandSupport.Median(r.Ratios))}** | " +
                $"{RatioPlotSvg.FormatRatio(CommandSupport.Quantile(r.Ratios, 0.25))}–{RatioPlotSvg.FormatRatio(CommandSupport.Quantile(r.Ratios, 0.75))} |");
        md.AppendLine();
        md.AppendLine($"Each round times one call per engine back to back, after {WarmUpCalls} warm-up calls each; the order " +
            $"alternates and the engines pause {SwitchPause.TotalMilliseconds:F0} ms at each switch. A paired ratio is one round's " +
            "ManagedClip time / its ONNX Runtime time (below 1 = ManagedClip faster); IQR is their 25th–75th percentile.");
        return md.ToString();
    }

    private static string Spread(double[] ms) =>
        string.Create(CultureInfo.InvariantCulture, $"{CommandSupport.Median(ms):F1} ({ms.Min():F1}–{ms.Max():F1})");

    /// <summary>The machine (<see cref="CommandSupport.MachineDescription"/>) and the ONNX Runtime version.</summary>
    private static string MachineDescription()
    {
        // The package version as built into the managed assembly, e.g. "1.31.1+<commit>": the part before '+'.
        string? ortVersion = typeof(InferenceSession).Assembly
            .GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0];
        return $"{CommandSupport.MachineDescription()}, ONNX Runtime {ortVersion ?? "version unknown"}";
    }

    // How to run it again: the model folder's variable, if set, and the arguments as given.
    private static string CommandLine(string[] args)
    {
        string? folder = Environment.GetEnvironmentVariable(SyntheticModelFolder.EnvironmentVariable);
        var words = new[] { "ManagedClip.Benchmarks", Command }.Concat(args).Select(a => a.Contains(' ') ? $"'{a}'" : a);
        return (string.IsNullOrEmpty(folder) ? "" : $"{SyntheticModelFolder.EnvironmentVariable}={folder} ") + string.Join(' ', words);
    }
}
