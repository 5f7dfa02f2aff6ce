using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using ManagedClip.Retrieval;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats.Jpeg;
using SixLabors.ImageSharp.PixelFormats;

namespace ManagedClip.Benchmarks.Retrieval;

/// <summary>
/// <c>index-throughput [--images 240] [--rounds 3] [--corpus DIR] [--precision fp32|bf16|int8]</c>: how fast
/// <c>managedclip index</c> turns a folder of realistic images into an index, on the full-size synthetic model
/// (<c>MANAGEDCLIP_SYNTH_DIR</c>), and where the time goes. Each round times, one after the other in one process
/// (the order rotated from round to round, so load from other processes hits every mode alike):
/// <list type="bullet">
/// <item><b>index</b>: <see cref="ImageIndex"/> over the whole folder into a fresh index, the code the CLI runs (walk,
/// hash, decode, embed, write the parts, compact).</item>
/// <item><b>stream + hash tasks</b>: the index's embedding stage the way it was done before <see cref="EmbeddingPipeline"/>
/// (<see cref="ClipModel.EmbedImageStream"/>: the next pass decoded on one worker; each file read again to hash it), so
/// the index mode (which now runs the pipeline) and the previous way are timed side by side.</item>
/// <item><b>embed only</b>: the image tower on the same images already preprocessed, in passes of eight: the model's
/// own rate, the ceiling for the index.</item>
/// <item><b>decode only</b>: decode + resize + crop + normalise of every file on one thread, nothing else.</item>
/// <item><b>hash only</b>, <b>write only</b>: the SHA-256 of every file, and the parts written from ready vectors.</item>
/// </list>
/// CPU time (both cores) is reported beside wall time: on a shared machine it is what a mode costs whatever else runs.
/// </summary>
internal static class IndexThroughput
{
    public const string Command = "index-throughput";

    public static int Run(string[] args)
    {
        var options = CommandSupport.ParseOptions(args, "--images", "--rounds", "--corpus", "--precision");
        if (options == null || !CommandSupport.TryGetCount(options, "--images", 240, 100_000, out int count)
            || !CommandSupport.TryGetRounds(options, 3, 50, out int rounds)
            || ParsePrecision(options.GetValueOrDefault("--precision", "fp32")) is not { } precision)
        {
            Console.Error.WriteLine($"usage: {Command} [--images 240] [--rounds 3] [--corpus DIR] [--precision fp32|bf16|int8]");
            return 2;
        }
        string corpus = options.GetValueOrDefault("--corpus") ?? Path.Combine(Path.GetTempPath(), $"indexrate-corpus-{count}");
        string modelFolder = Path.GetDirectoryName(SyntheticModelFolder.WeightsPath)!;
        string scratch = Path.Combine(Path.GetTempPath(), $"indexrate-bench-{Environment.ProcessId}");

        var files = ThroughputCorpus.Ensure(corpus, count);
        long bytes = files.Sum(f => new FileInfo(f).Length);
        Console.WriteLine($"# {Command}: {files.Count} files ({bytes / 1e6:F0} MB: {ThroughputCorpus.Describe(files)}) in {corpus}; model {modelFolder}, {precision}; " +
            $"{CommandSupport.MachineDescription()}; load {CommandSupport.LoadAverage()}; {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC");

        using var model = ClipModel.Load(new ClipModelOptions { ModelDirectory = modelFolder, Precision = precision });
        var preprocessor = model.Preprocessor;
        int pixelsPerImage = preprocessor.OutputLength, width = model.EmbeddingSize;

        // The preprocessed images for "embed only" (decoded once, outside the timings); failures stay zero rows, as in
        // the index, where a failed image's slot is computed and dropped.
        var pixels = new float[files.Count * pixelsPerImage]; // [N, 3, S, S]
        int failures = 0;
        for (int i = 0; i < files.Count; i++)
        {
            try { preprocessor.Preprocess(files[i], pixels.AsSpan(i * pixelsPerImage, pixelsPerImage)); }
            catch (InvalidDataException) { failures++; }
        }
        var vectors = new float[files.Count][];
        var features = new float[8 * width];

        var modes = new (string Name, Func<int> Run)[]
        {
            ("index", () =>
            {
                string indexFolder = Path.Combine(scratch, "index");
                if (Directory.Exists(indexFolder)) Directory.Delete(indexFolder, recursive: true);
                using var run = ImageIndex.Open(model, corpus, indexFolder, new IndexOptions());
                var report = run.RunToEnd();
                if (report.Rows != files.Count || report.Errors != failures)
                    throw new InvalidOperationException($"index gave {report.Rows} rows, {report.Errors} errors; expected {files.Count}, {failures}");
                return files.Count;
            }),
            ("stream + hash tasks", () =>
            {
                // The same work as the index did it before the pipeline: ClipModel.EmbedImageStream (the next pass
                // decoded on one worker while the tower runs) and each file read again to hash it on the thread pool.
                var hashes = new Queue<Task<string?>>();
                var inputs = files.Select(file =>
                {
                    hashes.Enqueue(Task.Run(() => ContentHash.OfFileOrNull(file)));
                    return ImageInput.FromFile(file);
                });
                int n = 0;
                foreach (var result in model.EmbedImageStream(inputs, normalize: true))
                {
                    hashes.Dequeue().GetAwaiter().GetResult();
                    n++;
                }
                return n;
            }),
            ("embed only", () =>
            {
                using (model.EnterStreamingCall())
                    for (int first = 0; first < files.Count; first += 8)
                    {
                        int n = Math.Min(8, files.Count - first);
                        model.EmbedPreprocessed(pixels.AsSpan(first * pixelsPerImage, n * pixelsPerImage), n, features.AsSpan(0, n * width));
                        for (int i = 0; i < n; i++) vectors[first + i] = model.FinishEmbedding(features.AsSpan(i * width, width), normalize: true);
                    }
                return files.Count;
            }),
            ("decode only", () =>
            {
                var slot = new float[pixelsPerImage];
                foreach (var file in files)
                {
                    try { preprocessor.Preprocess(file, slot); }
                    catch (InvalidDataException) { }
                }
                return files.Count;
            }),
            ("hash only", () =>
            {
                foreach (var file in files)
                {
                    using var stream = File.OpenRead(file);
                    SHA256.HashData(stream);
                }
                return files.Count;
            }),
            ("write only", () =>
            {
                string indexFolder = Path.Combine(scratch, "write");
                if (Directory.Exists(indexFolder)) Directory.Delete(indexFolder, recursive: true);
                Directory.CreateDirectory(indexFolder);
                var zeros = new float[width];
                for (int first = 0, part = 1; first < files.Count; first += 256, part++)
                {
                    int n = Math.Min(256, files.Count - first);
                    using (var builder = new PartBuilder(indexFolder, $"part-{part:D6}", n, width, EmbeddingDType.Float32, "bench"))
                    {
                        for (int i = first; i < first + n; i++)
                            builder.Add(new IndexRow(Path.GetFileName(files[i]), 1, DateTime.UnixEpoch, new string('0', 64), null), vectors[i] ?? zeros);
                        builder.Complete();
                    }
                    Durable.FlushFolder(indexFolder);
                }
                return files.Count;
            }),
        };

        // Warm-up: one pass through the tower and every light mode once compile their code; the heavy modes spend
        // minutes in the tower, next to which their own first-call compilation is noise.
        model.EmbedImages(files.Take(8).Select(ImageInput.FromFile).Where(i => !i.Name.Contains("truncated", StringComparison.Ordinal)).ToList());
        var wall = modes.ToDictionary(m => m.Name, _ => new List<double>());
        var cpu = modes.ToDictionary(m => m.Name, _ => new List<double>());
        var self = Process.GetCurrentProcess();
        try
        {
            for (int round = -1; round < rounds; round++)
            {
                var load = CommandSupport.LoadAverage();
                var line = new List<string>();
                for (int k = 0; k < modes.Length; k++)
                {
                    var (name, run) = modes[(k + Math.Max(round, 0)) % modes.Length];
                    if (round < 0 && Heavy(name)) continue;
                    GC.Collect();
                    self.Refresh();
                    var cpuBefore = self.TotalProcessorTime;
                    long start = Stopwatch.GetTimestamp();
                    int images = run();
                    double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
                    self.Refresh();
                    double cpuSeconds = (self.TotalProcessorTime - cpuBefore).TotalSeconds;
                    line.Add($"{name} {images / seconds:F2}/s ({seconds:F1} s, CPU {cpuSeconds:F1} s)");
                    if (round < 0) continue;
                    wall[name].Add(seconds);
                    cpu[name].Add(cpuSeconds);
                }
                Console.WriteLine($"{(round < 0 ? "warm-up" : $"round {round + 1}")} (load {load}): {string.Join("; ", line)}");
            }
        }
        finally
        {
            if (Directory.Exists(scratch)) Directory.Delete(scratch, recursive: true);
        }

        Console.WriteLine();
        Console.WriteLine($"| mode | images/s, median (min–max) | wall s, median | CPU s, median | share of index wall |");
        Console.WriteLine("|---|---|---|---|---|");
        double indexWall = CommandSupport.Median(wall["index"]);
        foreach (var (name, _) in modes)
        {
            var rates = wall[name].Select(s => files.Count / s).ToList();
            Console.WriteLine($"| {name} | {CommandSupport.Median(rates):F2} ({rates.Min():F2}–{rates.Max():F2}) | {CommandSupport.Median(wall[name]):F1} | " +
                $"{CommandSupport.Median(cpu[name]):F1} | {CommandSupport.Median(wall[name]) / indexWall:P0} |");
        }
        // Within a round the modes saw about the same load, so per-round ratios are what to compare.
        var ratio = wall["index"].Zip(wall["embed only"], (a, b) => a / b).ToList();
        var previous = wall["index"].Zip(wall["stream + hash tasks"], (a, b) => a / b).ToList();
        var previousCpu = cpu["index"].Zip(cpu["stream + hash tasks"], (a, b) => a / b).ToList();
        var ideal = Enumerable.Range(0, rounds).Select(r =>
            wall["index"][r] / (wall["embed only"][r] + cpu["decode only"][r] / Environment.ProcessorCount + cpu["hash only"][r] / Environment.ProcessorCount + wall["write only"][r])).ToList();
        Console.WriteLine();
        Console.WriteLine($"index wall / embed-only wall, per round: median {CommandSupport.Median(ratio):F3} (min {ratio.Min():F3}, max {ratio.Max():F3})");
        Console.WriteLine($"index wall / stream + hash tasks wall, per round: median {CommandSupport.Median(previous):F3} (min {previous.Min():F3}, max {previous.Max():F3}); " +
            $"CPU: median {CommandSupport.Median(previousCpu):F3} (min {previousCpu.Min():F3}, max {previousCpu.Max():F3})");
        Console.WriteLine($"index wall / (embed + decode CPU/cores + hash CPU/cores + write), per round: median {CommandSupport.Median(ideal):F3} " +
            $"(min {ideal.Min():F3}, max {ideal.Max():F3}); 1 = every core busy with needed work all the time");
        return 0;
    }

    public const string WalkCommand = "index-walk";

    /// <summary>
    /// <c>index-walk [--files 200000]</c>: the memory and time of listing a large folder (FileTree.Walk, what
    /// <c>index</c> plans from): N empty <c>.png</c> files in folders of 1000, walked once; the managed heap the listing
    /// keeps, per file.
    /// </summary>
    public static int RunWalk(string[] args)
    {
        var options = CommandSupport.ParseOptions(args, "--files");
        if (options == null || !CommandSupport.TryGetCount(options, "--files", 200_000, 20_000_000, out int count))
        {
            Console.Error.WriteLine($"usage: {WalkCommand} [--files 200000]");
            return 2;
        }
        string folder = Path.Combine(Path.GetTempPath(), $"indexrate-walk-{count}");
        if (!File.Exists(Path.Combine(folder, ".complete")))
        {
            for (int i = 0; i < count; i++)
            {
                string sub = Path.Combine(folder, $"series{i / 1000:D5}");
                if (i % 1000 == 0) Directory.CreateDirectory(sub);
                File.Create(Path.Combine(sub, $"image{i:D8}.png")).Dispose();
            }
            File.WriteAllText(Path.Combine(folder, ".complete"), "");
        }
        GC.Collect();
        long before = GC.GetTotalMemory(forceFullCollection: true);
        var clock = Stopwatch.StartNew();
        var walk = FileTree.Walk(folder, null, _ => true);
        double seconds = clock.Elapsed.TotalSeconds;
        long after = GC.GetTotalMemory(forceFullCollection: true);
        Console.WriteLine($"# {WalkCommand}: {walk.Files.Count:N0} files in {folder}; {CommandSupport.MachineDescription()}; load {CommandSupport.LoadAverage()}; {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC");
        Console.WriteLine($"walk {seconds:F1} s ({walk.Files.Count / seconds:N0} files/s); the listing keeps {(after - before) / 1e6:F0} MB of managed heap = {(after - before) / (double)walk.Files.Count:F0} bytes per file");
        GC.KeepAlive(walk);
        return 0;
    }

    private static bool Heavy(string mode) => mode is "index" or "stream + hash tasks" or "embed only";

    private static ClipPrecision? ParsePrecision(string text) => text switch
    {
        "fp32" => ClipPrecision.Float32,
        "bf16" => ClipPrecision.BFloat16,
        "int8" => ClipPrecision.Int8,
        _ => null,
    };
}

/// <summary>
/// A folder of images like the ones users index: grayscale JPEG radiographs (512² to 2048²), color JPEG photos
/// (640×480 to 2048×1536), PNGs, the DICOM files of testdata, and one truncated JPEG (an error row). Made once per
/// size and reused (a marker file records that it is complete).
/// </summary>
internal static class ThroughputCorpus
{
    private static readonly (int Width, int Height)[] RadiographSizes = [(512, 512), (1024, 1024), (2048, 2048), (1536, 2048), (2048, 1664), (1024, 1248)];
    private static readonly (int Width, int Height)[] PhotoSizes = [(640, 480), (1024, 768), (1600, 1200), (2048, 1536)];
    private static readonly (int Width, int Height)[] PngSizes = [(512, 512), (800, 600), (1024, 1024)];

    public static List<string> Ensure(string folder, int count)
    {
        string marker = Path.Combine(folder, ".complete");
        if (!File.Exists(marker))
        {
            if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
            Write(folder, count);
            File.WriteAllText(marker, count.ToString(CultureInfo.InvariantCulture));
        }
        return Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories)
            .Where(f => Path.GetFileName(f) != ".complete").Order(StringComparer.Ordinal).ToList();
    }

    public static string Describe(List<string> files) => string.Join(", ", files
        .GroupBy(f => Path.GetFileName(Path.GetDirectoryName(f))!)
        .Select(g => $"{g.Count()} {g.Key}"));

    private static void Write(string folder, int count)
    {
        var random = new Random(11);
        string? dicomSource = FindDicomFolder();
        var dicoms = dicomSource == null ? [] : Directory.GetFiles(dicomSource, "*.dcm").Order(StringComparer.Ordinal).ToArray();
        int dicomCount = Math.Min(dicoms.Length, Math.Max(1, count / 20));
        int pngCount = count / 10, photoCount = count / 4;
        int radiographCount = count - dicomCount - pngCount - photoCount - 1;
        for (int i = 0; i < radiographCount; i++)
        {
            var (w, h) = RadiographSizes[i % RadiographSizes.Length];
            using var image = Image.LoadPixelData<L8>(Radiograph(w, h, random), w, h);
            Save(image, folder, "radiograph", $"r{i:D5}.jpg", png: false);
        }
        for (int i = 0; i < photoCount; i++)
        {
            var (w, h) = PhotoSizes[i % PhotoSizes.Length];
            using var image = Image.LoadPixelData<Rgb24>(Photo(w, h, random), w, h);
            Save(image, folder, "photo", $"p{i:D5}.jpg", png: false);
        }
        for (int i = 0; i < pngCount; i++)
        {
            var (w, h) = PngSizes[i % PngSizes.Length];
            using var image = Image.LoadPixelData<Rgb24>(Photo(w, h, random), w, h);
            Save(image, folder, "png", $"g{i:D5}.png", png: true);
        }
        Directory.CreateDirectory(Path.Combine(folder, "dicom"));
        for (int i = 0; i < dicomCount; i++) File.Copy(dicoms[i], Path.Combine(folder, "dicom", Path.GetFileName(dicoms[i])));
        // A download cut short: the first half of a radiograph.
        var whole = File.ReadAllBytes(Directory.GetFiles(Path.Combine(folder, "radiograph"))[0]);
        File.WriteAllBytes(Path.Combine(folder, "radiograph", "truncated.jpg"), whole[..(whole.Length / 2)]);
    }

    private static void Save<TPixel>(Image<TPixel> image, string folder, string kind, string name, bool png) where TPixel : unmanaged, IPixel<TPixel>
    {
        string path = Path.Combine(folder, kind, name);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        if (png) image.SaveAsPng(path);
        else image.SaveAsJpeg(path, new JpegEncoder { Quality = 90 });
    }

    // A bright body on a dark field with smooth anatomy-like bands and sensor noise: compresses like a radiograph.
    private static byte[] Radiograph(int width, int height, Random random)
    {
        var pixels = new byte[width * height];
        double cx = width * (0.4 + 0.2 * random.NextDouble()), cy = height * (0.4 + 0.2 * random.NextDouble());
        double rx = width * 0.35, ry = height * 0.42, f = 0.02 + 0.03 * random.NextDouble();
        var bandX = Enumerable.Range(0, width).Select(x => Math.Sin(x * f)).ToArray();
        var bandY = Enumerable.Range(0, height).Select(y => Math.Cos(y * f * 0.7)).ToArray();
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
            {
                double dx = (x - cx) / rx, dy = (y - cy) / ry, inside = dx * dx + dy * dy < 1 ? 1 : 0;
                double value = 30 + inside * (110 + 40 * bandX[x] * bandY[y]) + random.Next(12);
                pixels[y * width + x] = (byte)Math.Clamp(value, 0, 255);
            }
        return pixels;
    }

    // Smooth color gradients with texture and noise: compresses like a photo.
    private static byte[] Photo(int width, int height, Random random)
    {
        var pixels = new byte[width * height * 3];
        double f = 0.01 + 0.02 * random.NextDouble();
        var waveX = Enumerable.Range(0, width).Select(x => Math.Sin(x * f)).ToArray();
        var waveY = Enumerable.Range(0, height).Select(y => Math.Sin(y * f * 1.3)).ToArray();
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
            {
                int o = (y * width + x) * 3;
                double wave = waveX[x] * waveY[y];
                pixels[o] = (byte)Math.Clamp(120 + 80 * wave + random.Next(16), 0, 255);
                pixels[o + 1] = (byte)Math.Clamp(x * 255.0 / width + random.Next(16), 0, 255);
                pixels[o + 2] = (byte)Math.Clamp(y * 255.0 / height - 40 * wave + random.Next(16), 0, 255);
            }
        return pixels;
    }

    // testdata/reference/dicom of the repository this program was built from (walking up from the binary).
    private static string? FindDicomFolder()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "testdata", "reference", "dicom");
            if (Directory.Exists(candidate)) return candidate;
        }
        return null;
    }
}
