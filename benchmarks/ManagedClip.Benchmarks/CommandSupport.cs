using System.Globalization;
using System.Runtime.InteropServices;

namespace ManagedClip.Benchmarks;

/// <summary>
/// What the benchmark program's own commands (<c>compare</c>, <c>gemm-efficiency</c>, <c>onnx-export</c> …) share:
/// "--name value" options, medians and quartiles, and a description of the machine a result was measured on.
/// </summary>
internal static class CommandSupport
{
    /// <summary>Cosine of two vectors, summed in float64 (1 when both are zero).</summary>
    public static double Cosine(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        double dot = 0, aa = 0, bb = 0;
        for (int i = 0; i < a.Length; i++)
        {
            dot += (double)a[i] * b[i];
            aa += (double)a[i] * a[i];
            bb += (double)b[i] * b[i];
        }
        return aa == 0 && bb == 0 ? 1 : dot / Math.Sqrt(aa * bb);
    }

    /// <summary>"--name value" pairs, each name from <paramref name="names"/> and at most once; null on anything else.</summary>
    public static Dictionary<string, string>? ParseOptions(string[] args, params string[] names)
    {
        var options = new Dictionary<string, string>();
        for (int i = 0; i < args.Length; i += 2)
        {
            if (!names.Contains(args[i]) || i + 1 >= args.Length || !options.TryAdd(args[i], args[i + 1])) return null;
        }
        return options;
    }

    /// <summary>The <c>--rounds</c> option: absent gives <paramref name="defaultRounds"/>, else a whole number 1…<paramref name="maxRounds"/>.</summary>
    public static bool TryGetRounds(Dictionary<string, string> options, int defaultRounds, int maxRounds, out int rounds)
        => TryGetCount(options, "--rounds", defaultRounds, maxRounds, out rounds);

    /// <summary>The whole number given for <paramref name="option"/> (or the default), if it is in [1, max].</summary>
    public static bool TryGetCount(Dictionary<string, string> options, string option, int defaultValue, int max, out int value)
    {
        value = defaultValue;
        return !options.TryGetValue(option, out var text)
            || (int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out value) && value >= 1 && value <= max);
    }

    /// <summary>What a timed command was asked for: rounds, the Markdown file (or none), and every option given.</summary>
    public sealed record RoundsOptions(int Rounds, string? MarkdownPath, Dictionary<string, string> All);

    /// <summary>
    /// The options every timed command takes, "--rounds N" and "--out FILE.md", plus <paramref name="extra"/> names
    /// (each "--name value"). On a wrong argument prints the usage line ("[--rounds N] [--out FILE.md]" and the extras)
    /// and gives null; fails at once when the output file's folder does not exist.
    /// </summary>
    public static RoundsOptions? ParseRoundsAndOut(string[] args, string command, int defaultRounds, int maxRounds, params string[] extra)
    {
        var options = ParseOptions(args, ["--rounds", "--out", .. extra]);
        if (options is null || !TryGetRounds(options, defaultRounds, maxRounds, out int rounds))
        {
            string extras = string.Concat(extra.Select(name => $" [{name} FILE]"));
            Console.Error.WriteLine($"usage: {command} [--rounds N] [--out FILE.md]{extras}; N is 1 to {maxRounds} (default {defaultRounds})");
            return null;
        }
        string? markdownPath = options.GetValueOrDefault("--out");
        CheckFolderExists(markdownPath);
        return new RoundsOptions(rounds, markdownPath, options);
    }

    /// <summary>Fails before minutes of measuring when an output file's folder does not exist.</summary>
    public static void CheckFolderExists(string? path)
    {
        if (path != null && Path.GetDirectoryName(Path.GetFullPath(path)) is { } folder && !Directory.Exists(folder))
            throw new DirectoryNotFoundException($"The folder of '{path}' does not exist.");
    }

    public static double Median(IEnumerable<double> values) => Quantile(values, 0.5);

    /// <summary>
    /// The <paramref name="p"/>-quantile, interpolating linearly between the two nearest order statistics
    /// (the common "type 7" definition, as in Excel's QUARTILE.INC and NumPy's default).
    /// </summary>
    public static double Quantile(IEnumerable<double> values, double p)
    {
        var sorted = values.Order().ToArray();
        double position = p * (sorted.Length - 1);
        int below = (int)Math.Floor(position), above = (int)Math.Ceiling(position);
        return sorted[below] + (position - below) * (sorted[above] - sorted[below]);
    }

    /// <summary>Cores, CPU model and .NET version: what a time depends on besides the code.</summary>
    public static string MachineDescription()
    {
        string cpu = ReadFirstLine("/proc/cpuinfo", line => line.StartsWith("model name", StringComparison.Ordinal))
            ?.Split(':', 2)[1].Trim() ?? "CPU model unknown";
        return $"{Environment.ProcessorCount} cores, {cpu}, {RuntimeInformation.FrameworkDescription}";
    }

    /// <summary>The 1-, 5- and 15-minute load averages, e.g. "0.42 1.02 0.90" (other processes' load on the machine).</summary>
    public static string LoadAverage() =>
        ReadFirstLine("/proc/loadavg", _ => true) is { } line ? string.Join(' ', line.Split(' ').Take(3)) : "n/a";

    private static string? ReadFirstLine(string path, Func<string, bool> predicate)
    {
        try
        {
            return File.Exists(path) ? File.ReadLines(path).FirstOrDefault(predicate) : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
