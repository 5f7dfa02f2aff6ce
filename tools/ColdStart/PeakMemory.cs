namespace ManagedClip.ColdStart;

/// <summary>
/// This process's memory from <c>/proc/self/status</c>: VmHWM is the peak resident set (every page ever
/// resident at once, anonymous and file-backed alike, so a memory-mapped weights file counts as far as it was
/// touched); RssAnon and RssFile split the current resident set into private memory and mapped file pages.
/// </summary>
internal sealed record PeakMemory(long PeakKiB, long AnonymousKiB, long FileKiB)
{
    private const string LinePrefix = "MEMORY ";

    /// <summary>Reads the current process's figures (Linux only: the tool reports nothing it cannot measure).</summary>
    public static PeakMemory OfThisProcess()
    {
        const string status = "/proc/self/status";
        if (!File.Exists(status)) throw new InvalidOperationException($"{status} does not exist: peak memory is measured on Linux only.");
        var fields = File.ReadLines(status)
            .Select(line => line.Split(':', 2))
            .Where(parts => parts.Length == 2)
            .ToDictionary(parts => parts[0], parts => parts[1].Trim());
        long KiB(string name) => fields.TryGetValue(name, out var value) && value.EndsWith(" kB")
            ? long.Parse(value[..^3])
            : throw new InvalidDataException($"{status}: no '{name}: … kB' line.");
        return new PeakMemory(KiB("VmHWM"), KiB("RssAnon"), KiB("RssFile"));
    }

    /// <summary>The line a child prints for its parent.</summary>
    public string ToLine() => $"{LinePrefix}{PeakKiB} {AnonymousKiB} {FileKiB}";

    /// <summary>Parses <see cref="ToLine"/>'s output, or returns null for any other line.</summary>
    public static PeakMemory? FromLine(string line)
    {
        if (!line.StartsWith(LinePrefix, StringComparison.Ordinal)) return null;
        var numbers = line[LinePrefix.Length..].Split(' ').Select(long.Parse).ToArray();
        return new PeakMemory(numbers[0], numbers[1], numbers[2]);
    }
}
