using System.Buffers.Binary;
using System.Diagnostics;
using System.Security.Cryptography;
using ManagedClip.IO.Distribution;
using ManagedClip.IO.Formats;
using ManagedClip.Kernels;
using ManagedClip.Model;
using ManagedClip.Tests.EndToEnd;
using ManagedClip.Tests.IO;

namespace ManagedClip.Tests.Model;

/// <summary>
/// The packed-weights file (issue #20): a model that maps its block weights from the file computes exactly the bits
/// it computes with the weights packed in memory, and a file that is damaged, truncated, stale or made for something
/// else is refused and rebuilt, never used. The tiny model is forced through the file (its 0.3 MB of panels are
/// normally packed in memory); one test runs the full-size synthetic model's real shapes.
/// </summary>
public sealed class PackedWeightsTests : IDisposable
{
    private readonly TempFolder folder = new();
    private readonly string model;
    private readonly List<string> notes = [];

    public PackedWeightsTests()
    {
        // A private copy of the tiny model folder: the file is written next to the weights.
        model = Path.Combine(folder.Path, "tiny");
        CopyFolder(TestModels.TinyDirectory, model);
    }

    public void Dispose() => folder.Dispose();

    private ClipModelOptions Options(bool packedFile = true, string? directory = null, bool verify = false, ClipPrecision precision = ClipPrecision.Float32) => new()
    {
        ModelDirectory = model,
        Precision = precision,
        UsePackedWeightsFile = packedFile,
        PackedWeightsDirectory = directory,
        VerifyPackedWeights = verify,
        PackedWeightsMinimumBytes = 0,
        Notes = note => { lock (notes) notes.Add(note); },
    };

    private string NextToWeights => PackedPath(ClipPrecision.Float32);

    private string PackedPath(ClipPrecision precision) => Path.Combine(model, "model.safetensors" + PackedWeightsCache.Suffix(precision));

    public static TheoryData<ClipPrecision> Precisions() => [ClipPrecision.Float32, ClipPrecision.BFloat16, ClipPrecision.Int8];

    [Theory]
    [MemberData(nameof(Precisions))]
    public void MappedPanelsGiveTheSameBitsAsPackingInMemory(ClipPrecision precision)
    {
        var expected = Embeddings(Options(packedFile: false, precision: precision));
        Assert.Empty(notes);

        var built = Embeddings(Options(precision: precision), out string? builtPath);
        Assert.Equal(PackedPath(precision), builtPath);
        Assert.Contains(notes, n => n.StartsWith("packing the weights into", StringComparison.Ordinal));
        notes.Clear();
        var mapped = Embeddings(Options(precision: precision), out string? mappedPath);
        Assert.Equal(PackedPath(precision), mappedPath);
        Assert.Empty(notes); // the second load found the file sound and built nothing

        AssertSameBits(expected, built);
        AssertSameBits(expected, mapped);
        if (precision != ClipPrecision.Float32) // the reduced modes really are reduced: not the float32 bits
            Assert.ThrowsAny<Exception>(() => AssertSameBits(Embeddings(Options(packedFile: false)), mapped));
    }

    [Fact]
    public void EachPrecisionHasItsOwnFileAndTheyCoexist()
    {
        ClipPrecision[] precisions = [ClipPrecision.Float32, ClipPrecision.BFloat16, ClipPrecision.Int8];
        var expected = precisions.Select(p => Embeddings(Options(packedFile: false, precision: p))).ToList();
        foreach (var precision in precisions) using (Load(Options(precision: precision))) { }
        var sizes = precisions.Select(p => new FileInfo(PackedPath(p)).Length).ToList();
        // (bf16 against int8 is not compared: at the tiny model's widths, int8's three small arrays, a 4 KB page each, outweigh its saving.)
        Assert.True(sizes[0] > sizes[1] && sizes[0] > sizes[2], $"float32, bf16, int8 files: {string.Join(", ", sizes)} bytes");
        notes.Clear();
        int i = 0;
        foreach (var precision in precisions)
        {
            var mapped = Embeddings(Options(precision: precision), out string? path);
            Assert.Equal(PackedPath(precision), path);
            AssertSameBits(expected[i++], mapped);
        }
        Assert.Empty(notes); // none replaced another
    }

    [Fact]
    public unsafe void Int8AndBFloat16FilesHoldEveryArrayOfTheWeightsPackedInMemory()
    {
        // Every array of every matrix, compared byte for byte with the same weight packed in memory by the load path.
        var directory = ModelDirectory.Open(model);
        using var store = directory.OpenWeights();
        foreach (var precision in new[] { ClipPrecision.BFloat16, ClipPrecision.Int8 })
        {
            using (Load(Options(precision: precision))) { }
            var expected = PackedWeightsCache.PackedWeights(directory.Config, precision);
            Assert.Contains(expected, m => m.ElementType == PanelElement.Float32); // the patch embedding
            Assert.Contains(expected, m => m.ElementType != PanelElement.Float32);
            using var file = PackedWeightsFile.Open(PackedPath(precision), expected, WeightsIdentity.Of(directory.WeightsPath), verifyPanels: true);
            foreach (var request in expected)
            {
                var inMemory = WeightMatrix.Packed(request.Rows, request.Columns,
                    rowMajor => request.Parts.SelectMany(p => store.GetFloat32(p.Name).ToArray()).ToArray().CopyTo(rowMajor), request.ElementType);
                var mapped = file.Matrix(request);
                Assert.Equal(inMemory.ElementType, mapped.ElementType);
                var want = new List<(string, byte[])>();
                var have = new List<(string, byte[])>();
                inMemory.VisitArrays((a, bytes) => want.Add((a.Name, bytes.ToArray())));
                mapped.VisitArrays((a, bytes) => have.Add((a.Name, bytes.ToArray())));
                Assert.Equal(want.Select(w => w.Item1), have.Select(h => h.Item1));
                for (int a = 0; a < want.Count; a++)
                    Assert.True(want[a].Item2.AsSpan().SequenceEqual(have[a].Item2), $"{precision} '{request.Name}' array '{want[a].Item1}' differs");
                var entry = file.Header.Matrices.Single(m => m.Name == request.Name);
                Assert.All(entry.Sections, section => Assert.Equal(0, section.Offset % 4096));
            }
        }
    }

    [Fact]
    public void FullSizeShapesGiveTheSameBitsAsPackingInMemory()
    {
        // The synthetic full-size model (real shapes: 768-wide, 12 + 12 blocks, 3072-wide MLPs), linked into a private
        // folder so the file is built here, with the default size threshold.
        string full = Path.Combine(folder.Path, "full");
        Directory.CreateDirectory(full);
        // Only the model's own files: other tests leave that folder's packed file beside them, which would be found.
        foreach (var name in new[] { "open_clip_config.json", "model.safetensors", "vocab.txt" })
            File.CreateSymbolicLink(Path.Combine(full, name), Path.Combine(TestModels.FullDirectory, name));
        float[][][] Run(bool packedFile, out string? path)
        {
            using var clip = ClipModel.Load(new ClipModelOptions { ModelDirectory = full, UsePackedWeightsFile = packedFile, Notes = notes.Add });
            path = clip.PackedWeightsPath;
            return [clip.EmbedImages([ImageInput.FromFile(TestData.PathOf("images", "ihc.png"))], normalize: false),
                clip.EmbedTexts(["this is a photo of adenocarcinoma histopathology"], normalize: false)];
        }
        var expected = Run(packedFile: false, out _);
        var mapped = Run(packedFile: true, out string? packedPath);
        Assert.Equal(Path.Combine(full, "model.safetensors" + PackedWeightsCache.Suffix()), packedPath);
        Assert.True(new FileInfo(packedPath!).Length > 600_000_000, $"{packedPath}: {new FileInfo(packedPath!).Length} bytes");
        Assert.Contains(notes, n => n.StartsWith("packing the weights into", StringComparison.Ordinal)); // built here, not found
        AssertSameBits(expected, mapped);
    }

    [Fact]
    public unsafe void PanelsHoldTheCheckpointValuesInThePanelLayout()
    {
        // Checked against the checkpoint itself, element by element, not against our packing code.
        using (Load(Options())) { }
        var directory = ModelDirectory.Open(model);
        using var store = directory.OpenWeights();
        var expected = PackedWeightsCache.PackedWeights(directory.Config);
        using var file = PackedWeightsFile.Open(NextToWeights, expected, WeightsIdentity.Of(directory.WeightsPath), verifyPanels: true);
        Assert.Equal(PackedWeightsHeader.Align(ReadMetadata(NextToWeights).Length), file.Header.Matrices[0].Sections[0].Offset);
        foreach (var request in expected)
        {
            var rowMajor = request.Parts.SelectMany(p => store.GetFloat32(p.Name).ToArray()).ToArray(); // [N, K], parts stacked
            var matrix = file.Matrix(request);
            for (int n = 0; n < request.Rows; n++)
                for (int k = 0; k < request.Columns; k++)
                    Assert.Equal(BitConverter.SingleToInt32Bits(rowMajor[(long)n * request.Columns + k]), BitConverter.SingleToInt32Bits(matrix.Element(n, k)));
            int panels = (request.Rows + PanelPacking.PanelWidth - 1) / PanelPacking.PanelWidth;
            for (int lane = request.Rows % PanelPacking.PanelWidth; lane is > 0 and < PanelPacking.PanelWidth; lane++) // the last panel's missing rows
                Assert.Equal(0f, matrix.Panels[(long)(panels - 1) * request.Columns * PanelPacking.PanelWidth + lane]);
            Assert.Equal(0, file.Header.Matrices.Single(m => m.Name == request.Name).Sections.Single().Offset % 4096);
        }
    }

    public static TheoryData<string, string> Damages() => new()
    {
        { "header byte", "damaged (checksum mismatch)" },
        { "truncated", "truncated or extended" },
        { "extended", "truncated or extended" },
        { "empty", "empty" },
        { "not a packed file", "not a ManagedClip packed-weights file" },
        { "other layout version", "layout version 3" },
        { "other panel width", "packed for 16-wide panels" },
        { "other model", "this model expects" },
        { "other element type", "stored as bf16; float32 is expected" },
        { "weights rewritten", "stale: the weights file was modified since" },
        { "weights replaced", "stale" },
    };

    [Theory]
    [MemberData(nameof(Damages))]
    public void AFileThatCannotBeTrustedIsRebuilt(string damage, string reason)
    {
        using (Load(Options())) { }
        Damage(damage);
        var expected = Embeddings(Options(packedFile: false)); // after the damage: "weights replaced" changes the weights
        notes.Clear();

        var rebuilt = Embeddings(Options(), out string? path);
        Assert.Equal(NextToWeights, path);
        var note = Assert.Single(notes, n => n.StartsWith("packing the weights into", StringComparison.Ordinal));
        Assert.Contains(reason, note);
        AssertSameBits(expected, rebuilt);
        notes.Clear();
        using (Load(Options())) { }
        Assert.Empty(notes); // what was rebuilt is sound
    }

    public static TheoryData<ClipPrecision, string, string> LowPrecisionDamages() => new()
    {
        { ClipPrecision.Int8, "another precision's file", "it holds bf16 weights; this model is loaded in int8" },
        { ClipPrecision.BFloat16, "another precision's file", "it holds int8 weights; this model is loaded in bf16" },
        { ClipPrecision.Int8, "other packing version", "packed by packing version 7; this ManagedClip packs version 1" },
        { ClipPrecision.BFloat16, "other packing version", "packed by packing version 7" },
        { ClipPrecision.Int8, "unknown array", "holds an array 'scalez' that a Int8 weight does not have" },
        { ClipPrecision.Int8, "int8 levels out of range", "values reach ±200" },
        { ClipPrecision.Int8, "other element type", "stored as float32; int8 is expected" },
        { ClipPrecision.Int8, "truncated", "truncated or extended" },
        { ClipPrecision.BFloat16, "truncated", "truncated or extended" },
        { ClipPrecision.Int8, "header byte", "damaged (checksum mismatch)" },
        { ClipPrecision.BFloat16, "weights replaced", "stale" },
    };

    [Theory]
    [MemberData(nameof(LowPrecisionDamages))]
    public void ALowPrecisionFileThatDoesNotMatchIsRebuilt(ClipPrecision precision, string damage, string reason)
    {
        string path = PackedPath(precision);
        using (Load(Options(precision: precision))) { }
        switch (damage)
        {
            case "another precision's file":
                var other = precision == ClipPrecision.Int8 ? ClipPrecision.BFloat16 : ClipPrecision.Int8;
                using (Load(Options(precision: other))) { }
                File.Copy(PackedPath(other), path, overwrite: true);
                break;
            case "other packing version": PatchMetadata(path, b => BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(28), 7)); break;
            case "unknown array":
                PatchMetadata(path, b =>
                {
                    int at = b.AsSpan().IndexOf("scales"u8);
                    b[at + 5] = (byte)'z';
                });
                break;
            case "int8 levels out of range":
                var levels = Header(path).Matrices.First(m => m.ElementType == PackedElementType.Int8).Sections.Single(s => s.Name == "levels");
                using (var f = new FileStream(path, FileMode.Open)) { f.Position = levels.Offset; f.Write(BitConverter.GetBytes(200)); }
                break;
            case "other element type":
                // The first int8 matrix's record says float32: a table that does not match what the model asks for.
                PatchMetadata(path, b =>
                {
                    var header = Header(path);
                    int index = header.Matrices.ToList().FindIndex(m => m.ElementType == PackedElementType.Int8);
                    int at = PackedWeightsHeader.FixedBytes;
                    for (int i = 0; i < index; i++) at = SkipRecord(b, at);
                    BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(at + 2 + BinaryPrimitives.ReadUInt16LittleEndian(b.AsSpan(at))), (uint)PackedElementType.Float32);
                });
                break;
            default:
                Damage(damage, path);
                break;
        }
        var expected = Embeddings(Options(packedFile: false, precision: precision));
        notes.Clear();

        var rebuilt = Embeddings(Options(precision: precision), out string? used);
        Assert.Equal(path, used);
        var note = Assert.Single(notes, n => n.StartsWith("packing the weights into", StringComparison.Ordinal));
        Assert.Contains(reason, note);
        AssertSameBits(expected, rebuilt);
        notes.Clear();
        using (Load(Options(precision: precision))) { }
        Assert.Empty(notes); // what was rebuilt is sound
    }

    [Fact]
    public void DamagedInt8ArraysAreFoundWhenVerified()
    {
        var expected = Embeddings(Options(packedFile: false, precision: ClipPrecision.Int8));
        using (Load(Options(precision: ClipPrecision.Int8))) { }
        string path = PackedPath(ClipPrecision.Int8);
        var entry = Header(path).Matrices.First(m => m.ElementType == PackedElementType.Int8);
        var scales = entry.Sections.Single(s => s.Name == "scales");
        FlipByte(path, scales.Offset + 1);
        notes.Clear();
        var verified = Embeddings(Options(verify: true, precision: ClipPrecision.Int8), out _);
        Assert.Contains(notes, n => n.Contains($"the scales of '{entry.Name}' are damaged"));
        AssertSameBits(expected, verified);
    }

    [Fact]
    public void DamagedPanelsAreFoundWhenVerified()
    {
        var expected = Embeddings(Options(packedFile: false));
        using (Load(Options())) { }
        var entry = Header(NextToWeights).Matrices[3];
        FlipByte(NextToWeights, entry.Sections[0].Offset + entry.Sections[0].ByteLength / 2);
        notes.Clear();

        // The default load checks header, table and source, not 700 MB of panels (see PackedWeightsFile); verifying finds it.
        var verified = Embeddings(Options(verify: true), out _);
        Assert.Contains(notes, n => n.Contains($"the panels of '{entry.Name}' are damaged"));
        AssertSameBits(expected, verified);

        FlipByte(NextToWeights, Header(NextToWeights).Matrices[0].Sections[0].Offset);
        var prepared = PackedWeightsCache.Prepare(ModelDirectory.Open(model), Options(), notes.Add);
        Assert.True(prepared.Built);
        Assert.False(PackedWeightsCache.Prepare(ModelDirectory.Open(model), Options(), notes.Add).Built);
    }

    [Fact]
    public void ConcurrentBuildersEachGetASoundFile()
    {
        var expected = Embeddings(Options(packedFile: false));
        var results = new float[4][][][];
        Parallel.For(0, results.Length, new ParallelOptions { MaxDegreeOfParallelism = results.Length }, i => results[i] = Embeddings(Options(), out _));
        foreach (var result in results) AssertSameBits(expected, result);
        Assert.True(notes.Count(n => n.StartsWith("packing the weights into", StringComparison.Ordinal)) >= 1);
        Assert.Empty(Directory.GetFiles(model, "*.tmp").Concat(Directory.GetFiles(model, ".*"))); // no temporary file left behind
        notes.Clear();
        using (Load(Options())) { }
        Assert.Empty(notes);
    }

    [Fact]
    public void ConcurrentBuilderProcessesEachGetASoundFile()
    {
        // Separate processes renaming over each other: every `prepare` succeeds and the file left is sound.
        var cli = Path.Combine(AppContext.BaseDirectory, "ManagedClip.Cli.dll");
        var processes = Enumerable.Range(0, 3).Select(_ =>
        {
            var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var a in new[] { cli, "prepare", "--model", model }) start.ArgumentList.Add(a);
            return Process.Start(start)!;
        }).ToList();
        foreach (var process in processes)
        {
            string error = process.StandardError.ReadToEnd();
            process.WaitForExit();
            Assert.True(process.ExitCode == 0, error);
        }
        notes.Clear();
        using (var loaded = Load(Options())) Assert.Equal(NextToWeights, loaded.PackedWeightsPath);
        Assert.Empty(notes);
        Assert.False(PackedWeightsCache.Prepare(ModelDirectory.Open(model), Options(), notes.Add).Built); // every panel checks out
    }

    [ReadOnlyFolderFact]
    public void AReadOnlyModelFolderUsesTheUserCache()
    {
        var expected = Embeddings(Options(packedFile: false));
        Assert.True(MakeReadOnly(model, true), "could not make the model folder read-only");
        string? cached = null;
        try
        {
            Assert.ThrowsAny<SystemException>(() => File.WriteAllText(Path.Combine(model, "probe"), "")); // it is read-only
            var result = Embeddings(Options(), out cached);
            Assert.NotNull(cached);
            Assert.Equal(CachePaths.PackedWeightsDirectory, Path.GetDirectoryName(cached));
            Assert.False(File.Exists(NextToWeights));
            AssertSameBits(expected, result);
            notes.Clear();
            using (Load(Options())) { }
            Assert.Empty(notes);
        }
        finally
        {
            MakeReadOnly(model, false);
            if (cached is not null) File.Delete(cached);
        }

        // A read-only folder that already holds a sound file (a prepared container image) is used as it is.
        using (Load(Options())) { }
        MakeReadOnly(model, true);
        try
        {
            notes.Clear();
            using var loaded = Load(Options());
            Assert.Equal(NextToWeights, loaded.PackedWeightsPath);
            Assert.Empty(notes);
        }
        finally
        {
            MakeReadOnly(model, false);
        }
    }

    [ReadOnlyFolderFact]
    public void AReadOnlyModelFolderUsesTheUserCacheForInt8()
    {
        var expected = Embeddings(Options(packedFile: false, precision: ClipPrecision.Int8));
        Assert.True(MakeReadOnly(model, true), "could not make the model folder read-only");
        string? cached = null;
        try
        {
            var result = Embeddings(Options(precision: ClipPrecision.Int8), out cached);
            Assert.NotNull(cached);
            Assert.Equal(CachePaths.PackedWeightsDirectory, Path.GetDirectoryName(cached));
            Assert.EndsWith(PackedWeightsCache.Suffix(ClipPrecision.Int8), cached);
            AssertSameBits(expected, result);
            notes.Clear();
            AssertSameBits(expected, Embeddings(Options(precision: ClipPrecision.Int8), out string? again));
            Assert.Equal(cached, again);
            Assert.Empty(notes);
        }
        finally
        {
            MakeReadOnly(model, false);
            if (cached is not null) File.Delete(cached);
        }
    }

    [Fact]
    public void NowhereToWriteFallsBackToPackingInMemoryWithAWarning()
    {
        var expected = Embeddings(Options(packedFile: false));
        string blocked = Path.Combine(folder.Write("a-file", [1]), "packed"); // a folder inside a regular file cannot exist
        var result = Embeddings(Options(directory: blocked), out string? path);
        Assert.Null(path);
        var warning = Assert.Single(notes, n => n.StartsWith("warning: no packed-weights file could be written", StringComparison.Ordinal));
        Assert.Contains(blocked, warning);
        Assert.DoesNotContain("\n", warning);
        AssertSameBits(expected, result);
    }

    [Fact]
    public void AChosenFolderHoldsTheFileAndTurningItOffPacksInMemory()
    {
        string chosen = Path.Combine(folder.Path, "packed");
        using (var loaded = Load(Options(directory: chosen)))
            Assert.Equal(chosen, Path.GetDirectoryName(loaded.PackedWeightsPath));
        Assert.False(File.Exists(NextToWeights));
        using (var off = Load(Options(packedFile: false))) Assert.Null(off.PackedWeightsPath);
        // By default the tiny model is below the size worth a file.
        using (var small = ClipModel.Load(new ClipModelOptions { ModelDirectory = model, Notes = notes.Add })) Assert.Null(small.PackedWeightsPath);
    }

    [Fact]
    public void CliPrepareBuildsThenVerifies()
    {
        var first = CliRunner.Run("prepare", "--model", model);
        Assert.True(first.ExitCode == 0, first.Error);
        var json = first.Json;
        Assert.Equal(NextToWeights, json.GetProperty("path").GetString());
        Assert.Equal(new FileInfo(NextToWeights).Length, json.GetProperty("size").GetInt64());
        Assert.True(json.GetProperty("built").GetBoolean());
        Assert.True(json.GetProperty("seconds").GetDouble() >= 0);
        // The recorded content hash is the weights file's SHA-256 (what the download manifest lists).
        using (var weights = File.OpenRead(Path.Combine(model, "model.safetensors")))
            Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(weights)), json.GetProperty("source_sha256").GetString());

        var second = CliRunner.Run("prepare", "--model", model);
        Assert.True(second.ExitCode == 0, second.Error);
        Assert.False(second.Json.GetProperty("built").GetBoolean());

        var all = CliRunner.Run("prepare", "--model", model, "--precision", "all");
        Assert.True(all.ExitCode == 0, all.Error);
        var files = all.Json.EnumerateArray().ToList();
        Assert.Equal(["fp32", "bf16", "int8"], files.Select(f => f.GetProperty("precision").GetString()));
        Assert.Equal([false, true, true], files.Select(f => f.GetProperty("built").GetBoolean())); // fp32 was there
        Assert.Equal([NextToWeights, PackedPath(ClipPrecision.BFloat16), PackedPath(ClipPrecision.Int8)], files.Select(f => f.GetProperty("path").GetString()));
        var int8 = CliRunner.Run("prepare", "--model", model, "--precision", "int8");
        Assert.True(int8.ExitCode == 0, int8.Error);
        Assert.False(int8.Json.GetProperty("built").GetBoolean());
        Assert.Equal("int8", int8.Json.GetProperty("precision").GetString());
        Assert.Equal(2, CliRunner.Run("prepare", "--model", model, "--precision", "fp16").ExitCode);

        var blocked = CliRunner.Run("prepare", "--model", model, "--packed-dir", Path.Combine(folder.Write("a-file", [1]), "x"));
        Assert.Equal(1, blocked.ExitCode);
        Assert.StartsWith("managedclip: no packed-weights file could be written", blocked.Error.Split('\n').Last(l => l.Length > 0));
    }

    [Fact]
    public void HostileHeadersAreRefusedBeforeAnythingLargeIsAllocated()
    {
        using (Load(Options())) { }
        var metadata = ReadMetadata(NextToWeights);
        long length = new FileInfo(NextToWeights).Length;
        Assert.NotNull(PackedWeightsHeader.Parse(metadata, length, PanelPacking.PanelWidth)); // the untouched file parses

        string Refusal(Action<byte[]> edit, long fileLength)
        {
            var bytes = (byte[])metadata.Clone();
            edit(bytes);
            FixChecksum(bytes);
            return Assert.Throws<PackedWeightsRejectedException>(() => PackedWeightsHeader.Parse(bytes, fileLength, PanelPacking.PanelWidth)).Message;
        }
        // ClaimedMetadataLength bounds the only allocation sized by the file before it is made.
        Assert.Contains("claims 4,294,967,295 bytes of metadata", Assert.Throws<PackedWeightsRejectedException>(() =>
            PackedWeightsHeader.ClaimedMetadataLength(Patched(metadata, 12, uint.MaxValue), length)).Message);
        Assert.Contains("more than its", Refusal(b => BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(24), 1_000_000_000), length));
        Assert.Contains("name of 65535 bytes", Refusal(b => BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(PackedWeightsHeader.FixedBytes), 65535), length));
        int firstRecord = PackedWeightsHeader.FixedBytes + 2 + BinaryPrimitives.ReadUInt16LittleEndian(metadata.AsSpan(PackedWeightsHeader.FixedBytes));
        Assert.Contains("claims 1,000 arrays", Refusal(b => BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(firstRecord + 12), 1000), length));
        int firstSection = firstRecord + 16, sectionFields = firstSection + 1 + metadata[firstSection]; // "panels"
        Assert.Contains("outside its table", Refusal(b => b[firstSection] = 200, length));
        Assert.Contains("not printable ASCII", Refusal(b => b[firstSection + 1] = 0, length));
        Assert.Contains("not an aligned range", Refusal(b => BinaryPrimitives.WriteInt64LittleEndian(b.AsSpan(sectionFields + 16), long.MaxValue - 100), length));
        Assert.Contains("not an aligned range", Refusal(b => BinaryPrimitives.WriteInt64LittleEndian(b.AsSpan(sectionFields + 24), long.MaxValue), length));
        Assert.Contains("not an aligned range", Refusal(b => BinaryPrimitives.WriteInt64LittleEndian(b.AsSpan(sectionFields + 16), 4096 + 8), length));
        Assert.Contains("elements of type", Refusal(b => BinaryPrimitives.WriteInt64LittleEndian(b.AsSpan(sectionFields + 8), long.MaxValue), length));
        Assert.Contains("elements of type 99", Refusal(b => BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(sectionFields), 99), length));
    }

    // ---- helpers ----

    private ClipModel Load(ClipModelOptions options) => ClipModel.Load(options);

    private float[][][] Embeddings(ClipModelOptions options) => Embeddings(options, out _);

    /// <summary>Image and text embeddings (unnormalised, so any difference in the towers shows).</summary>
    private float[][][] Embeddings(ClipModelOptions options, out string? packedPath)
    {
        using var clip = Load(options);
        packedPath = clip.PackedWeightsPath;
        var images = new[] { "ihc.png", "cell.png", "large.png" }.Select(n => ImageInput.FromFile(TestData.PathOf("images", n))).ToArray();
        return [clip.EmbedImages(images, normalize: false), clip.EmbedTexts(["chest X-ray", "this is a photo of adenocarcinoma histopathology"], normalize: false)];
    }

    private static void AssertSameBits(float[][][] expected, float[][][] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            for (int j = 0; j < expected[i].Length; j++)
                Assert.True(expected[i][j].Select(BitConverter.SingleToInt32Bits).SequenceEqual(actual[i][j].Select(BitConverter.SingleToInt32Bits)),
                    $"output {i}/{j} differs from packing in memory");
    }

    private void Damage(string damage) => Damage(damage, NextToWeights);

    private void Damage(string damage, string packed)
    {
        string weights = Path.Combine(model, "model.safetensors");
        switch (damage)
        {
            case "header byte": FlipByte(packed, 50); break;
            case "truncated":
                using (var f = new FileStream(packed, FileMode.Open)) f.SetLength(f.Length - 4096);
                break;
            case "extended": File.AppendAllText(packed, "more"); break;
            case "empty": File.WriteAllBytes(packed, []); break;
            case "not a packed file": File.WriteAllBytes(packed, RandomNumberGenerator.GetBytes(10_000)); break;
            case "other layout version": PatchMetadata(packed, b => BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(8), 3)); break;
            case "other panel width": PatchMetadata(packed, b => BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(16), 16)); break;
            case "other model": PatchMetadata(packed, b => b[PackedWeightsHeader.FixedBytes + 2] ^= 0x20); break; // the first matrix's name
            case "other element type":
                PatchMetadata(packed, b => BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(PackedWeightsHeader.FixedBytes + 2 + BinaryPrimitives.ReadUInt16LittleEndian(b.AsSpan(PackedWeightsHeader.FixedBytes))), 2));
                break;
            case "weights rewritten":
                // Same bytes, written again: size, inode and header region unchanged, only the modification time moves.
                File.SetLastWriteTimeUtc(weights, File.GetLastWriteTimeUtc(weights).AddSeconds(1));
                break;
            case "weights replaced":
                // Other weights of the same size and layout: one value in the first tensor changed, renamed into place.
                var bytes = File.ReadAllBytes(weights);
                int headerLength = (int)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
                bytes[8 + headerLength + 100] ^= 1;
                File.WriteAllBytes(weights + ".new", bytes);
                File.Move(weights + ".new", weights, overwrite: true);
                break;
            default: throw new ArgumentException(damage);
        }
    }

    private static void PatchMetadata(string path, Action<byte[]> edit)
    {
        var metadata = ReadMetadata(path);
        edit(metadata);
        FixChecksum(metadata);
        using var f = new FileStream(path, FileMode.Open);
        f.Write(metadata);
    }

    /// <summary>The offset of the record after the one at <paramref name="at"/> (see <see cref="PackedWeightsHeader"/>).</summary>
    private static int SkipRecord(byte[] metadata, int at)
    {
        at += 2 + BinaryPrimitives.ReadUInt16LittleEndian(metadata.AsSpan(at));
        int sections = (int)BinaryPrimitives.ReadUInt32LittleEndian(metadata.AsSpan(at + 12));
        at += 16;
        for (int i = 0; i < sections; i++) at += 1 + metadata[at] + 4 * 2 + 8 * 3 + 32;
        return at;
    }

    private static byte[] ReadMetadata(string path)
    {
        var bytes = File.ReadAllBytes(path);
        return bytes[..(int)BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(12))];
    }

    /// <summary>Recomputes the metadata checksum, as a file made on purpose for another layout would have it.</summary>
    private static void FixChecksum(byte[] metadata)
    {
        metadata.AsSpan(136, 32).Clear();
        SHA256.HashData(metadata).CopyTo(metadata, 136);
    }

    private static byte[] Patched(byte[] metadata, int offset, uint value)
    {
        var copy = (byte[])metadata.Clone();
        BinaryPrimitives.WriteUInt32LittleEndian(copy.AsSpan(offset), value);
        return copy;
    }

    private static PackedWeightsHeader Header(string path) => PackedWeightsHeader.Parse(ReadMetadata(path), new FileInfo(path).Length, PanelPacking.PanelWidth);

    private static void FlipByte(string path, long offset)
    {
        using var f = new FileStream(path, FileMode.Open);
        f.Position = offset;
        int b = f.ReadByte();
        f.Position = offset;
        f.WriteByte((byte)(b ^ 0x5A));
    }

    private static void CopyFolder(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var file in Directory.GetFiles(from))
            if (Path.GetFileName(file) is not ("open_clip_pytorch_model.bin" or "outputs.safetensors")) File.Copy(file, Path.Combine(to, Path.GetFileName(file)));
        foreach (var sub in Directory.GetDirectories(from)) CopyFolder(sub, Path.Combine(to, Path.GetFileName(sub)));
    }

    /// <summary>
    /// Makes a folder read-only for this process: chmod for an ordinary user; root ignores modes, so chattr +i
    /// (immutable; ext4 and most Linux file systems). False if neither works here.
    /// </summary>
    internal static bool MakeReadOnly(string path, bool readOnly)
    {
        if (!OperatingSystem.IsLinux()) return false;
        if (Environment.UserName != "root")
        {
            File.SetUnixFileMode(path, readOnly ? UnixFileMode.UserRead | UnixFileMode.UserExecute : UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            return true;
        }
        try
        {
            using var chattr = Process.Start(new ProcessStartInfo("chattr", [readOnly ? "+i" : "-i", path]) { RedirectStandardError = true })!;
            chattr.WaitForExit();
            return chattr.ExitCode == 0;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return false; // no chattr
        }
    }
}

/// <summary>Runs where a folder can be made read-only: Linux, as an ordinary user (chmod) or as root with chattr.</summary>
public sealed class ReadOnlyFolderFactAttribute : FactAttribute
{
    public ReadOnlyFolderFactAttribute()
    {
        if (!OperatingSystem.IsLinux()) Skip = "read-only folders are made with chmod or chattr, on Linux";
        else if (Environment.UserName == "root" && !(Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Any(d => File.Exists(Path.Combine(d, "chattr"))))
            Skip = "running as root, which ignores folder permissions, without chattr (e2fsprogs) to make a folder immutable";
    }
}
