using ManagedClip.Retrieval;
using ManagedClip.Tests.EndToEnd;
using ManagedClip.Tests.IO;

namespace ManagedClip.Tests.Retrieval;

/// <summary>Building, updating, sharding and merging indexes through the library API, with the tiny model.</summary>
public class IndexBuildTests
{
    private static ClipModel Tiny => TestModels.Tiny;

    private static IndexReport Build(string images, string index, IndexOptions? options = null)
    {
        using var run = ImageIndex.Open(Tiny, images, index, options ?? new IndexOptions { ChunkImages = 7 });
        return run.RunToEnd();
    }

    [Fact]
    public void RowsHoldTheModelsEmbeddingsAndMetadata()
    {
        using var folder = new TempFolder();
        var images = Path.Combine(folder.Path, "images");
        var paths = RetrievalFixtures.WriteImages(images, 20, seed: 1);
        var index = folder.File("index");

        var report = Build(images, index);
        Assert.Equal(20, report.Embedded);
        Assert.Equal(20, report.Rows);
        Assert.Equal(0, report.Errors);
        Assert.False(report.Interrupted);
        Assert.True(IndexManifest.Load(index).Complete);
        // 20 rows in chunks of 7 were committed as 3 parts, then compacted into one.
        Assert.Single(IndexManifest.Load(index).Parts);

        var rows = RetrievalFixtures.ReadLiveRows(index);
        Assert.Equal(paths.Order(StringComparer.Ordinal), rows.Keys);
        foreach (var path in paths)
        {
            var full = Path.Combine(images, path);
            var expected = Tiny.EmbedImage(full);
            var (row, bytes) = rows[path];
            Assert.Equal(expected, System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(bytes).ToArray()); // the same bits
            Assert.Equal(new FileInfo(full).Length, row.Size);
            Assert.Equal(new FileInfo(full).LastWriteTimeUtc, row.ModifiedUtc);
            Assert.Equal(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(full))), row.Sha256);
            Assert.Null(row.Error);
        }
    }

    [Fact]
    public void UpdateEmbedsOnlyNewAndChangedFilesAndRemovesDeletedOnes()
    {
        using var folder = new TempFolder();
        var images = Path.Combine(folder.Path, "images");
        var paths = RetrievalFixtures.WriteImages(images, 12, seed: 2);
        var index = folder.File("index");
        Build(images, index);

        // Add two, change one (new content), touch one (same content, new time), delete one.
        RetrievalFixtures.WriteImages(Path.Combine(images, "new"), 2, seed: 3);
        var changed = Path.Combine(images, paths[0]);
        File.Copy(Path.Combine(images, paths[1]), changed, overwrite: true);
        File.SetLastWriteTimeUtc(changed, DateTime.UtcNow.AddMinutes(5));
        var touched = Path.Combine(images, paths[2]);
        File.SetLastWriteTimeUtc(touched, DateTime.UtcNow.AddMinutes(7));
        File.Delete(Path.Combine(images, paths[3]));

        var before = RetrievalFixtures.ReadLiveRows(index);
        var report = Build(images, index);
        Assert.Equal(3, report.Embedded);      // two new + the changed one
        Assert.Equal(10, report.Reused);       // 12 − changed − deleted
        Assert.Equal(1, report.Rehashed);      // the touched one: same hash, kept
        Assert.Equal(1, report.Deleted);
        Assert.Equal(13, report.Rows);

        var after = RetrievalFixtures.ReadLiveRows(index);
        Assert.DoesNotContain(paths[3], after.Keys);
        Assert.Equal(before[paths[2]].Vector, after[paths[2]].Vector);
        Assert.Equal(File.GetLastWriteTimeUtc(touched), after[paths[2]].Row.ModifiedUtc);
        Assert.Equal(before[paths[1]].Vector, after[paths[0]].Vector); // the changed file now has its new content's embedding
        Assert.NotEqual(before[paths[0]].Vector, after[paths[0]].Vector);
        // A completed update leaves no tombstones: every row in the parts is live.
        Assert.All(IndexManifest.Load(index).Parts, p => Assert.Empty(p.Deleted));

        var again = Build(images, index);
        Assert.Equal(0, again.Embedded);
        Assert.Equal(13, again.Reused);
    }

    [Fact]
    public void ShardedRunsMergedGiveTheUnshardedIndexBitForBit()
    {
        using var folder = new TempFolder();
        var images = Path.Combine(folder.Path, "images");
        RetrievalFixtures.WriteImages(images, 30, seed: 4);
        File.WriteAllText(Path.Combine(images, "a", "broken.png"), "not a png");
        var whole = folder.File("whole");
        Build(images, whole);

        foreach (int n in new[] { 1, 3, 4 })
        {
            var shards = folder.File($"shards{n}");
            var counts = new List<long>();
            for (int i = 0; i < n; i++)
            {
                var report = Build(images, shards, new IndexOptions { Shard = new Shard(i, n), ChunkImages = 5 });
                counts.Add(report.Rows);
            }
            Assert.Equal(31, counts.Sum());        // every file in exactly one shard
            if (n > 1) Assert.All(counts, c => Assert.InRange(c, 1, 30));
            var merged = folder.File($"merged{n}");
            var result = IndexMerge.Merge([shards], merged);
            Assert.Equal(31, result.Rows);
            Assert.Equal(1, result.Errors);
            RetrievalFixtures.AssertSameRows(whole, merged);

            // Searching the shard folder directly finds the same hits as the merged index.
            using var overShards = ImageIndexReader.Open(shards);
            using var overMerged = ImageIndexReader.Open(merged);
            var query = Tiny.EmbedText("a photo");
            Assert.Equal(overMerged.Search(query, 5).Select(h => (h.Path, h.Score)), overShards.Search(query, 5).Select(h => (h.Path, h.Score)));
        }
    }

    [Fact]
    public void ShardAssignmentIsAStableHashOfThePath()
    {
        // Fixed values: the assignment must not change between versions or machines (documented formula).
        Assert.Equal(0, Shard.Of("a/img.png", 1));
        var expected = (int)(System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(
            System.Security.Cryptography.SHA256.HashData("a/img.png"u8)) % 4);
        Assert.Equal(expected, Shard.Of("a/img.png", 4));
        Assert.Equal(new Shard(2, 4), Shard.Parse("2/4"));
        foreach (var bad in new[] { "4/4", "-1/4", "1", "a/b", "1/0", "" })
            Assert.Throws<ArgumentException>(() => Shard.Parse(bad));
    }

    [Fact]
    public void MergeRefusesAnIncompleteShardSet()
    {
        using var folder = new TempFolder();
        var images = Path.Combine(folder.Path, "images");
        RetrievalFixtures.WriteImages(images, 6, seed: 5);
        var shards = folder.File("shards");
        Build(images, shards, new IndexOptions { Shard = new Shard(0, 3) });
        Build(images, shards, new IndexOptions { Shard = new Shard(2, 3) });
        var e = Assert.Throws<InvalidDataException>(() => IndexMerge.Merge([shards], folder.File("merged")));
        Assert.Contains("1/3 missing", e.Message);
        Assert.False(Directory.Exists(folder.File("merged")));
    }

    [Fact]
    public void AnotherModelsIndexIsRefused()
    {
        using var folder = new TempFolder();
        var images = Path.Combine(folder.Path, "images");
        RetrievalFixtures.WriteImages(images, 4, seed: 6);
        var index = folder.File("index");
        Build(images, index);

        // Another model: the tiny folder with one weight's lowest mantissa bit flipped.
        var other = Path.Combine(folder.Path, "other-model");
        CopyFolder(TestData.Tiny, other);
        File.Delete(Path.Combine(other, "open_clip_pytorch_model.bin"));
        var weights = File.ReadAllBytes(Path.Combine(other, "model.safetensors"));
        weights[^4] ^= 1;
        File.WriteAllBytes(Path.Combine(other, "model.safetensors"), weights);
        using var otherModel = ClipModel.Load(other);

        using var reader = ImageIndexReader.Open(index);
        reader.RequireModel(ModelIdentity.Of(Tiny)); // its own model passes
        var refused = Assert.Throws<InvalidDataException>(() => reader.RequireModel(ModelIdentity.Of(otherModel)));
        Assert.Contains("made by another model", refused.Message);

        // Updating with the other model is refused too, and the index is left as it was.
        var before = File.ReadAllText(Path.Combine(index, "manifest.json"));
        var update = Assert.Throws<InvalidDataException>(() => ImageIndex.Open(otherModel, images, index));
        Assert.Contains("--force", update.Message);
        Assert.Equal(before, File.ReadAllText(Path.Combine(index, "manifest.json")));

        // A copy of the same model elsewhere is the same model (identity is content, not location).
        var copy = Path.Combine(folder.Path, "tiny-copy");
        CopyFolder(TestData.Tiny, copy);
        using var copied = ClipModel.Load(copy);
        reader.RequireModel(ModelIdentity.Of(copied));
    }

    private static void CopyFolder(string from, string to)
    {
        foreach (var file in Directory.GetFiles(from, "*", SearchOption.AllDirectories))
        {
            var target = Path.Combine(to, Path.GetRelativePath(from, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }
    }

    [Fact]
    public void SearchReturnsTheExactTopKOfABruteForceRanking()
    {
        using var folder = new TempFolder();
        var images = Path.Combine(folder.Path, "images");
        RetrievalFixtures.WriteImages(images, 40, seed: 7);
        File.WriteAllText(Path.Combine(images, "b", "broken.png"), "not a png");
        var index = folder.File("index");
        Build(images, index);

        using var reader = ImageIndexReader.Open(index);
        Assert.Equal(40, reader.Rows); // the error row is not searchable
        var query = Tiny.EmbedText("brain MRI");
        var rows = RetrievalFixtures.ReadLiveRows(index).Where(r => r.Value.Row.Error == null)
            .Select(r => (r.Key, Score: System.Numerics.Tensors.TensorPrimitives.Dot(query, System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(r.Value.Vector))))
            .OrderByDescending(r => r.Score).ToList();
        foreach (int k in new[] { 1, 10, 40, 100 })
        {
            var hits = reader.Search(query, k);
            Assert.Equal(Math.Min(k, 40), hits.Count);
            for (int i = 0; i < hits.Count; i++)
            {
                Assert.Equal(rows[i].Score, hits[i].Score, 1e-6f); // same products, other summation order: float rounding
                Assert.Equal(rows[i].Key, hits[i].Path);
            }
        }
        // By a stored row: that row first with cosine 1.
        var stored = reader.FindEmbedding(rows[5].Key)!;
        Assert.Equal(rows[5].Key, reader.Search(stored, 1)[0].Path);
        Assert.Null(reader.FindEmbedding("b/broken.png"));
        Assert.Null(reader.FindEmbedding("no/such.png"));
    }

    [Fact]
    public void Float16IndexHalvesTheVectorsAndRanksLikeFloat32()
    {
        using var folder = new TempFolder();
        var images = Path.Combine(folder.Path, "images");
        RetrievalFixtures.WriteImages(images, 16, seed: 8);
        var f32 = folder.File("f32");
        var f16 = folder.File("f16");
        Build(images, f32);
        Build(images, f16, new IndexOptions { DType = EmbeddingDType.Float16 });
        var full = RetrievalFixtures.ReadLiveRows(f32);
        var half = RetrievalFixtures.ReadLiveRows(f16);
        foreach (var (path, (_, vector)) in full)
        {
            var widened = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, Half>(half[path].Vector).ToArray().Select(h => (float)h).ToArray();
            var exact = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(vector).ToArray();
            Assert.Equal(vector.Length, half[path].Vector.Length * 2);
            for (int i = 0; i < exact.Length; i++) Assert.Equal((float)(Half)exact[i], widened[i]); // round to nearest half, exactly
        }
        using var a = ImageIndexReader.Open(f32);
        using var b = ImageIndexReader.Open(f16);
        var query = Tiny.EmbedText("chest X-ray");
        var hitsA = a.Search(query, 16);
        var hitsB = b.Search(query, 16);
        // Half rounding moves each unit vector's cosine by < 1e-3 (11-bit mantissa, |x| ≤ 1): scores agree to that.
        foreach (var hit in hitsA) Assert.Equal(hit.Score, hitsB.Single(h => h.Path == hit.Path).Score, 1e-3f);
    }

    [Fact]
    public void WalkSkipsFolderSymlinksAndNeverOpensFifos()
    {
        using var folder = new TempFolder();
        var images = Path.Combine(folder.Path, "images");
        RetrievalFixtures.WriteImages(images, 3, seed: 9);
        Directory.CreateSymbolicLink(Path.Combine(images, "a", "loop"), images);      // a loop
        Directory.CreateSymbolicLink(Path.Combine(images, "elsewhere"), Path.Combine(images, "b")); // a duplicate view
        File.CreateSymbolicLink(Path.Combine(images, "link.png"), Path.Combine(images, "a", "img9_0000.png"));
        File.CreateSymbolicLink(Path.Combine(images, "dangling.png"), Path.Combine(images, "nothing.png"));
        File.WriteAllText(Path.Combine(images, "notes.txt"), "not an image");
        var dicom = new byte[200];
        "DICM"u8.CopyTo(dicom.AsSpan(128));
        File.WriteAllBytes(Path.Combine(images, "c", "IM0001"), dicom);            // DICOM by content, no extension
        File.WriteAllBytes(Path.Combine(images, "c", "README"), new byte[200]);    // no extension, not DICOM
        bool fifo = OperatingSystem.IsLinux() && MakeFifo(Path.Combine(images, "pipe.png"));

        var index = folder.File("index");
        var report = Build(images, index);
        Assert.Equal(2, report.SymlinkedFoldersSkipped);
        var rows = RetrievalFixtures.ReadLiveRows(index);
        var expected = new List<string> { "a/img9_0000.png", "b/img9_0001.png", "c/IM0001", "c/img9_0002.png", "dangling.png", "link.png" };
        if (fifo) expected.Add("pipe.png");
        Assert.Equal(expected.Order(StringComparer.Ordinal), rows.Keys);
        Assert.Contains("broken symbolic link", rows["dangling.png"].Row.Error);
        Assert.NotNull(rows["c/IM0001"].Row.Error); // taken as an image; decoding reports the problem per file
        Assert.Null(rows["link.png"].Row.Error);
        Assert.Equal(rows["a/img9_0000.png"].Vector, rows["link.png"].Vector);
        if (fifo) Assert.Contains("not a regular file (a FIFO)", rows["pipe.png"].Row.Error);
    }

    private static bool MakeFifo(string path)
    {
        using var process = System.Diagnostics.Process.Start("mkfifo", [path]);
        process.WaitForExit();
        return process.ExitCode == 0;
    }

    [Fact]
    public void CancelledRunKeepsTheRowsDoneAndTheNextRunContinues()
    {
        using var folder = new TempFolder();
        var images = Path.Combine(folder.Path, "images");
        RetrievalFixtures.WriteImages(images, 30, seed: 10);
        var index = folder.File("index");

        using var cancel = new CancellationTokenSource();
        int seen = 0;
        IndexReport first;
        using (var run = ImageIndex.Open(Tiny, images, index, new IndexOptions { ChunkImages = 100 }))
        {
            Assert.Throws<OperationCanceledException>(() =>
            {
                foreach (var image in run.Run(cancel.Token))
                    if (++seen == 12) cancel.Cancel();
            });
            first = run.Report;
        }
        Assert.True(first.Interrupted);
        // The run stops at the next pass of eight: the rows of the passes done are committed, none lost.
        Assert.InRange(first.Rows, 12, 16);
        Assert.False(IndexManifest.Load(index).Complete);

        var second = Build(images, index);
        Assert.Equal(first.Rows, second.Reused);
        Assert.Equal(30 - first.Rows, second.Embedded);
        var whole = folder.File("whole");
        Build(images, whole);
        RetrievalFixtures.AssertSameRows(whole, index);
    }

    [Fact]
    public void ASecondWriterIsRefusedWhileTheFirstHoldsTheIndex()
    {
        using var folder = new TempFolder();
        var images = Path.Combine(folder.Path, "images");
        RetrievalFixtures.WriteImages(images, 2, seed: 11);
        var index = folder.File("index");
        using var first = ImageIndex.Open(Tiny, images, index);
        var e = Assert.Throws<IOException>(() => ImageIndex.Open(Tiny, images, index));
        Assert.Contains("another process is writing", e.Message);
    }

    [Fact]
    public void AFolderThatIsNotAnIndexIsNeverWrittenInto()
    {
        using var folder = new TempFolder();
        var images = Path.Combine(folder.Path, "images");
        RetrievalFixtures.WriteImages(images, 2, seed: 12);
        var precious = Path.Combine(folder.Path, "precious");
        Directory.CreateDirectory(precious);
        File.WriteAllText(Path.Combine(precious, "thesis.txt"), "keep");
        Assert.Throws<IOException>(() => ImageIndex.Open(Tiny, images, precious));
        Assert.Equal(["thesis.txt"], Directory.GetFileSystemEntries(precious).Select(Path.GetFileName));
        var file = folder.Write("index.safetensors", "old index file"u8.ToArray());
        Assert.Throws<IOException>(() => ImageIndex.Open(Tiny, images, file));
        Assert.Equal("old index file", File.ReadAllText(file));
    }
}
