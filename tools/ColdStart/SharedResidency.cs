using System.Diagnostics;

namespace ManagedClip.ColdStart;

/// <summary>
/// What several processes using the same model hold in memory together: N ManagedClip children load the model and
/// classify once, then wait; the sum of their PSS (proportional set size: a page shared by k processes counts 1/k in
/// each) is compared with one child alone. Private copies of the packed weights add up; a mapped file's pages are
/// shared through the page cache.
/// </summary>
internal sealed record SharedResidency(string Mode, int Processes, long SingleKiB, long SumKiB)
{
    public static SharedResidency Measure(string modelDirectory, string image, string mode, string precision, int processes)
    {
        long single = HoldAndMeasure(modelDirectory, image, mode, precision, 1).Sum();
        long sum = HoldAndMeasure(modelDirectory, image, mode, precision, processes).Sum();
        return new SharedResidency($"{mode}, {precision}", processes, single, sum);
    }

    /// <summary>Starts <paramref name="count"/> holding children at once and returns each one's PSS (KiB) once all hold.</summary>
    private static long[] HoldAndMeasure(string modelDirectory, string image, string mode, string precision, int count)
    {
        var children = new List<Process>();
        try
        {
            for (int i = 0; i < count; i++)
            {
                var start = ColdStartRunner.ChildStart([ChildRun.ManagedClipMode, modelDirectory, image, mode, precision, ChildRun.Hold]);
                start.RedirectStandardInput = true;
                start.Environment[ChildPhases.StartVariable] = Stopwatch.GetTimestamp().ToString(System.Globalization.CultureInfo.InvariantCulture);
                var child = Process.Start(start) ?? throw new InvalidOperationException("a holding child did not start");
                _ = child.StandardError.ReadToEndAsync();
                children.Add(child);
            }
            foreach (var child in children)
            {
                for (string? line; (line = child.StandardOutput.ReadLine()) != ChildRun.HoldingLine;)
                    if (line is null) throw new InvalidOperationException($"a holding child ({mode}) exited with code {ExitCode(child)} before its result");
            }
            return children.Select(c => Pss(c.Id)).ToArray();
        }
        finally
        {
            foreach (var child in children)
            {
                try { child.StandardInput.WriteLine(); child.StandardInput.Close(); } catch (IOException) { }
                if (!child.WaitForExit(60_000)) child.Kill();
                child.Dispose();
            }
        }
    }

    private static int ExitCode(Process child)
    {
        child.WaitForExit();
        return child.ExitCode;
    }

    /// <summary>The <c>Pss:</c> line of /proc/PID/smaps_rollup, in KiB.</summary>
    private static long Pss(int pid)
    {
        foreach (var line in File.ReadLines($"/proc/{pid}/smaps_rollup"))
            if (line.StartsWith("Pss:", StringComparison.Ordinal))
                return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]);
        throw new InvalidDataException($"/proc/{pid}/smaps_rollup has no Pss line");
    }
}
