using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace ManagedClip.Benchmarks.Compare;

/// <summary>
/// <c>compare-classify-each [--rounds N] [--out FILE.md]</c>: what answering each image alone costs the server's
/// several-image /classify. <see cref="ClipModel.Classify(IReadOnlyList{ImageInput}, IReadOnlyList{string}, string)"/>
/// (one failure fails all) and the internal <c>ClassifyEach</c> (each image its result or its error) take turns call
/// by call on the model card's seven JPEGs plus its pie chart (eight images, one pass) against the model card's nine
/// labels, on the full-size synthetic model; then <c>ClassifyEach</c> with the eighth image truncated beside
/// <c>Classify</c> on the seven good ones. The prompts are cached after the warm-up calls, as on a server.
/// </summary>
internal static class ClassifyEachComparison
{
    public const string Command = "compare-classify-each";
    private const int DefaultRounds = 5, MaxRounds = 1000, WarmUpCalls = 1;

    private static readonly string[] Labels =
    [
        "adenocarcinoma histopathology", "brain MRI", "covid line chart", "squamous cell carcinoma histopathology",
        "immunohistochemistry histopathology", "bone X-ray", "chest X-ray", "pie chart", "hematoxylin and eosin histopathology",
    ];

    public static int Run(string[] args)
    {
        if (CommandSupport.ParseRoundsAndOut(args, Command, DefaultRounds, MaxRounds) is not { } options) return 2;
        int rounds = options.Rounds;
        string date = DateTime.UtcNow.ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture);
        string loadBefore = CommandSupport.LoadAverage();
        string folder = JpegBenchmarkInputs.ModelCardFolder();
        var good = JpegBenchmarkInputs.ModelCardFiles.Append("pie_chart.png")
            .Select(f => ImageInput.FromBytes(File.ReadAllBytes(Path.Combine(folder, f)), f)).ToList(); // 8 images
        byte[] pie = good[^1].EncodedBytes!.Value.ToArray();
        var withCut = good.Take(7).Append(ImageInput.FromBytes(pie[..(pie.Length / 2)], "pie_chart_cut.png")).ToList();

        // Packing in memory: the scratch model folder is not written to.
        using var model = ClipModel.Load(new ClipModelOptions
        {
            ModelDirectory = Path.GetDirectoryName(SyntheticModelFolder.WeightsPath), UsePackedWeightsFile = false,
        });
        string template = ClipModel.DefaultTemplate;
        var workloads = new (string Name, (string Name, Func<object> Call)[] Variants)[]
        {
            ("8 good images", [
                ("Classify", () => model.Classify(good, Labels, template)),
                ("ClassifyEach", () => model.ClassifyEach(good, Labels, template, CancellationToken.None))]),
            ("7 good + 1 truncated (Classify: the 7 good)", [
                ("Classify", () => model.Classify(good.Take(7).ToList(), Labels, template)),
                ("ClassifyEach", () => model.ClassifyEach(withCut, Labels, template, CancellationToken.None))]),
        };

        // The good images' probabilities are the same bits either way (the server's test checks it on the tiny model).
        var plain = model.Classify(good, Labels, template);
        var each = model.ClassifyEach(good, Labels, template, CancellationToken.None);
        bool identical = plain.Zip(each).All(p => p.First.Probabilities.AsSpan().SequenceEqual(p.Second.Result!.Probabilities));

        var md = new StringBuilder();
        md.AppendLine($"Classify vs ClassifyEach, interleaved: {date}; {CommandSupport.MachineDescription()}; load average {loadBefore} before; " +
            $"`ManagedClip.Benchmarks {string.Join(' ', new[] { Command }.Concat(args))}`");
        md.AppendLine();
        md.AppendLine("| Workload | Rounds | Classify ms, median (min–max) | ClassifyEach ms, median (min–max) | ClassifyEach / Classify time (IQR) |");
        md.AppendLine("|---|---:|---:|---:|---:|");
        foreach (var (name, variants) in workloads)
        {
            Console.Error.WriteLine($"// {name}: {rounds} rounds");
            foreach (var v in variants)
                for (int i = 0; i < WarmUpCalls; i++) v.Call();
            var times = new double[variants.Length][];
            for (int v = 0; v < variants.Length; v++) times[v] = new double[rounds];
            for (int round = 0; round < rounds; round++)
                for (int turn = 0; turn < variants.Length; turn++)
                {
                    int v = (round + turn) % variants.Length;
                    long start = Stopwatch.GetTimestamp();
                    variants[v].Call();
                    times[v][round] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
                }
            var ratios = times[1].Zip(times[0], (e, c) => e / c).ToArray();
            md.AppendLine($"| {name} | {rounds} | {Spread(times[0])} | {Spread(times[1])} | " +
                $"{F(CommandSupport.Median(ratios), 3)}× ({F(CommandSupport.Quantile(ratios, 0.25), 3)}–{F(CommandSupport.Quantile(ratios, 0.75), 3)}) |");
        }
        md.AppendLine();
        md.AppendLine($"Each round times one call of each variant back to back, the order alternating; a ratio is the median of the rounds' ratios. " +
            $"Good images' probabilities identical bit for bit between the two: {(identical ? "yes" : "NO")}.");
        Console.Write(md.ToString());
        if (options.MarkdownPath != null) File.WriteAllText(options.MarkdownPath, md.ToString());
        return identical ? 0 : 1;
    }

    private static string Spread(double[] ms) => $"{F(CommandSupport.Median(ms), 1)} ({F(ms.Min(), 1)}–{F(ms.Max(), 1)})";

    private static string F(double value, int decimals) => value.ToString("F" + decimals, CultureInfo.InvariantCulture);
}
