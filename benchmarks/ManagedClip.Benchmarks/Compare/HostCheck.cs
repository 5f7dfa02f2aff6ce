using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace ManagedClip.Benchmarks.Compare;

/// <summary>
/// <c>host-check [--seconds S] [--out FILE.md]</c>: how much of each core this machine's host actually gives us.
/// </summary>
/// <remarks>
/// One thread per core does nothing but read the clock; whenever two readings are more than 50 µs apart, the
/// thread was not running in between. On a quiet machine that time is near zero. On a VM whose host is busy, the
/// guest's own statistics (steal time) can miss it, but this does not: it is exactly the time a kernel thread
/// would have lost. It is measured with one thread, then with one per core, because a host can give a VM one busy
/// core in full and still take time from it when all its cores are busy. That is what caps the second core's
/// speed-up in <c>gemm-efficiency</c> on the project's VM.
/// </remarks>
internal static class HostCheck
{
    public const string Command = "host-check";

    private const int DefaultSeconds = 5, MaxSeconds = 600;
    private static readonly string Usage = $"usage: {Command} [--seconds S] [--out FILE.md]; S is 1 to {MaxSeconds} (default {DefaultSeconds})";
    private static readonly TimeSpan Gap = TimeSpan.FromMicroseconds(50);

    private readonly record struct ThreadReport(int Gaps, TimeSpan Lost, TimeSpan Longest);

    public static int Run(string[] args)
    {
        var options = CommandSupport.ParseOptions(args, "--seconds", "--out");
        if (options is null || !CommandSupport.TryGetCount(options, "--seconds", DefaultSeconds, MaxSeconds, out int seconds))
        {
            Console.Error.WriteLine(Usage);
            return 2;
        }
        string? markdownPath = options.GetValueOrDefault("--out");
        CommandSupport.CheckFolderExists(markdownPath);

        var duration = TimeSpan.FromSeconds(seconds);
        string started = DateTime.UtcNow.ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture);
        var md = new StringBuilder();
        md.AppendLine($"Host check: {started}; {CommandSupport.MachineDescription()}; load average {CommandSupport.LoadAverage()}; " +
            $"`ManagedClip.Benchmarks {string.Join(' ', new[] { Command }.Concat(args))}`");
        md.AppendLine();
        md.AppendLine($"| threads running | thread | pauses > {Gap.TotalMicroseconds:F0} µs | time not running | longest pause |");
        md.AppendLine("|---:|---:|---:|---:|---:|");
        foreach (int threads in new[] { 1, Environment.ProcessorCount }.Distinct())
        {
            Console.Error.WriteLine($"// {threads} thread(s) for {seconds} s");
            var reports = Measure(threads, duration);
            for (int t = 0; t < threads; t++)
                md.AppendLine($"| {threads} | {t + 1} | {reports[t].Gaps} | {100 * reports[t].Lost / duration:F1}% " +
                    $"({reports[t].Lost.TotalMilliseconds:F0} ms of {duration.TotalMilliseconds:F0}) | {reports[t].Longest.TotalMilliseconds:F1} ms |");
        }
        md.AppendLine();
        md.AppendLine("Each thread only reads the clock; a pause is two consecutive readings further apart than the threshold, " +
            "i.e. time the thread was not running (the host or the guest's scheduler ran something else).");
        Console.Write(md);
        if (markdownPath != null) File.WriteAllText(markdownPath, md.ToString());
        return 0;
    }

    private static ThreadReport[] Measure(int threadCount, TimeSpan duration)
    {
        var reports = new ThreadReport[threadCount];
        var threads = Enumerable.Range(0, threadCount).Select(t => new Thread(() => reports[t] = Watch(duration))).ToList();
        threads.ForEach(thread => thread.Start());
        threads.ForEach(thread => thread.Join());
        return reports;
    }

    private static ThreadReport Watch(TimeSpan duration)
    {
        long gapTicks = (long)(Gap.TotalSeconds * Stopwatch.Frequency);
        long start = Stopwatch.GetTimestamp(), end = start + (long)(duration.TotalSeconds * Stopwatch.Frequency);
        long previous = start, lost = 0, longest = 0;
        int gaps = 0;
        for (long now = start; now < end; previous = now)
        {
            now = Stopwatch.GetTimestamp();
            long step = now - previous;
            if (step <= gapTicks) continue;
            gaps++;
            lost += step;
            longest = Math.Max(longest, step);
        }
        return new ThreadReport(gaps, Stopwatch.GetElapsedTime(0, lost), Stopwatch.GetElapsedTime(0, longest));
    }
}
