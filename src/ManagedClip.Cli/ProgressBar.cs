using System.Globalization;
using ManagedClip.IO.Distribution;

namespace ManagedClip.Cli;

/// <summary>
/// Draws <see cref="ModelDownloader"/> progress, one line per file:
/// <c>vocab.txt                    [###############---------------]  50%  110.0 KiB / 219.8 KiB</c>.
/// On a terminal the line is redrawn in place; into a redirected stream only each file's final line is written.
/// Pass it to the downloader directly (not wrapped in <see cref="Progress{T}"/>) so reports arrive in order,
/// and call <see cref="Complete"/> after the download, also after a failure.
/// </summary>
public sealed class ProgressBar : IProgress<DownloadProgress>
{
    private const int BarWidth = 30;
    private const int NameWidth = 28;

    private readonly TextWriter output;
    private readonly bool redrawInPlace;
    private DownloadProgress? current;
    private string drawn = "";   // the line as it is on screen now (in-place mode)

    /// <summary>Creates a progress bar writing to <paramref name="output"/>.</summary>
    /// <param name="output">Usually <see cref="Console.Error"/>, so progress never mixes with results on stdout.</param>
    /// <param name="redrawInPlace">True for a terminal (redraw with a carriage return); false for logs and pipes.</param>
    public ProgressBar(TextWriter output, bool redrawInPlace)
    {
        this.output = output;
        this.redrawInPlace = redrawInPlace;
    }

    /// <summary>Shows a progress report; a report for a new file finishes the previous file's line.</summary>
    public void Report(DownloadProgress value)
    {
        if (current is { } previous && previous.FileName != value.FileName) FinishLine();
        current = value;
        if (!redrawInPlace) return;
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
        if (redrawInPlace) output.WriteLine();
        else output.WriteLine(Format(current!.Value));
        output.Flush();
        drawn = "";
    }

    private static string Format(DownloadProgress progress)
    {
        var name = progress.FileName.PadRight(NameWidth);
        if (progress.TotalBytes is not long total)
            return $"{name} {FormatBytes(progress.BytesDone)}";
        var fraction = total == 0 ? 1.0 : Math.Clamp((double)progress.BytesDone / total, 0, 1);
        var filled = (int)(fraction * BarWidth);
        var bar = new string('#', filled) + new string('-', BarWidth - filled);
        var percent = ((int)(fraction * 100)).ToString(CultureInfo.InvariantCulture).PadLeft(3);
        return $"{name} [{bar}] {percent}%  {FormatBytes(progress.BytesDone)} / {FormatBytes(total)}";
    }

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
