using System.Text.Json;
using ManagedClip.Retrieval;
using ManagedClip.Tests.EndToEnd;
using ManagedClip.Tests.IO;

namespace ManagedClip.Tests.Retrieval;

/// <summary>The index, merge and search commands: their JSON, their errors, and surviving SIGINT and SIGKILL.</summary>
public class IndexCliTests
{
    private static string Tiny => TestModels.TinyDirectory;

    [Theory]
    [InlineData(CliProcess.SigInt)]
    [InlineData(CliProcess.SigKill)]
    public void KilledIndexRunResumesWithoutEmbeddingFinishedPartsAgain(int signal)
    {
        if (!OperatingSystem.IsLinux()) return; // signals are sent with kill(2)
        using var folder = new TempFolder();
        var images = Path.Combine(folder.Path, "images");
        // 640×640 images: each costs the child a real decode and resize (milliseconds, not the microseconds of a
        // tiny image), so the run lasts seconds and cannot finish between this process seeing its second commit and
        // the signal arriving, even when a loaded machine lets this process read the child's stderr late.
        var paths = RetrievalFixtures.WriteImages(images, 96, seed: 20, side: 640);
        var index = folder.File("index");

        IndexManifest committed;
        // Parts of 2 images: 48 parts, so the second commit is seen far from the run's end.
        using (var run = new CliProcess("index", "--model", Tiny, images, "--out", index, "--chunk-images", "2"))
        {
            bool reached = run.WaitForErrorLines(l => l.Contains("committed part-"), 2, TimeSpan.FromSeconds(120));
            Assert.True(reached && !run.HasExited, "the run finished or stalled before it could be interrupted: " + string.Join(" | ", run.ErrorLines));
            run.Signal(signal);
            int code = run.WaitForExit(TimeSpan.FromSeconds(60));
            if (signal == CliProcess.SigInt)
            {
                // Ctrl+C: the rows done are committed, the report says so, and the exit code is 130.
                Assert.Equal(130, code);
                var report = JsonDocument.Parse(run.Output).RootElement;
                Assert.True(report.GetProperty("interrupted").GetBoolean());
                Assert.Contains(run.ErrorLines, l => l.Contains("Run the same command again to continue"));
            }
            else Assert.Equal(128 + CliProcess.SigKill, code);
        }
        committed = IndexManifest.Load(index);
        Assert.False(committed.Complete);
        long rows = committed.LiveRows;
        Assert.InRange(rows, 4, 95); // at least the two parts seen committed, and not everything
        var before = RetrievalFixtures.ReadLiveRows(index);

        var resumed = CliRunner.Run("index", "--model", Tiny, images, "--out", index, "--chunk-images", "2");
        Assert.True(resumed.ExitCode == 0, resumed.Error);
        Assert.Equal(rows, resumed.Json.GetProperty("reused").GetInt64());
        Assert.Equal(96 - rows, resumed.Json.GetProperty("embedded").GetInt64());
        Assert.Equal(96, resumed.Json.GetProperty("rows").GetInt64());
        Assert.False(resumed.Json.GetProperty("interrupted").GetBoolean());

        var after = RetrievalFixtures.ReadLiveRows(index);
        Assert.Equal(paths.Order(StringComparer.Ordinal), after.Keys);
        foreach (var (path, (row, vector)) in before) Assert.Equal(vector, after[path].Vector); // finished parts unchanged
        foreach (var path in paths.Take(4).Concat(paths.TakeLast(4)))
        {
            var expected = TestModels.Tiny.EmbedImage(Path.Combine(images, path));
            Assert.Equal(expected, System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(after[path].Vector).ToArray());
        }
    }

    [Fact]
    public void SearchByTextImageAndRowWithMergedShards()
    {
        using var folder = new TempFolder();
        var images = Path.Combine(folder.Path, "images");
        var paths = RetrievalFixtures.WriteImages(images, 12, seed: 21);
        var shards = folder.File("shards");
        for (int i = 0; i < 3; i++)
        {
            var shard = CliRunner.Run("index", "--model", Tiny, images, "--out", shards, "--shard", $"{i}/3", "--dtype", "f16");
            Assert.True(shard.ExitCode == 0, shard.Error);
            Assert.Equal($"{i}/3", shard.Json.GetProperty("shard").GetString());
            Assert.Equal("f16", shard.Json.GetProperty("dtype").GetString());
        }
        var merged = folder.File("merged");
        var merge = CliRunner.Run("merge", shards, "--out", merged);
        Assert.True(merge.ExitCode == 0, merge.Error);
        Assert.Equal(12, merge.Json.GetProperty("rows").GetInt64());
        Assert.Equal(3, merge.Json.GetProperty("shards").GetInt32());

        foreach (var indexPath in new[] { merged, shards })
        {
            var target = Path.Combine(images, paths[4]);
            var byImage = CliRunner.Run("search", "--model", Tiny, "--index", indexPath, "--image", target, "-k", "3");
            Assert.True(byImage.ExitCode == 0, byImage.Error);
            var hits = byImage.Json.EnumerateArray().ToList();
            Assert.Equal(3, hits.Count);
            Assert.Equal(target, hits[0].GetProperty("path").GetString());
            Assert.Equal(paths[4], hits[0].GetProperty("relative_path").GetString());
            Assert.True(hits[0].GetProperty("score").GetSingle() > 0.999f); // f16 rows: cosine with itself ≈ 1 within 1e-3

            var byRow = CliRunner.Run("search", "--index", indexPath, "--row", paths[4], "-k", "2");
            Assert.True(byRow.ExitCode == 0, byRow.Error);
            Assert.Equal(paths[4], byRow.Json[0].GetProperty("relative_path").GetString());

            var byText = CliRunner.Run("search", "--model", Tiny, "--index", indexPath, "--text", "histology", "-k", "20");
            var scores = byText.Json.EnumerateArray().Select(h => h.GetProperty("score").GetSingle()).ToList();
            Assert.Equal(12, scores.Count);
            Assert.Equal(scores.OrderDescending(), scores);
        }
        var missing = CliRunner.Run("search", "--index", merged, "--row", "no/such.png");
        Assert.Equal(1, missing.ExitCode);
        Assert.Contains("not in the index", missing.Error);
        var usage = CliRunner.Run("search", "--index", merged, "--row", paths[0], "--text", "x");
        Assert.Equal(2, usage.ExitCode);
    }

    [Fact]
    public void SearchRefusesAnIndexOfAnotherModel()
    {
        using var folder = new TempFolder();
        var images = Path.Combine(folder.Path, "images");
        RetrievalFixtures.WriteImages(images, 3, seed: 22);
        var index = folder.File("index");
        Assert.Equal(0, CliRunner.Run("index", "--model", Tiny, images, "--out", index).ExitCode);
        // The same folder with the .bin weights: other weight bytes, so another model for the index.
        var other = CliRunner.Run("search", "--model", Tiny, "--weights", Path.Combine(Tiny, "open_clip_pytorch_model.bin"), "--index", index, "--text", "x");
        Assert.Equal(1, other.ExitCode);
        Assert.Contains("the index was made by another model", other.Error);
        Assert.Single(other.Error.TrimEnd().Split('\n'));
        var update = CliRunner.Run("index", "--model", Tiny, "--weights", Path.Combine(Tiny, "open_clip_pytorch_model.bin"), images, "--out", index);
        Assert.Equal(1, update.ExitCode);
        Assert.Contains("--force", update.Error);
        var forced = CliRunner.Run("index", "--model", Tiny, "--weights", Path.Combine(Tiny, "open_clip_pytorch_model.bin"), images, "--out", index, "--force");
        Assert.True(forced.ExitCode == 0, forced.Error);
        Assert.Equal(3, forced.Json.GetProperty("embedded").GetInt32());
        Assert.Equal(2, Directory.GetFiles(index, "part-*").Length); // the old parts are gone
    }

    public static TheoryData<string, string> Damage => new()
    {
        { "truncated manifest", "manifest.json: not valid JSON" },
        { "foreign manifest", "not a managedclip index manifest" },
        { "manifest with a bad row", "lists a row outside" },
        { "truncated npy", "(truncated or damaged?)" },
        { "npy magic", "not an .npy file" },
        { "npy shape", "the manifest says" },
        { "missing npy", "missing (the manifest lists part" },
        { "truncated parquet", "not a readable Parquet part" },
        { "garbage parquet", "not a readable Parquet part" },
    };

    [Theory]
    [MemberData(nameof(Damage))]
    public void ADamagedIndexIsAOneLineErrorAndIsNotOverwritten(string damage, string expected)
    {
        using var folder = new TempFolder();
        var images = Path.Combine(folder.Path, "images");
        RetrievalFixtures.WriteImages(images, 5, seed: 23);
        var index = folder.File("index");
        Assert.Equal(0, CliRunner.Run("index", "--model", Tiny, images, "--out", index).ExitCode);
        var manifest = Path.Combine(index, "manifest.json");
        var part = IndexManifest.Load(index).Parts[0];
        var npy = Path.Combine(index, part.NpyName);
        var parquet = Path.Combine(index, part.ParquetName);
        switch (damage)
        {
            case "truncated manifest": File.WriteAllBytes(manifest, File.ReadAllBytes(manifest)[..100]); break;
            case "foreign manifest": File.WriteAllText(manifest, "{\"name\": \"something else\"}"); break;
            case "manifest with a bad row": File.WriteAllText(manifest, File.ReadAllText(manifest).Replace("\"errors\": []", "\"errors\": [99]")); break;
            case "truncated npy": File.WriteAllBytes(npy, File.ReadAllBytes(npy)[..200]); break;
            case "npy magic": { var b = File.ReadAllBytes(npy); b[1] = (byte)'X'; File.WriteAllBytes(npy, b); break; }
            case "npy shape": File.WriteAllBytes(npy, FixShape(File.ReadAllBytes(npy), 4)); break;
            case "missing npy": File.Delete(npy); break;
            case "truncated parquet": File.WriteAllBytes(parquet, File.ReadAllBytes(parquet)[..^40]); break;
            case "garbage parquet": { var b = File.ReadAllBytes(parquet); Array.Fill(b, (byte)0x5A, 4, b.Length - 8); File.WriteAllBytes(parquet, b); break; }
        }
        var snapshot = Directory.GetFiles(index).ToDictionary(f => f, File.ReadAllBytes);

        // Search reads the parts' metadata only for hits, so ask for every row.
        var search = CliRunner.Run("search", "--index", index, "--row", "a/img23_0000.png", "-k", "5");
        Assert.Equal(1, search.ExitCode);
        Assert.Contains(expected, search.Error);
        Assert.Single(search.Error.TrimEnd().Split('\n'));
        Assert.DoesNotContain("Exception", search.Error);

        var update = CliRunner.Run("index", "--model", Tiny, images, "--out", index);
        Assert.Equal(1, update.ExitCode);
        Assert.Contains(expected, update.Error);
        foreach (var (path, bytes) in snapshot) Assert.Equal(bytes, File.ReadAllBytes(path)); // nothing was touched
    }

    // A valid .npy header whose shape says `rows` rows (fewer than the manifest's 5), its length to match.
    private static byte[] FixShape(byte[] original, int rows)
    {
        var header = ManagedClip.Retrieval.NpyFormat.Header(rows, 32, EmbeddingDType.Float32);
        return [.. header, .. original.AsSpan(header.Length, rows * 32 * 4)];
    }

    [Fact]
    public void PartMetadataReadsBackWithParquetNet()
    {
        using var folder = new TempFolder();
        var images = Path.Combine(folder.Path, "images");
        var paths = RetrievalFixtures.WriteImages(images, 6, seed: 24);
        File.WriteAllText(Path.Combine(images, "b", "broken.png"), "not a png");
        var index = folder.File("index");
        var built = CliRunner.Run("index", "--model", Tiny, images, "--out", index);
        Assert.True(built.ExitCode == 0, built.Error);
        string modelId = built.Json.GetProperty("model_id").GetString()!;
        var part = Assert.Single(IndexManifest.Load(index).Parts);

        // Parquet.Net's own reader, nothing of ours: the columns' physical and logical types as every tool sees them,
        // then the values.
        using var stream = File.OpenRead(Path.Combine(index, part.ParquetName));
        var (schema, columns) = ReadColumns(stream);
        var leaves = schema.Where(e => e.NumChildren is null or 0).ToList();
        Assert.Equal(["path", "size", "mtime", "sha256", "error", "model_id"], leaves.Select(e => e.Name));
        Assert.Equal([Parquet.Meta.Type.BYTE_ARRAY, Parquet.Meta.Type.INT64, Parquet.Meta.Type.INT64, Parquet.Meta.Type.BYTE_ARRAY, Parquet.Meta.Type.BYTE_ARRAY, Parquet.Meta.Type.BYTE_ARRAY],
            leaves.Select(e => e.Type!.Value));
        Assert.All(leaves.Where(e => e.Type == Parquet.Meta.Type.BYTE_ARRAY), e => Assert.NotNull(e.LogicalType?.STRING));
        var mtime = leaves[2].LogicalType!.TIMESTAMP!;
        Assert.True(mtime.IsAdjustedToUTC);
        Assert.NotNull(mtime.Unit.NANOS);
        Assert.Equal([Parquet.Meta.FieldRepetitionType.REQUIRED, Parquet.Meta.FieldRepetitionType.REQUIRED, Parquet.Meta.FieldRepetitionType.REQUIRED,
                      Parquet.Meta.FieldRepetitionType.OPTIONAL, Parquet.Meta.FieldRepetitionType.OPTIONAL, Parquet.Meta.FieldRepetitionType.REQUIRED],
            leaves.Select(e => e.RepetitionType!.Value));
        var rowPaths = columns["path"].Cast<string>().ToList();
        Assert.Equal(paths.Append("b/broken.png").Order(StringComparer.Ordinal), rowPaths.Order(StringComparer.Ordinal));
        for (int i = 0; i < rowPaths.Count; i++)
        {
            var full = Path.Combine(images, rowPaths[i]);
            Assert.Equal(new FileInfo(full).Length, (long)columns["size"][i]!);
            Assert.Equal(File.GetLastWriteTimeUtc(full), ((DateTime)columns["mtime"][i]!).ToUniversalTime());
            Assert.Equal(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(full))), columns["sha256"][i]);
            Assert.Equal(modelId, columns["model_id"][i]);
            if (rowPaths[i] == "b/broken.png") Assert.Contains("not a supported image", (string)columns["error"][i]!);
            else Assert.Null(columns["error"][i]);
        }
    }

    private static (List<Parquet.Meta.SchemaElement> Schema, Dictionary<string, List<object?>> Columns) ReadColumns(Stream stream)
    {
        return Task.Run(async () =>
        {
            await using var reader = await Parquet.ParquetReader.CreateAsync(stream);
            var columns = new Dictionary<string, List<object?>>();
            // Fields as a reader declares them (a field must belong to a schema to be read).
            var strings = new[] { "path", "sha256", "error", "model_id" }.ToDictionary(n => n, n => new Parquet.Schema.DataField<string>(n, nullable: n is "sha256" or "error"));
            var size = new Parquet.Schema.DataField<long>("size", nullable: false);
            var mtimeField = new Parquet.Schema.DateTimeDataField("mtime", Parquet.Schema.DateTimeFormat.Timestamp, isAdjustedToUTC: true, unit: Parquet.Schema.DateTimeTimeUnit.Nanos, isNullable: false);
            _ = new Parquet.Schema.ParquetSchema(strings["path"], size, mtimeField, strings["sha256"], strings["error"], strings["model_id"]);
            for (int g = 0; g < reader.RowGroupCount; g++)
            {
                using var group = reader.OpenRowGroupReader(g);
                int n = (int)group.RowCount;
                foreach (var name in new[] { "path", "sha256", "error", "model_id" })
                {
                    var v = new string?[n];
                    await group.ReadAsync(strings[name], v.AsMemory());
                    columns.TryAdd(name, []);
                    columns[name].AddRange(v);
                }
                var sizes = new long[n];
                await group.ReadAsync<long>(size, sizes.AsMemory());
                columns.TryAdd("size", []);
                columns["size"].AddRange(sizes.Cast<object?>());
                var times = new DateTime[n];
                await group.ReadAsync<DateTime>(mtimeField, times.AsMemory());
                columns.TryAdd("mtime", []);
                columns["mtime"].AddRange(times.Cast<object?>());
            }
            return (reader.Metadata!.Schema, columns);
        }).GetAwaiter().GetResult();
    }
}
