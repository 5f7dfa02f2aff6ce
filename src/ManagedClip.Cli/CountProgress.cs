namespace ManagedClip.Cli;

/// <summary>"what done/total" on stderr: redrawn in place on a terminal, a line per tenth otherwise (logs stay short).</summary>
internal sealed class CountProgress(TextWriter output, string what)
{
    private readonly bool redraw = ReferenceEquals(output, Console.Error) && !Console.IsErrorRedirected;
    private int lastDecile = -1;

    public void Report(int done, int total)
    {
        if (redraw)
        {
            output.Write($"\r{what} {done}/{total}");
            if (done == total) output.WriteLine();
            return;
        }
        int decile = total == 0 ? 10 : done * 10 / total;
        if (decile == lastDecile) return;
        lastDecile = decile;
        output.WriteLine($"{what} {done}/{total}");
    }
}
