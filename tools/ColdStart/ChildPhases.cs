using System.Diagnostics;
using System.Globalization;

namespace ManagedClip.ColdStart;

/// <summary>
/// What one phase of a child run cost: wall time, the CPU time of all its threads split into user and system time,
/// the page faults it took, and the JIT compilation it did.
/// </summary>
/// <param name="WallMilliseconds">Elapsed time.</param>
/// <param name="UserMilliseconds">User CPU time of all threads (10 ms ticks on Linux).</param>
/// <param name="SystemMilliseconds">System CPU time of all threads: page faults, mmap, thread starts, I/O.</param>
/// <param name="MinorFaults">Page faults served without I/O (fresh memory, page-cache pages being mapped in).</param>
/// <param name="MajorFaults">Page faults that had to read from disk.</param>
/// <param name="JitMilliseconds">Time spent in the JIT compiler (all threads, <see cref="System.Runtime.JitInfo"/>; wall time, so it stretches with load).</param>
/// <param name="JitMethods">Methods compiled (tier 0, tier 1, OSR and ReadyToRun rejects alike).</param>
internal sealed record PhaseCost(double WallMilliseconds, double UserMilliseconds, double SystemMilliseconds,
    long MinorFaults, long MajorFaults, double JitMilliseconds, long JitMethods)
{
    public double CpuMilliseconds => UserMilliseconds + SystemMilliseconds;

    internal IEnumerable<double> Values() =>
        [WallMilliseconds, UserMilliseconds, SystemMilliseconds, MinorFaults, MajorFaults, JitMilliseconds, JitMethods];

    internal static PhaseCost FromValues(ReadOnlySpan<double> v) => new(v[0], v[1], v[2], (long)v[3], (long)v[4], v[5], (long)v[6]);
}

/// <summary>
/// Where a child's cold start went: runtime start-up (parent's Process.Start → the child's first line of code),
/// loading the model, the first inference, and a later inference of the same work (the steady state: what the
/// first one would cost with nothing left to compile, map or fault in). Stopwatch timestamps are the system's
/// monotonic clock, the same in parent and child, so the parent hands its start time over in an environment variable.
/// </summary>
/// <remarks>
/// CPU time does not stretch with other tenants' load the way wall time does, and the split into user and system
/// time with the fault counts separates compute from the kernel's memory work (mapping file pages, zeroing fresh ones).
/// </remarks>
internal sealed record ChildPhases(double StartupMilliseconds, PhaseCost Load, PhaseCost Inference, PhaseCost Steady)
{
    public const string StartVariable = "MANAGEDCLIP_COLDSTART_STARTED";
    private const string LinePrefix = "PHASES ";
    private const int ValuesPerPhase = 7;

    /// <summary>A clock started at the parent's Process.Start, read at the end of each phase.</summary>
    public sealed class Clock
    {
        private readonly List<PhaseCost> phases = [];
        private double startup;
        private long last = long.Parse(Environment.GetEnvironmentVariable(StartVariable)
            ?? throw new InvalidOperationException($"{StartVariable} is not set: child modes are started by the cold-start tool."));
        private Sample lastSample;

        /// <summary>Ends runtime start-up: the child's first line of code.</summary>
        public void Started()
        {
            long now = Stopwatch.GetTimestamp();
            startup = (now - last) * 1000.0 / Stopwatch.Frequency;
            last = now;
            lastSample = Sample.Now();
        }

        /// <summary>Ends the current phase (load, first inference, steady inference, in that order).</summary>
        public void Mark()
        {
            long now = Stopwatch.GetTimestamp();
            var sample = Sample.Now();
            phases.Add(new PhaseCost((now - last) * 1000.0 / Stopwatch.Frequency,
                sample.UserMilliseconds - lastSample.UserMilliseconds, sample.SystemMilliseconds - lastSample.SystemMilliseconds,
                sample.MinorFaults - lastSample.MinorFaults, sample.MajorFaults - lastSample.MajorFaults,
                sample.JitMilliseconds - lastSample.JitMilliseconds, sample.JitMethods - lastSample.JitMethods));
            last = now;
            lastSample = sample;
        }

        /// <summary>Starts the next phase now, leaving the time since the last mark out of every phase.</summary>
        public void Skip()
        {
            last = Stopwatch.GetTimestamp();
            lastSample = Sample.Now();
        }

        public ChildPhases Phases => new(startup, phases[0], phases[1], phases[2]);
    }

    /// <summary>The process's counters at one moment.</summary>
    private readonly record struct Sample(double UserMilliseconds, double SystemMilliseconds, long MinorFaults, long MajorFaults,
        double JitMilliseconds, long JitMethods)
    {
        // utime and stime in /proc/self/stat count clock ticks; USER_HZ is 100 on every Linux ABI .NET runs on.
        private const double MillisecondsPerTick = 10;

        public static Sample Now()
        {
            double jit = System.Runtime.JitInfo.GetCompilationTime().TotalMilliseconds;
            long methods = System.Runtime.JitInfo.GetCompiledMethodCount();
            if (!File.Exists("/proc/self/stat"))
            {
                using var process = Process.GetCurrentProcess();
                return new Sample(process.UserProcessorTime.TotalMilliseconds, process.PrivilegedProcessorTime.TotalMilliseconds, 0, 0, jit, methods);
            }
            // "pid (comm) state ppid …": comm may hold spaces, so count fields after its closing parenthesis.
            // From there (0-based): 7 minflt, 9 majflt, 11 utime, 12 stime (proc(5) fields 10, 12, 14, 15).
            string stat = File.ReadAllText("/proc/self/stat");
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            return new Sample(long.Parse(fields[11], CultureInfo.InvariantCulture) * MillisecondsPerTick,
                long.Parse(fields[12], CultureInfo.InvariantCulture) * MillisecondsPerTick,
                long.Parse(fields[7], CultureInfo.InvariantCulture), long.Parse(fields[9], CultureInfo.InvariantCulture), jit, methods);
        }
    }

    public string ToLine() => LinePrefix + string.Join(' ',
        new[] { StartupMilliseconds }.Concat(Load.Values()).Concat(Inference.Values()).Concat(Steady.Values())
            .Select(v => v.ToString("R", CultureInfo.InvariantCulture)));

    /// <summary>Parses <see cref="ToLine"/>'s output, or returns null for any other line.</summary>
    public static ChildPhases? FromLine(string line)
    {
        if (!line.StartsWith(LinePrefix, StringComparison.Ordinal)) return null;
        var v = line[LinePrefix.Length..].Split(' ').Select(p => double.Parse(p, CultureInfo.InvariantCulture)).ToArray();
        if (v.Length != 1 + 3 * ValuesPerPhase) throw new InvalidDataException($"the child printed {v.Length} phase values, expected {1 + 3 * ValuesPerPhase}");
        return new ChildPhases(v[0], PhaseCost.FromValues(v.AsSpan(1, ValuesPerPhase)),
            PhaseCost.FromValues(v.AsSpan(1 + ValuesPerPhase, ValuesPerPhase)), PhaseCost.FromValues(v.AsSpan(1 + 2 * ValuesPerPhase, ValuesPerPhase)));
    }
}
