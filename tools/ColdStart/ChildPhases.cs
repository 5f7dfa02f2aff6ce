using System.Diagnostics;
using System.Globalization;

namespace ManagedClip.ColdStart;

/// <summary>
/// Where a child's cold start went: runtime start-up (parent's Process.Start → the child's first line of code),
/// loading the model, and the first inference. Stopwatch timestamps are the system's monotonic clock, the same
/// in parent and child, so the parent hands its start time over in an environment variable.
/// </summary>
internal sealed record ChildPhases(double StartupMilliseconds, double LoadMilliseconds, double InferenceMilliseconds)
{
    public const string StartVariable = "MANAGEDCLIP_COLDSTART_STARTED";
    private const string LinePrefix = "PHASES ";

    /// <summary>A clock started at the parent's Process.Start, read at the end of each phase.</summary>
    public sealed class Clock
    {
        private readonly List<double> marks = [];
        private long last = long.Parse(Environment.GetEnvironmentVariable(StartVariable)
            ?? throw new InvalidOperationException($"{StartVariable} is not set: child modes are started by the cold-start tool."));

        /// <summary>Ends the current phase.</summary>
        public void Mark()
        {
            long now = Stopwatch.GetTimestamp();
            marks.Add((now - last) * 1000.0 / Stopwatch.Frequency);
            last = now;
        }

        public ChildPhases Phases => new(marks[0], marks[1], marks[2]);
    }

    public string ToLine() => LinePrefix + string.Join(' ',
        new[] { StartupMilliseconds, LoadMilliseconds, InferenceMilliseconds }.Select(ms => ms.ToString("R", CultureInfo.InvariantCulture)));

    /// <summary>Parses <see cref="ToLine"/>'s output, or returns null for any other line.</summary>
    public static ChildPhases? FromLine(string line)
    {
        if (!line.StartsWith(LinePrefix, StringComparison.Ordinal)) return null;
        var ms = line[LinePrefix.Length..].Split(' ').Select(p => double.Parse(p, CultureInfo.InvariantCulture)).ToArray();
        return new ChildPhases(ms[0], ms[1], ms[2]);
    }
}
