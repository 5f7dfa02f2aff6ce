using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace ManagedClip.Benchmarks.Compare;

/// <summary>
/// <c>packed-compare --model DIR [--rounds N] [--out FILE.md]</c>: steady-state speed with the block weights read from
/// the mapped packed-weights file against the same weights packed in memory, interleaved in one process so that host
/// load hits both alike. Each round embeds 8 images and 5 prompts with one model, then with the other; the report
/// gives the median and spread of the per-round time ratio.
/// </summary>
/// <remarks>
/// What could differ: mapped file pages are 4 KB pages of the page cache, while the in-memory panels are anonymous
/// memory that may get transparent huge pages, so the GEMM's panel walks may take more TLB misses. The outputs are
/// also compared bit for bit.
/// </remarks>
internal static class PackedWeightsComparison
{
    public const string Command = "packed-compare";

    private const int DefaultRounds = 15, MaxRounds = 1000;
    private static readonly string Usage = $"usage: {Command} --model DIR [--rounds N] [--out FILE.md]; N is 1 to {MaxRounds} (default {DefaultRounds})";

    public static int Run(string[] args)
    {
        var options = CommandSupport.ParseOptions(args, "--model", "--rounds", "--out");
        if (options is null || !options.TryGetValue("--model", out var model)
            || !CommandSupport.TryGetCount(options, "--rounds", DefaultRounds, MaxRounds, out int rounds))
        {
            Console.Error.WriteLine(Usage);
            return 2;
        }
        string? markdownPath = options.GetValueOrDefault("--out");
        CommandSupport.CheckFolderExists(markdownPath);

        using var mapped = ClipModel.Load(new ClipModelOptions { ModelDirectory = model });
        using var inMemory = ClipModel.Load(new ClipModelOptions { ModelDirectory = model, UsePackedWeightsFile = false });
        if (mapped.PackedWeightsPath is null) throw new ArgumentException($"{model}: no packed-weights file was mapped (is the model that small?)");

        var image = BenchmarkImage();
        var images = Enumerable.Repeat(ImageInput.FromBytes(image, "gradient.png"), 8).ToArray();
        string[] prompts = ["this is a photo of adenocarcinoma histopathology", "this is a photo of brain MRI", "this is a photo of chest X-ray",
            "this is a photo of bone X-ray", "this is a photo of covid line chart"];
        double Time(ClipModel m, out float[][] result)
        {
            long start = Stopwatch.GetTimestamp();
            result = [.. m.EmbedImages(images, normalize: false), .. m.EmbedTexts(prompts, normalize: false)];
            return Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        }
        Time(mapped, out _); // warm-up: the kernels' first calls compile them, and the first touches map the pages
        Time(inMemory, out _);

        var ratios = new List<double>();
        var mappedMs = new List<double>();
        var memoryMs = new List<double>();
        bool identical = true;
        for (int round = 0; round < rounds; round++)
        {
            // Alternate which goes first, so neither always follows the other's cache footprint.
            float[][] a, b;
            double ta, tb;
            if (round % 2 == 0) { ta = Time(mapped, out a); tb = Time(inMemory, out b); }
            else { tb = Time(inMemory, out b); ta = Time(mapped, out a); }
            mappedMs.Add(ta);
            memoryMs.Add(tb);
            ratios.Add(ta / tb);
            identical &= a.Zip(b).All(p => p.First.Select(BitConverter.SingleToInt32Bits).SequenceEqual(p.Second.Select(BitConverter.SingleToInt32Bits)));
        }

        string started = DateTime.UtcNow.ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture);
        var md = new StringBuilder();
        md.AppendLine($"Packed-weights compare: {started}; {CommandSupport.MachineDescription()}; load average {CommandSupport.LoadAverage()}; " +
            $"`ManagedClip.Benchmarks {string.Join(' ', new[] { Command }.Concat(args))}`; {rounds} interleaved rounds of 8 images + 5 prompts");
        md.AppendLine();
        md.AppendLine("| weights | median round | min | max |");
        md.AppendLine("|---|---:|---:|---:|");
        md.AppendLine($"| mapped packed-weights file | {Median(mappedMs):F0} ms | {mappedMs.Min():F0} ms | {mappedMs.Max():F0} ms |");
        md.AppendLine($"| packed in memory | {Median(memoryMs):F0} ms | {memoryMs.Min():F0} ms | {memoryMs.Max():F0} ms |");
        md.AppendLine();
        var sorted = ratios.Order().ToArray();
        md.AppendLine($"Mapped / in memory, per round: median {Median(ratios):F3}×, quartiles {sorted[sorted.Length / 4]:F3}–{sorted[sorted.Length * 3 / 4]:F3}×, " +
            $"range {sorted[0]:F3}–{sorted[^1]:F3}×. Outputs bit-identical in every round: {(identical ? "yes" : "NO")}.");
        Console.Write(md);
        if (markdownPath != null) File.WriteAllText(markdownPath, md.ToString());
        return identical ? 0 : 1;
    }

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
    }

    /// <summary>A 640×480 colour gradient as PNG bytes: decoded, resized and cropped like any photo.</summary>
    private static byte[] BenchmarkImage()
    {
        using var picture = new SixLabors.ImageSharp.Image<SixLabors.ImageSharp.PixelFormats.Rgb24>(640, 480);
        for (int y = 0; y < picture.Height; y++)
            for (int x = 0; x < picture.Width; x++)
                picture[x, y] = new SixLabors.ImageSharp.PixelFormats.Rgb24((byte)(x * 255 / 639), (byte)(y * 255 / 479), (byte)((x + y) % 256));
        using var stream = new MemoryStream();
        SixLabors.ImageSharp.ImageExtensions.SaveAsPng(picture, stream);
        return stream.ToArray();
    }
}
