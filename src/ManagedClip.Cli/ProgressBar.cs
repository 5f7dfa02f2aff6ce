using System.Globalization;
using ManagedClip.IO.Distribution;

namespace ManagedClip.Cli;

/// <summary>
/// Draws <see cref="ModelDownloader"/> progress, one line per file, with size, speed and time left:
/// <c>open_clip_pytorch_model.bin  [#######-----------------------]  23%  180.2 MiB / 747.4 MiB  11.3 MiB/s  ETA 0:50</c>.
/// On a terminal the line is redrawn in place; into a log or a pipe a plain line is written every few seconds and
/// when a file is done. Retries and other notes get a line of their own.
/// Pass it to the downloader directly (not wrapped in <see cref="Progress{T}"/>) so reports arrive in order,
/// and call <see cref="Complete"/> after the download, also after a failure.
/// </summary>
public sealed class ProgressBar : IProgress<DownloadProgress>
{
    private const int BarWidth = 30;
    private const int NameWidth = 28;

    private readonly TextWriter output;
    private readonly bool redrawInPlace;
    private readonly TimeProvider time;
    private readonly long started;
    private DownloadProgress? current;
    private string drawn = "";        // the line as it is on screen now (in-place mode)
    private TimeSpan fileStarted;     // when this file's first report arrived
    private long bytesAtStart;        // what the file had then (a resumed download does not count it as speed)
    private TimeSpan lastPlainLine;   // when the last plain line was written (log mode)

    /// <summary>Creates a progress bar writing to <paramref name="output"/>.</summary>
    /// <param name="output">Usually <see cref="Console.Error"/>, so progress never mixes with results on stdout.</param>
    /// <param name="redrawInPlace">True for a terminal (redraw with a carriage return); false for logs and pipes.</param>
    /// <param name="time">The clock speed and time left are measured with; default the system's.</param>
    public ProgressBar(TextWriter output, bool redrawInPlace, TimeProvider? time = null)
    {
        this.output = output;
        this.redrawInPlace = redrawInPlace;
        this.time = time ?? TimeProvider.System;
        started = this.time.GetTimestamp();
    }

    private TimeSpan Now => time.GetElapsedTime(started);

    /// <summary>How often a log gets a line while a file downloads.</summary>
    public TimeSpan PlainLineInterval { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Shows a progress report; a report for a new file finishes the previous file's line.</summary>
    public void Report(DownloadProgress value)
    {
        if (current is { } previous && previous.FileName != value.FileName) FinishLine();
        if (current is null || current.Value.FileName != value.FileName || value.BytesDone < bytesAtStart)
        {
            fileStarted = Now;
            bytesAtStart = value.BytesDone;
            lastPlainLine = Now;
        }
        current = value;
        if (value.Note is { } note)
        {
            if (redrawInPlace && drawn.Length > 0) output.Write("\r" + new string(' ', drawn.Length) + "\r");
            output.WriteLine($"managedclip: {note}");
            output.Flush();
            drawn = "";
            // The retry continues from what is on disk: measure the speed afresh.
            fileStarted = Now;
            bytesAtStart = value.BytesDone;
            return;
        }
        if (!redrawInPlace)
        {
            if (Now - lastPlainLine < PlainLineInterval) return;
            lastPlainLine = Now;
            output.WriteLine(Format(value));
            output.Flush();
            return;
        }
        var line = Format(value);
        if (line == drawn) return;
        // Pad with spaces so a shorter line fully covers the longer one it replaces.
        output.Write("\r" + line.PadRight(drawn.Length));
        output.Flush();
        drawn = line;
    }

    /// <summary>Finishes the last file's line. Call once the download has ended.</summary>
    public void Complete()
    {
        if (current is not null) FinishLine();
        current = null;
    }

    private void FinishLine()
    {
        if (redrawInPlace)
        {
            if (drawn.Length > 0) output.WriteLine();
        }
        else output.WriteLine(Format(current!.Value));
        output.Flush();
        drawn = "";
    }

    private string Format(DownloadProgress progress)
    {
        var name = progress.FileName.PadRight(NameWidth);
        var seconds = (Now - fileStarted).TotalSeconds;
        double? speed = seconds >= 0.5 ? (progress.BytesDone - bytesAtStart) / seconds : null; // bytes per second
        var rate = speed is double s ? $"  {FormatBytes((long)s)}/s" : "";
        if (progress.TotalBytes is not long total)
            return $"{name} {FormatBytes(progress.BytesDone)}{rate}";
        var fraction = total == 0 ? 1.0 : Math.Clamp((double)progress.BytesDone / total, 0, 1);
        var filled = (int)(fraction * BarWidth);
        var bar = new string('#', filled) + new string('-', BarWidth - filled);
        var percent = ((int)(fraction * 100)).ToString(CultureInfo.InvariantCulture).PadLeft(3);
        var left = total - progress.BytesDone;
        var eta = left > 0 && speed is > 0 ? "  ETA " + FormatDuration(TimeSpan.FromSeconds(left / speed.Value)) : "";
        return $"{name} [{bar}] {percent}%  {FormatBytes(progress.BytesDone)} / {FormatBytes(total)}{rate}{eta}";
    }

    private static string FormatDuration(TimeSpan t) => t.TotalHours >= 1
        ? $"{(int)t.TotalHours}:{t.Minutes:00}:{t.Seconds:00}"
        : $"{t.Minutes}:{t.Seconds:00}";

    private static string FormatBytes(long bytes)
    {
        string[] units = ["KiB", "MiB", "GiB"];
        if (bytes < 1024) return bytes.ToString(CultureInfo.InvariantCulture) + " B";
        double value = bytes;
        var unit = -1;
        while (value >= 1024 && unit < units.Length - 1) { value /= 1024; unit++; }
        return value.ToString("0.0", CultureInfo.InvariantCulture) + " " + units[unit];
    }
}
