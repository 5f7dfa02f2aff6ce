using ManagedClip.IO.Formats;
using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using ManagedClip.IO;
using Xunit.Abstractions;

namespace ManagedClip.Tests.EndToEnd;

/// <summary>
/// The failure classes of issue #14 through the command line: every one ends with one line on stderr that names the
/// input and the problem, exit code 1 (bad input), never 70 (internal error), a .NET exception or parameter name,
/// or an unbounded message; and loops and pipes end instead of hanging.
/// </summary>
public sealed class HostileCliTests(ITestOutputHelper output) : IDisposable
{
    private static readonly string Tiny = TestModels.TinyDirectory;
    private static readonly string Image = TestData.PathOf("images", "tiny.png");
    private readonly IO.TempFolder folder = new();

    public void Dispose() => folder.Dispose();

    /// <summary>Runs a command that must fail on bad input: exit 1, one bounded line naming what is wrong.</summary>
    private string Fails(string[] args, string expected)
    {
        var result = CliRunner.Run(args);
        output.WriteLine(result.Error);
        Assert.Equal(1, result.ExitCode);
        Assert.StartsWith("managedclip: ", result.Error);
        Assert.Single(result.Error.TrimEnd().Split('\n'));
        Assert.True(result.Error.Length < 2100, $"{result.Error.Length}-character message");
        Assert.DoesNotContain("(Parameter", result.Error);
        Assert.DoesNotContain("Exception", result.Error);
        Assert.DoesNotContain("internal error", result.Error);
        Assert.Contains(expected, result.Error);
        return result.Error;
    }

    /// <summary>The tiny model's folder with its weights rewritten by <paramref name="change"/> (name → values).</summary>
    private string TinyWithWeights(string name, Func<string, float[], float[]> change)
    {
        var model = Path.Combine(folder.Path, name);
        Directory.CreateDirectory(model);
        foreach (var file in new[] { "open_clip_config.json" }) File.Copy(Path.Combine(Tiny, file), Path.Combine(model, file));
        Directory.CreateDirectory(Path.Combine(model, "text_config"));
        File.Copy(Path.Combine(Tiny, "text_config", "config.json"), Path.Combine(model, "text_config", "config.json"));
        File.Copy(TestData.PathOf("vocab.txt"), Path.Combine(model, "vocab.txt"));
        using var original = SafeTensorsFile.Open(Path.Combine(Tiny, "model.safetensors"));
        var entries = original.Names.Select(n => original.Info(n).DType == TensorDType.F32
            ? SafeTensorsWriter.Float32(n, original.Info(n).Shape, change(n, original.GetFloat32(n).ToArray()))
            : new SafeTensorsWriter.Entry(original.Info(n), s => s.Write(((IRawTensorSource)original).RawBytes(n)))).ToList();
        SafeTensorsWriter.Write(Path.Combine(model, "model.safetensors"), entries, new Dictionary<string, string>(), overwrite: false);
        return model;
    }

    [Fact]
    public void NonFiniteWeightsAreReportedAsSuch()
    {
        var nan = TinyWithWeights("nan", (n, v) => n == "visual.trunk.norm.weight" ? v.Select(_ => float.NaN).ToArray() : v);
        Fails(["classify", "--model", nan, "--labels", "a, b", Image], "the model produced NaN/Inf: check the weights");
        Fails(["embed", "--model", nan, "--image", Image], Path.Combine(nan, "model.safetensors"));

        var overflow = TinyWithWeights("scale", (n, v) => n == "logit_scale" ? [1000f] : v);
        var message = Fails(["classify", "--model", overflow, "--labels", "a, b", Image], "the model produced NaN/Inf");
        Assert.Contains("logit_scale", message);
    }

    [Fact]
    public void NonFiniteActivationsAreReportedAsSuchInInt8()
    {
        // A NaN LayerNorm weight in the first block makes every activation row of the int8 GEMMs after it NaN: the
        // outlier selection and the quantizer must carry it to the output (not crash, hang or clip it to a number), and
        // the model's guard must report it as the float32 path does.
        var nan = TinyWithWeights("nan-int8", (n, v) => n is "visual.trunk.blocks.0.norm1.weight" or "text.transformer.encoder.layer.0.attention.output.LayerNorm.weight"
            ? v.Select(_ => float.NaN).ToArray() : v);
        foreach (var precision in new[] { "fp32", "int8" })
            Fails(["classify", "--model", nan, "--precision", precision, "--labels", "a, b", Image], "the model produced NaN/Inf: check the weights");
        var infinite = TinyWithWeights("inf-int8", (n, v) => n == "visual.trunk.blocks.0.norm1.bias" ? v.Select(_ => float.PositiveInfinity).ToArray() : v);
        Fails(["classify", "--model", infinite, "--precision", "int8", "--labels", "a, b", Image], "the model produced NaN/Inf: check the weights");
    }

    [Fact]
    public void IndexSkipsFolderLinksInsteadOfLoopingOrDuplicating()
    {
        var root = Path.Combine(folder.Path, "images");
        Directory.CreateDirectory(Path.Combine(root, "sub"));
        File.Copy(Image, Path.Combine(root, "a.png"));
        File.Copy(Image, Path.Combine(root, "sub", "b.png"));
        Directory.CreateSymbolicLink(Path.Combine(root, "sub", "loop"), root);          // a cycle
        Directory.CreateSymbolicLink(Path.Combine(root, "again"), Path.Combine(root, "sub")); // a second way in
        var result = CliRunner.Run("index", "--model", Tiny, root, "--out", Path.Combine(folder.Path, "images.index"));
        Assert.True(result.ExitCode == 0, result.Error);
        var report = result.Json;
        Assert.Equal(2, report.GetProperty("rows").GetInt32());
        Assert.Equal(2, report.GetProperty("symlinked_folders_skipped").GetInt32());
    }

    public static TheoryData<string> DamagedManifests => new() { "no-model", "no-parts", "parts-not-array", "null-part", "bad-json", "not-json", "wrong-format" };

    [Theory]
    [MemberData(nameof(DamagedManifests))]
    public void DamagedIndexManifestsAreNamed(string damage)
    {
        var root = Path.Combine(folder.Path, "images");
        Directory.CreateDirectory(root);
        File.Copy(Image, Path.Combine(root, "a.png"));
        var index = Path.Combine(folder.Path, damage + ".index");
        var built = CliRunner.Run("index", "--model", Tiny, root, "--out", index);
        Assert.True(built.ExitCode == 0, built.Error);

        var manifestPath = Path.Combine(index, "manifest.json");
        var manifest = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(manifestPath))!.AsObject();
        string text = damage switch
        {
            "no-model" => Without(manifest, "model"),
            "no-parts" => Without(manifest, "parts"),
            "parts-not-array" => With(manifest, "parts", new System.Text.Json.Nodes.JsonObject()),
            "null-part" => With(manifest, "parts", new System.Text.Json.Nodes.JsonArray((System.Text.Json.Nodes.JsonNode?)null)),
            "bad-json" => manifest.ToJsonString()[..20],
            "not-json" => "\u0001\u0002 not json",
            _ => With(manifest, "format", "something-else"),
        };
        File.WriteAllText(manifestPath, text);
        Fails(["search", "--model", Tiny, "--index", index, "--text", "tumor"], "manifest.json");

        static string Without(System.Text.Json.Nodes.JsonObject o, string key) { o.Remove(key); return o.ToJsonString(); }
        static string With(System.Text.Json.Nodes.JsonObject o, string key, System.Text.Json.Nodes.JsonNode? value) { o[key] = value; return o.ToJsonString(); }
    }

    [Fact]
    public void InvalidUtf8InConfigsAndTensorNamesIsRefused()
    {
        var model = Path.Combine(folder.Path, "badconfig");
        Directory.CreateDirectory(model);
        var config = File.ReadAllBytes(Path.Combine(Tiny, "open_clip_config.json"));
        int quote = Array.IndexOf(config, (byte)'"', 10);
        config = [.. config[..(quote + 1)], 0xFF, 0xFE, .. config[(quote + 1)..]]; // inside the first key
        File.WriteAllBytes(Path.Combine(model, "open_clip_config.json"), config);
        Fails(["tokenize", "--model", model, "tumor"], "not valid UTF-8");

        // A safetensors header whose tensor name holds bytes that are not UTF-8.
        var header = Encoding.UTF8.GetBytes("{\"w\u00e9\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}");
        int e = Array.IndexOf(header, (byte)0xC3);
        header[e] = 0xFF;
        var file = new byte[8 + header.Length + 4];
        BinaryPrimitives.WriteUInt64LittleEndian(file, (ulong)header.Length);
        header.CopyTo(file, 8);
        var weights = folder.Write("badname.safetensors", file);
        Fails(["classify", "--model", Tiny, "--weights", weights, "--labels", "a, b", Image], "not valid UTF-8");
    }

    [Fact]
    public void RequestsWithBrokenTextAreRefused()
    {
        var invalidUtf8 = folder.Write("invalid.json", [.. "{\"input_data\": {\"columns\": [\"image\", \"text\"], \"data\": [[\"a\", \"b"u8, 0xC0, .. "\"]]}}"u8]);
        Fails(["score", "--model", Tiny, "--request", invalidUtf8], "not valid UTF-8");

        var image = Convert.ToBase64String(File.ReadAllBytes(Image));
        foreach (var escape in new[] { "\\ud800", "\\udc00\\ud800" }) // lone, and reversed pair
        {
            var request = folder.Write($"surrogate{escape.Length}.json", Encoding.UTF8.GetBytes(
                $"{{\"input_data\": {{\"columns\": [\"image\", \"text\"], \"data\": [[\"{image}\", \"tumor, x{escape}y\"]]}}}}"));
            Fails(["score", "--model", Tiny, "--request", request], "unpaired surrogate");
        }
    }

    /// <summary>Found by the fuzz suite: looking a key up unescapes it, and an unpaired surrogate escape failed inside the JSON library.</summary>
    [Fact]
    public void SurrogateEscapesInKeysAreRefused()
    {
        var model = TinyWithWeights("surrogatekey", (_, v) => v);
        var config = File.ReadAllText(Path.Combine(Tiny, "open_clip_config.json")).Replace("\"embed_dim\"", "\"\\ud800embed_dim\"");
        File.WriteAllText(Path.Combine(model, "open_clip_config.json"), config);
        Fails(["tokenize", "--model", model, "tumor"], "unpaired surrogate");

        var request = folder.Write("key.json", Encoding.UTF8.GetBytes("{\"input_\\ud800data\": {}}"));
        Fails(["score", "--model", Tiny, "--request", request], "unpaired surrogate");
    }

    [Fact]
    public void AMegabyteTensorNameGivesABoundedMessage()
    {
        var name = new string('n', 1 << 20);
        var model = TinyWithWeights("longname", (_, v) => v);
        var path = Path.Combine(model, "model.safetensors");
        using (var tiny = SafeTensorsFile.Open(path))
        {
            var entries = tiny.Names.Select(n => new SafeTensorsWriter.Entry(tiny.Info(n), s => s.Write(((IRawTensorSource)tiny).RawBytes(n))))
                .Append(SafeTensorsWriter.Float32(name, [1], new float[] { 1 })).ToList();
            SafeTensorsWriter.Write(folder.File("longname.safetensors"), entries, new Dictionary<string, string>(), overwrite: false);
        }
        var message = Fails(["classify", "--model", model, "--weights", folder.File("longname.safetensors"), "--labels", "a, b", Image], "characters)");
        Assert.Contains("unexpected tensor 'nnnn", message);
    }

    [Fact]
    public void VocabularyLargerThanTheModelIsRefusedAtLoad()
    {
        var model = TinyWithWeights("bigvocab", (_, v) => v);
        var extra = string.Join("\n", Enumerable.Range(0, 40000).Select(i => $"extra{i}"));
        File.AppendAllText(Path.Combine(model, "vocab.txt"), extra + "\n");
        Fails(["classify", "--model", model, "--labels", "a, b", Image], "does not belong to the model");
    }

    [Fact]
    public void PipesAsInputsEndAtOnce()
    {
        var fifo = folder.File("pipe.png");
        if (!IO.SpecialFiles.TryMakeFifo(fifo)) return;
        Fails(["classify", "--model", Tiny, "--labels", "a, b", fifo], "named pipe");
        Fails(["score", "--model", Tiny, "--request", fifo], "named pipe");
        Fails(["classify", "--model", Tiny, "--weights", fifo, "--labels", "a, b", Image], "named pipe");
    }

    [Fact]
    public void TextWithNonCharactersAndControlsIsTokenized()
    {
        var result = CliRunner.Run("tokenize", "--model", Tiny, "tumor\uFFFEcell\u0001 x\uFFFF");
        Assert.True(result.ExitCode == 0, result.Error);
        var same = CliRunner.Run("tokenize", "--model", Tiny, "tumorcell x");
        Assert.Equal(same.Output, result.Output);
    }

    [Fact]
    public void ImageDecoderInternalsNeverReachTheUser()
    {
        // A PNG whose chunks are whole but whose IDAT data is random bytes: the user reads that the data is damaged.
        var png = File.ReadAllBytes(TestData.PathOf("images", "ihc.png"));
        int idat = png.AsSpan().IndexOf("IDAT"u8);
        var random = new Random(3);
        for (int i = idat + 40; i < idat + 2000; i++) png[i] = (byte)random.Next(256);
        var broken = folder.Write("broken.png", png);
        var result = CliRunner.Run("classify", "--model", Tiny, "--labels", "a, b", broken);
        output.WriteLine(result.Error);
        Assert.Equal(1, result.ExitCode);
        Assert.Contains("broken.png", result.Error);
        foreach (var internals in new[] { "Destination", "DangerousGetRowSpan", "Object reference", "(Parameter", "Exception" })
            Assert.DoesNotContain(internals, result.Error);
    }
}
