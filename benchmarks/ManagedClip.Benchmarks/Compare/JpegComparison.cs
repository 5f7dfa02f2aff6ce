using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace ManagedClip.Benchmarks.Compare;

/// <summary>
/// <c>jpeg-compare [--rounds N] [--out FILE.md]</c>: ManagedClip's JPEG decoder against ImageSharp 2.1.13 on the
/// inputs of <see cref="JpegBenchmarkInputs"/>, the two decoders taking turns call by call in one process (order
/// alternating by round), reported as median times and the median, quartiles and range of the per-round ratios.
/// The same reasoning as <c>compare</c>: on this VM only paired, interleaved times cancel the drift.
/// </summary>
internal static class JpegComparison
{
    public const string Command = "jpeg-compare";

    private const int DefaultRounds = 21, MaxRounds = 1000, WarmUpCalls = 3;

    public static int Run(string[] args)
    {
        if (CommandSupport.ParseRoundsAndOut(args, Command, DefaultRounds, MaxRounds) is not { } options) return 2;
        int rounds = options.Rounds;
        string? markdownPath = options.MarkdownPath;

        string date = DateTime.UtcNow.ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture);
        string loadBefore = CommandSupport.LoadAverage();
        var rows = new StringBuilder();
        foreach (var input in JpegBenchmarkInputs.All())
        {
            Console.Error.WriteLine($"// {input.Name}: {WarmUpCalls} warm-up calls each, {rounds} rounds");
            for (int i = 0; i < WarmUpCalls; i++)
            {
                JpegBenchmarkInputs.DecodeManagedClip(input.Bytes);
                JpegBenchmarkInputs.DecodeImageSharp(input.Bytes);
            }
            var ours = new double[rounds];
            var theirs = new double[rounds];
            for (int round = 0; round < rounds; round++)
            {
                if (round % 2 == 0)
                {
                    ours[round] = Time(() => JpegBenchmarkInputs.DecodeManagedClip(input.Bytes));
                    theirs[round] = Time(() => JpegBenchmarkInputs.DecodeImageSharp(input.Bytes));
                }
                else
                {
                    theirs[round] = Time(() => JpegBenchmarkInputs.DecodeImageSharp(input.Bytes));
                    ours[round] = Time(() => JpegBenchmarkInputs.DecodeManagedClip(input.Bytes));
                }
            }
            var ratios = ours.Zip(theirs, (a, b) => a / b).ToArray();
            rows.AppendLine(CultureInfo.InvariantCulture,
                $"| {input.Name} | {input.Bytes.Length / 1024.0:F0} KiB | {CommandSupport.Median(theirs):F2} | {CommandSupport.Median(ours):F2} | " +
                $"**{CommandSupport.Median(ratios):F2}** | {CommandSupport.Quantile(ratios, 0.25):F2}–{CommandSupport.Quantile(ratios, 0.75):F2} | {ratios.Min():F2}–{ratios.Max():F2} |");
        }

        var markdown = new StringBuilder();
        markdown.AppendLine(CultureInfo.InvariantCulture, $"Measured {date} on {CommandSupport.MachineDescription()}; load average {loadBefore} before, {CommandSupport.LoadAverage()} after.");
        markdown.AppendLine(CultureInfo.InvariantCulture, $"Command: `ManagedClip.Benchmarks {Command} {string.Join(' ', args)}` ({rounds} rounds, order alternating, {WarmUpCalls} warm-up calls each).");
        markdown.AppendLine();
        markdown.AppendLine("| input | file | ImageSharp median ms | ManagedClip median ms | ratio (median) | ratio quartiles | ratio range |");
        markdown.AppendLine("|---|---|---|---|---|---|---|");
        markdown.Append(rows);
        Console.Write(markdown);
        if (markdownPath != null) File.WriteAllText(markdownPath, markdown.ToString());
        return 0;
    }

    private static double Time(Func<int> decode)
    {
        var clock = Stopwatch.StartNew();
        decode();
        return clock.Elapsed.TotalMilliseconds;
    }
}
