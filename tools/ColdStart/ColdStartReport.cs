using System.Globalization;
using System.Text;
using System.Text.Json;

namespace ManagedClip.ColdStart;

/// <summary>The measurements of a cold-start run, as a markdown table or JSON.</summary>
internal sealed record ColdStartReport(ColdStartOptions Options, string Image, string LoadBefore, string LoadAfter,
    EngineRuns[] Engines, float ProbabilityDifference, SharedResidency[] Residency)
{
    private const double MiB = 1024 * 1024;

    public string ToMarkdown()
    {
        var text = new StringBuilder();
        text.AppendLine($"Command: `{Command}`");
        text.AppendLine();
        text.AppendLine($"Cold start: process start → first zero-shot result (1 image, {ZeroShotTask.Labels.Length} labels), " +
            $"{Options.Runs} run(s) per engine after one untimed warm-up each (model files in the page cache); " +
            $"{Environment.ProcessorCount} cores; load average {LoadBefore} before, {LoadAfter} after.");
        text.AppendLine();
        text.AppendLine("| Engine | Median | Min | Max | Peak RSS (VmHWM, median) | Weight files | Peak / weights | At exit: anon / file RSS |");
        text.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var e in Engines)
            text.AppendLine($"| {e.Engine} | {F(Statistics.Median(e.Milliseconds), 0)} ms | {F(e.Milliseconds.Min(), 0)} ms | " +
                $"{F(e.Milliseconds.Max(), 0)} ms | {F(e.MedianPeakBytes / MiB, 0)} MiB | {F(e.WeightBytes / MiB, 0)} MiB | " +
                $"{F((double)e.MedianPeakBytes / e.WeightBytes, 2)}× | " +
                $"{F(Statistics.Median(e.Memory.Select(m => m.AnonymousKiB / 1024.0)), 0)} / {F(Statistics.Median(e.Memory.Select(m => m.FileKiB / 1024.0)), 0)} MiB |");
        text.AppendLine();
        text.AppendLine("Medians of each phase (runtime start = Process.Start → the child's first line of code; load = model " +
            "or sessions; first inference = preprocessing, tokenizing, both towers, scores; steady = the same work again, " +
            "timed after 3 calls: the floor a cold start's inference could reach; cold start − floor = what loading and the " +
            "first call's one-time work cost):");
        text.AppendLine();
        text.AppendLine("| Engine | Runtime start | Load | Load, min–max | First inference | Steady inference | Cold start − floor |");
        text.AppendLine("|---|---:|---:|---:|---:|---:|---:|");
        foreach (var e in Engines)
            text.AppendLine($"| {e.Engine} | {F(Statistics.Median(e.Phases.Select(p => p.StartupMilliseconds)), 0)} ms | " +
                $"{F(Statistics.Median(e.Phases.Select(p => p.Load.WallMilliseconds)), 0)} ms | " +
                $"{F(e.Phases.Min(p => p.Load.WallMilliseconds), 0)}–{F(e.Phases.Max(p => p.Load.WallMilliseconds), 0)} ms | " +
                $"{F(Statistics.Median(e.Phases.Select(p => p.Inference.WallMilliseconds)), 0)} ms | " +
                $"{F(Statistics.Median(e.Phases.Select(p => p.Steady.WallMilliseconds)), 0)} ms | " +
                $"{F(Statistics.Median(e.Milliseconds) - Statistics.Median(e.Phases.Select(p => p.Steady.WallMilliseconds)), 0)} ms |");
        text.AppendLine();
        text.AppendLine("Where the CPU went, medians per phase (CPU = user + system time of all the child's threads, from " +
            "/proc/self/stat in 10 ms ticks; faults = minor / major page faults; JIT = time in the JIT compiler, all threads, " +
            "and methods compiled, from System.Runtime.JitInfo):");
        text.AppendLine();
        text.AppendLine("| Engine | Phase | Wall | User CPU | System CPU | Minor / major faults | JIT time | JIT methods |");
        text.AppendLine("|---|---|---:|---:|---:|---:|---:|---:|");
        foreach (var e in Engines)
            foreach (var (phase, cost) in new (string, Func<ChildPhases, PhaseCost>)[] { ("load", p => p.Load), ("first inference", p => p.Inference), ("steady inference", p => p.Steady) })
            {
                var costs = e.Phases.Select(cost).ToArray();
                text.AppendLine($"| {e.Engine} | {phase} | {F(Statistics.Median(costs.Select(c => c.WallMilliseconds)), 0)} ms | " +
                    $"{F(Statistics.Median(costs.Select(c => c.UserMilliseconds)), 0)} ms | {F(Statistics.Median(costs.Select(c => c.SystemMilliseconds)), 0)} ms | " +
                    $"{F(Statistics.Median(costs.Select(c => (double)c.MinorFaults)), 0)} / {F(Statistics.Median(costs.Select(c => (double)c.MajorFaults)), 0)} | " +
                    $"{F(Statistics.Median(costs.Select(c => c.JitMilliseconds)), 0)} ms | {F(Statistics.Median(costs.Select(c => (double)c.JitMethods)), 0)} |");
            }
        text.AppendLine();
        foreach (var e in Engines[..^1])
            text.Append($"{e.Engine} / {Engines[^1].Engine} (median time): " +
                $"{F(Statistics.Median(e.Milliseconds) / Statistics.Median(Engines[^1].Milliseconds), 2)}×. ");
        text.Append($"Largest probability difference from {Engines[^1].Engine}: {ProbabilityDifference:G2}. Image: {Image}.");
        if (Residency.Length > 0)
        {
            text.AppendLine();
            text.AppendLine();
            text.AppendLine($"Resident memory, summed PSS (/proc/PID/smaps_rollup) of {Residency[0].Processes} ManagedClip processes holding the " +
                "model at once, each after its first zero-shot result, against one process alone:");
            text.AppendLine();
            text.AppendLine("| Mode | 1 process | " + Residency[0].Processes + " processes (sum) | Ratio |");
            text.AppendLine("|---|---:|---:|---:|");
            foreach (var r in Residency)
                text.AppendLine($"| {r.Mode} | {F(r.SingleKiB / 1024.0, 0)} MiB | {F(r.SumKiB / 1024.0, 0)} MiB | {F((double)r.SumKiB / r.SingleKiB, 2)}× |");
        }
        return text.ToString();
    }

    /// <summary>The command line that produced this report (paths as given), so it can be run again.</summary>
    private static string Command => string.Join(' ', new[] { Environment.ProcessPath ?? "ColdStart" }.Concat(Environment.GetCommandLineArgs().Skip(1))
        .Select(a => a.Any(c => char.IsWhiteSpace(c) || c is '\'' or '"') ? "'" + a.Replace("'", "'\\''") + "'" : a));

    public string ToJson() => JsonSerializer.Serialize(new
    {
        command = Command,
        precision = Options.Precision,
        workload = $"process start to first zero-shot result, 1 image, {ZeroShotTask.Labels.Length} labels",
        runs = Options.Runs,
        cores = Environment.ProcessorCount,
        loadAverageBefore = LoadBefore,
        loadAverageAfter = LoadAfter,
        image = Image,
        probabilityDifference = ProbabilityDifference,
        engines = Engines.Select(e => new
        {
            engine = e.Engine,
            milliseconds = e.Milliseconds,
            medianMilliseconds = Statistics.Median(e.Milliseconds),
            phases = e.Phases.Select(p => new { startupMilliseconds = p.StartupMilliseconds, load = p.Load, firstInference = p.Inference, steadyInference = p.Steady }),
            peakResidentBytes = e.Memory.Select(m => m.PeakKiB * 1024),
            medianPeakResidentBytes = e.MedianPeakBytes,
            weightBytes = e.WeightBytes,
            peakOverWeights = (double)e.MedianPeakBytes / e.WeightBytes,
        }),
        residency = Residency.Select(r => new { mode = r.Mode, processes = r.Processes, singlePssBytes = r.SingleKiB * 1024, summedPssBytes = r.SumKiB * 1024 }),
    }, new JsonSerializerOptions { WriteIndented = true });

    private static string F(double value, int decimals) => value.ToString("F" + decimals, CultureInfo.InvariantCulture);
}

internal static class Statistics
{
    public static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        int middle = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
    }
}
