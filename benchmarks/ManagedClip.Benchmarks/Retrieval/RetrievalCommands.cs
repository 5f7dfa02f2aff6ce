using System.Diagnostics;
using System.Globalization;
using ManagedClip.Retrieval;

namespace ManagedClip.Benchmarks.Retrieval;

/// <summary>
/// Retrieval measurements (issue #17), each a command of the benchmark program:
/// <list type="bullet">
/// <item><c>retrieval-search --rows N [--dtype f16|f32] [--queries 30] [--folder DIR] [--keep]</c>: writes a synthetic
/// index of N random unit vectors (E = 512) and times top-10 queries over it, with this process's resident memory
/// split into anonymous (heap, what the search allocates) and file-backed (mapped index pages).</item>
/// <item><c>retrieval-merge --rows N --shards S [--dtype f16|f32] [--folder DIR]</c>: writes S synthetic shard indexes
/// of N rows in all and times their merge.</item>
/// <item><c>retrieval-index --model DIR --images N [--side 512] [--shards 4]</c>: images/s of <c>index</c> (decode and
/// embedding overlapped) against plain <c>EmbedImages</c> on the same files, and the cost of the same work as S
/// shard runs plus a merge.</item>
/// </list>
/// </summary>
internal static class RetrievalCommands
{
    public const string Search = "retrieval-search";
    public const string Merge = "retrieval-merge";
    public const string Index = "retrieval-index";

    public static int RunSearch(string[] args)
    {
        var options = CommandSupport.ParseOptions(args, "--rows", "--dtype", "--queries", "--folder", "--keep", "--k");
        if (options == null || !options.TryGetValue("--rows", out var rowsText) || !long.TryParse(rowsText, out long rows) || rows < 1)
            return Usage($"{Search} --rows N [--dtype f16|f32] [--queries 30] [--k 10] [--folder DIR] [--keep yes]");
        var dtype = options.GetValueOrDefault("--dtype", "f16") == "f32" ? EmbeddingDType.Float32 : EmbeddingDType.Float16;
        int queries = int.Parse(options.GetValueOrDefault("--queries", "30"), CultureInfo.InvariantCulture);
        int k = int.Parse(options.GetValueOrDefault("--k", "10"), CultureInfo.InvariantCulture);
        string folder = options.GetValueOrDefault("--folder") ?? Path.Combine(Path.GetTempPath(), $"managedclip-synthetic-{rows}-{dtype}");
        bool keep = options.ContainsKey("--keep");
        Console.WriteLine($"# {Search}: {rows:N0} rows × 512 {dtype}, k = {k}; {CommandSupport.MachineDescription()}; load {CommandSupport.LoadAverage()}; {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC");
        try
        {
            if (!Directory.Exists(folder))
            {
                var write = Stopwatch.StartNew();
                SyntheticIndex.Write(folder, rows, 512, dtype, rowsPerPart: 262_144, seed: 17);
                Console.WriteLine($"wrote {folder} in {write.Elapsed.TotalSeconds:F1} s ({DirectorySize(folder) / 1e9:F2} GB)");
            }
            var (anonStart, fileStart) = Rss();
            var open = Stopwatch.StartNew();
            using var reader = ImageIndexReader.Open(folder);
            double openMs = open.Elapsed.TotalMilliseconds;
            var random = new Random(5);
            var times = new List<double>();
            var scans = new List<double>();
            var cpu = new List<double>();
            var self = Process.GetCurrentProcess();
            var first = new List<double>();
            long anonPeak = 0, filePeak = 0;
            for (int q = 0; q < queries + 1; q++)
            {
                var query = Enumerable.Range(0, 512).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
                self.Refresh();
                var cpuBefore = self.TotalProcessorTime;
                var clock = Stopwatch.StartNew();
                var hits = reader.Search(query, k);
                double ms = clock.Elapsed.TotalMilliseconds;
                self.Refresh();
                if (q > 0) cpu.Add((self.TotalProcessorTime - cpuBefore).TotalMilliseconds);
                if (hits.Count != Math.Min(k, rows)) throw new InvalidOperationException("wrong hit count");
                if (q == 0) first.Add(ms); else times.Add(ms); // the first query also faults the mapping in
                clock.Restart();
                reader.Rank(query, k);
                if (q > 0) scans.Add(clock.Elapsed.TotalMilliseconds);
                var (anon, file) = Rss();
                anonPeak = Math.Max(anonPeak, anon);
                filePeak = Math.Max(filePeak, file);
            }
            Console.WriteLine($"open {openMs:F1} ms; first query {first[0]:F0} ms");
            Console.WriteLine($"top-{k} query: median {CommandSupport.Median(times):F1} ms, min {times.Min():F1}, max {times.Max():F1}, p25 {CommandSupport.Quantile(times, 0.25):F1}, p75 {CommandSupport.Quantile(times, 0.75):F1} ({queries} queries)");
            // CPU time is what the query costs whatever else runs; on a shared machine wall time also holds the waits.
            Console.WriteLine($"CPU time per query (both cores): median {CommandSupport.Median(cpu):F1} ms, min {cpu.Min():F1}, max {cpu.Max():F1}");
            Console.WriteLine($"of which the scan alone (no path lookup): median {CommandSupport.Median(scans):F1} ms, min {scans.Min():F1}, max {scans.Max():F1}");
            Console.WriteLine($"RSS: anonymous {anonStart / 1048576.0:F0} MiB before → peak {anonPeak / 1048576.0:F0} MiB; file-backed (mapped index pages) {fileStart / 1048576.0:F0} → peak {filePeak / 1048576.0:F0} MiB");
            Console.WriteLine($"| {rows:N0} | {dtype} | {CommandSupport.Median(times):F1} | {times.Min():F1}–{times.Max():F1} | {CommandSupport.Median(scans):F1} | {CommandSupport.Median(cpu):F1} | {first[0]:F0} | {anonPeak / 1048576.0:F0} | {filePeak / 1048576.0:F0} |");
        }
        finally
        {
            if (!keep && Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        }
        return 0;
    }

    public static int RunMerge(string[] args)
    {
        var options = CommandSupport.ParseOptions(args, "--rows", "--shards", "--dtype", "--folder");
        if (options == null || !long.TryParse(options.GetValueOrDefault("--rows"), out long rows) || !int.TryParse(options.GetValueOrDefault("--shards", "4"), out int shards))
            return Usage($"{Merge} --rows N --shards S [--dtype f16|f32] [--folder DIR]");
        var dtype = options.GetValueOrDefault("--dtype", "f16") == "f32" ? EmbeddingDType.Float32 : EmbeddingDType.Float16;
        string folder = options.GetValueOrDefault("--folder") ?? Path.Combine(Path.GetTempPath(), "managedclip-synthetic-merge");
        Console.WriteLine($"# {Merge}: {rows:N0} rows in {shards} shards, {dtype}; {CommandSupport.MachineDescription()}; load {CommandSupport.LoadAverage()}; {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC");
        try
        {
            for (int s = 0; s < shards; s++)
            {
                long count = rows / shards + (s < rows % shards ? 1 : 0);
                var shard = new Shard(s, shards);
                SyntheticIndex.Write(Path.Combine(folder, "shards", shard.FolderName), count, 512, dtype, 262_144, (ulong)(s + 1), shard);
            }
            var clock = Stopwatch.StartNew();
            var report = IndexMerge.Merge([Path.Combine(folder, "shards")], Path.Combine(folder, "merged"));
            double seconds = clock.Elapsed.TotalSeconds;
            Console.WriteLine($"merged {report.Rows:N0} rows into {report.Parts} parts in {seconds:F1} s ({report.Rows / seconds:N0} rows/s, {DirectorySize(Path.Combine(folder, "merged")) / 1e9 / seconds:F2} GB/s written)");
        }
        finally
        {
            if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        }
        return 0;
    }

    public static int RunIndex(string[] args)
    {
        var options = CommandSupport.ParseOptions(args, "--model", "--images", "--side", "--shards", "--folder");
        if (options == null || !options.TryGetValue("--model", out var modelDir) || !int.TryParse(options.GetValueOrDefault("--images", "64"), out int count))
            return Usage($"{Index} --model DIR [--images 64] [--side 512] [--shards 4] [--folder DIR]");
        int side = int.Parse(options.GetValueOrDefault("--side", "512"), CultureInfo.InvariantCulture);
        int shards = int.Parse(options.GetValueOrDefault("--shards", "4"), CultureInfo.InvariantCulture);
        string folder = options.GetValueOrDefault("--folder") ?? Path.Combine(Path.GetTempPath(), "managedclip-index-bench");
        if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        Console.WriteLine($"# {Index}: {count} PNG images {side}×{side}, model {modelDir}; {CommandSupport.MachineDescription()}; load {CommandSupport.LoadAverage()}; {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC");
        try
        {
            var images = Path.Combine(folder, "images");
            var files = WriteImages(images, count, side);
            using var model = ClipModel.Load(modelDir);
            model.EmbedImages([ImageInput.FromFile(files[0])]); // compile the hot paths once, outside the timings

            var clock = Stopwatch.StartNew();
            model.EmbedImages(files.Select(ImageInput.FromFile).ToList());
            double plain = clock.Elapsed.TotalSeconds;

            clock.Restart();
            IndexReport whole;
            using (var run = ImageIndex.Open(model, images, Path.Combine(folder, "whole"), new IndexOptions()))
                whole = run.RunToEnd();
            double indexed = clock.Elapsed.TotalSeconds;

            clock.Restart();
            var shardTimes = new List<double>();
            for (int s = 0; s < shards; s++)
            {
                var shardClock = Stopwatch.StartNew();
                using var run = ImageIndex.Open(model, images, Path.Combine(folder, "shards"), new IndexOptions { Shard = new Shard(s, shards) });
                run.RunToEnd();
                shardTimes.Add(shardClock.Elapsed.TotalSeconds);
            }
            double sharded = clock.Elapsed.TotalSeconds;
            clock.Restart();
            IndexMerge.Merge([Path.Combine(folder, "shards")], Path.Combine(folder, "merged"));
            double merge = clock.Elapsed.TotalSeconds;

            Console.WriteLine($"EmbedImages (decode overlapped with the tower): {count / plain:F2} images/s ({plain:F1} s)");
            Console.WriteLine($"index (walk, hash, embed, parts, compaction): {whole.Embedded / indexed:F2} images/s ({indexed:F1} s), {indexed / plain - 1:P1} over EmbedImages");
            Console.WriteLine($"{shards} shards one after another: {sharded:F1} s (per shard {string.Join(", ", shardTimes.Select(t => t.ToString("F1", CultureInfo.InvariantCulture)))} s) + merge {merge:F2} s = {(sharded + merge) / indexed - 1:P1} over one unsharded run");
        }
        finally
        {
            if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        }
        return 0;
    }

    // Noise PNGs with a gradient, so decoding does real work at a realistic size.
    private static List<string> WriteImages(string folder, int count, int side)
    {
        var random = new Random(3);
        var files = new List<string>();
        for (int i = 0; i < count; i++)
        {
            var path = Path.Combine(folder, $"{"abcd"[i % 4]}", $"image{i:D5}.png");
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            using var image = new SixLabors.ImageSharp.Image<SixLabors.ImageSharp.PixelFormats.Rgb24>(side, side);
            for (int y = 0; y < side; y++)
                for (int x = 0; x < side; x++)
                    image[x, y] = new SixLabors.ImageSharp.PixelFormats.Rgb24((byte)(x + random.Next(32)), (byte)(y + random.Next(32)), (byte)random.Next(256));
            SixLabors.ImageSharp.ImageExtensions.SaveAsPng(image, path);
            files.Add(path);
        }
        return files;
    }

    // Resident memory from /proc/self/status: RssAnon (heap and stacks) and RssFile (file pages mapped in).
    private static (long Anonymous, long File) Rss()
    {
        long anon = 0, file = 0;
        foreach (var line in System.IO.File.ReadLines("/proc/self/status"))
        {
            if (line.StartsWith("RssAnon:", StringComparison.Ordinal)) anon = ParseKb(line);
            else if (line.StartsWith("RssFile:", StringComparison.Ordinal)) file = ParseKb(line);
        }
        return (anon, file);
    }

    private static long ParseKb(string line) => long.Parse(line.Split(':')[1].Trim().Split(' ')[0], CultureInfo.InvariantCulture) * 1024;

    private static long DirectorySize(string folder) => Directory.GetFiles(folder, "*", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length);

    private static int Usage(string usage)
    {
        Console.Error.WriteLine($"usage: ManagedClip.Benchmarks {usage}");
        return 2;
    }
}
