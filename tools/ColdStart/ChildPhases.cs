using System.Diagnostics;
using System.Globalization;

namespace ManagedClip.ColdStart;

/// <summary>
/// Where a child's cold start went: runtime start-up (parent's Process.Start → the child's first line of code),
/// loading the model, and the first inference. Stopwatch timestamps are the system's monotonic clock, the same
/// in parent and child, so the parent hands its start time over in an environment variable.
/// </summary>
/// <remarks>
/// Each phase also carries the CPU time the child used in it (user + system, all threads): on a host whose other
/// tenants take most of the cores, wall time stretches with their load, while CPU time shows what the phase costs.
/// </remarks>
internal sealed record ChildPhases(double StartupMilliseconds, double LoadMilliseconds, double InferenceMilliseconds,
    double LoadCpuMilliseconds, double InferenceCpuMilliseconds)
{
    public const string StartVariable = "MANAGEDCLIP_COLDSTART_STARTED";
    private const string LinePrefix = "PHASES ";

    /// <summary>A clock started at the parent's Process.Start, read at the end of each phase.</summary>
    public sealed class Clock
    {
        private readonly List<double> marks = [];
        private readonly List<double> cpuMarks = [];
        private long last = long.Parse(Environment.GetEnvironmentVariable(StartVariable)
            ?? throw new InvalidOperationException($"{StartVariable} is not set: child modes are started by the cold-start tool."));
        private TimeSpan lastCpu = TimeSpan.Zero;

        /// <summary>Ends the current phase.</summary>
        public void Mark()
        {
            long now = Stopwatch.GetTimestamp();
            var cpu = Process.GetCurrentProcess().TotalProcessorTime;
            marks.Add((now - last) * 1000.0 / Stopwatch.Frequency);
            cpuMarks.Add((cpu - lastCpu).TotalMilliseconds);
            last = now;
            lastCpu = cpu;
        }

        public ChildPhases Phases => new(marks[0], marks[1], marks[2], cpuMarks[1], cpuMarks[2]);
    }

    public string ToLine() => LinePrefix + string.Join(' ',
        new[] { StartupMilliseconds, LoadMilliseconds, InferenceMilliseconds, LoadCpuMilliseconds, InferenceCpuMilliseconds }
            .Select(ms => ms.ToString("R", CultureInfo.InvariantCulture)));

    /// <summary>Parses <see cref="ToLine"/>'s output, or returns null for any other line.</summary>
    public static ChildPhases? FromLine(string line)
    {
        if (!line.StartsWith(LinePrefix, StringComparison.Ordinal)) return null;
        var ms = line[LinePrefix.Length..].Split(' ').Select(p => double.Parse(p, CultureInfo.InvariantCulture)).ToArray();
        return new ChildPhases(ms[0], ms[1], ms[2], ms[3], ms[4]);
    }
}
