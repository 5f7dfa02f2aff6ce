using ManagedClip.IO.Formats;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using ManagedClip.IO;
using ManagedClip.Tests.IO;
using SixLabors.ImageSharp;

namespace ManagedClip.Tests.EndToEnd;

/// <summary>Runs only when <c>$MANAGEDCLIP_AOT_BINARY</c> names a native AOT build of managedclip.</summary>
public sealed class AotFactAttribute : FactAttribute
{
    public AotFactAttribute()
    {
        if (AotBinaryTests.Binary is null)
            Skip = $"{AotBinaryTests.Variable} is not set: .ci/run publishes the native AOT binary and sets it (publishing takes minutes)";
    }
}

/// <summary>
/// Every command and every server route of the native AOT binary, against the same command run in-process on the
/// JIT (<see cref="CliRunner"/>). Reflection-free JSON and trimming break things only at run time, so each output is
/// compared: text outputs must be identical; probabilities and embeddings within 1e-6, as the two builds may compile
/// the same kernels to different instruction sequences (measured identical on this machine; 1e-6 is far below the
/// 1e-4 the reference tests allow). Images in every format the decoder supports go through the binary once.
/// </summary>
public sealed class AotBinaryTests
{
    public const string Variable = "MANAGEDCLIP_AOT_BINARY";

    public static string? Binary => Environment.GetEnvironmentVariable(Variable) is { Length: > 0 } path ? path : null;

    private static readonly string Tiny = TestModels.TinyDirectory;

    private static CliRunner.Result RunAot(IEnumerable<string> args, Dictionary<string, string>? environment = null)
    {
        var start = new ProcessStartInfo(Binary!) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) start.ArgumentList.Add(a);
        foreach (var (name, value) in environment ?? []) start.Environment[name] = value;
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(3))) { process.Kill(); Assert.Fail("the AOT binary did not finish in 3 minutes"); }
        return new CliRunner.Result(process.ExitCode, output.Result, error.Result);
    }

    /// <summary>Same exit code and stdout, numbers within 1e-6.</summary>
    private static void AssertSame(string[] args)
    {
        var jit = CliRunner.Run(args);
        var aot = RunAot(args);
        Assert.True(jit.ExitCode == aot.ExitCode, $"exit {jit.ExitCode} vs {aot.ExitCode}: {aot.Error}");
        AssertSameJson(jit.Output, aot.Output);
    }

    private static void AssertSameJson(string expected, string actual)
    {
        var a = expected.TrimEnd('\n').Split('\n');
        var b = actual.TrimEnd('\n').Split('\n');
        Assert.Equal(a.Length, b.Length);
        for (int i = 0; i < a.Length; i++)
        {
            if (!a[i].StartsWith('[') && !a[i].StartsWith('{')) { Assert.Equal(a[i], b[i]); continue; }
            AssertSameElement(JsonDocument.Parse(a[i]).RootElement, JsonDocument.Parse(b[i]).RootElement, "$");
        }
    }

    private static void AssertSameElement(JsonElement a, JsonElement b, string where)
    {
        Assert.True(a.ValueKind == b.ValueKind, $"{where}: {a.ValueKind} vs {b.ValueKind}");
        switch (a.ValueKind)
        {
            case JsonValueKind.Object:
                Assert.Equal(a.EnumerateObject().Select(p => p.Name), b.EnumerateObject().Select(p => p.Name));
                foreach (var p in a.EnumerateObject()) AssertSameElement(p.Value, b.GetProperty(p.Name), $"{where}.{p.Name}");
                break;
            case JsonValueKind.Array:
                Assert.Equal(a.GetArrayLength(), b.GetArrayLength());
                for (int i = 0; i < a.GetArrayLength(); i++) AssertSameElement(a[i], b[i], $"{where}[{i}]");
                break;
            case JsonValueKind.Number:
                Assert.True(Math.Abs(a.GetDouble() - b.GetDouble()) <= 1e-6, $"{where}: {a} vs {b}");
                break;
            default:
                Assert.Equal(a.GetRawText(), b.GetRawText());
                break;
        }
    }

    private static string Image(string name) => TestData.PathOf("images", name + ".png");

    [AotFact]
    public void VersionHelpAndUsageErrors()
    {
        var version = RunAot(["--version"]);
        Assert.Equal(0, version.ExitCode);
        // In-process, --version reports the test host; the binary reports the CLI assembly's informational version.
        var expected = typeof(ManagedClip.Cli.CliApp).Assembly
            .GetCustomAttributes(typeof(System.Reflection.AssemblyInformationalVersionAttribute), false)
            .Cast<System.Reflection.AssemblyInformationalVersionAttribute>().Single().InformationalVersion;
        Assert.Equal(expected + "\n", version.Output);
        foreach (var command in new[] { "classify", "score", "embed", "tokenize", "index", "search", "serve", "download", "convert", "synth" })
        {
            var help = RunAot([command, "--help"]);
            Assert.Equal(0, help.ExitCode);
            Assert.Equal(CliRunner.Run(command, "--help").Output, help.Output);
        }
        var unknown = RunAot(["classify", "--model", Tiny, "--labels", "a", "--top", "3", Image("ihc")]);
        Assert.Equal(2, unknown.ExitCode);
        Assert.Contains("unknown option '--top'", unknown.Error);
    }

    [AotFact]
    public void ClassifyInEveryFormatAndEveryImageFormat()
    {
        using var folder = new TempFolder();
        // One image saved in each format the decoder reads, so each decoder runs in the trimmed binary.
        using (var png = SixLabors.ImageSharp.Image.Load(Image("ihc")))
        {
            png.SaveAsBmp(folder.File("ihc.bmp"));
            png.SaveAsGif(folder.File("ihc.gif"));
            png.SaveAsTiff(folder.File("ihc.tiff"));
            png.SaveAsWebp(folder.File("ihc.webp"));
            png.SaveAsTga(folder.File("ihc.tga"));
            png.SaveAsPbm(folder.File("ihc.pbm"));
            png.SaveAsJpeg(folder.File("ihc.jpg"));
        }
        folder.Write("broken.png", "not pixels"u8.ToArray());
        string[] common = ["classify", "--model", Tiny, "--labels", "Röntgen, \"a, b\", chest X-ray", folder.Path,
            Image("rgba"), Image("palette"), TestData.File("model-card", "images", "brain_MRI.jpg")];
        AssertSame(common);
        AssertSame([.. common, "--format", "jsonl", "--top-k", "2"]);
        var jit = CliRunner.Run([.. common, "--format", "csv"]);
        var aot = RunAot([.. common, "--format", "csv"]);
        Assert.Equal(1, aot.ExitCode);   // broken.png
        // CSV numbers are printed with shortest round-trip formatting: compare them as numbers.
        var jitLines = jit.Output.Split('\n');
        var aotLines = aot.Output.Split('\n');
        Assert.Equal(jitLines.Length, aotLines.Length);
        for (int i = 0; i < jitLines.Length; i++)
        {
            var x = jitLines[i].Split(',');
            var y = aotLines[i].Split(',');
            Assert.Equal(x.Length, y.Length);
            for (int j = 0; j < x.Length; j++)
                if (!(double.TryParse(x[j], System.Globalization.CultureInfo.InvariantCulture, out var p) &&
                      double.TryParse(y[j], System.Globalization.CultureInfo.InvariantCulture, out var q) && Math.Abs(p - q) <= 1e-6))
                    Assert.Equal(x[j], y[j]);
        }
    }

    [AotFact]
    public void EmbedTokenizeScoreIndexSearchConvertAndSynth()
    {
        using var folder = new TempFolder();
        AssertSame(["embed", "--model", Tiny, "--image", Image("ihc"), Image("gray")]);
        AssertSame(["embed", "--model", Tiny, "--text", "chest X-ray", "Röntgen"]);
        AssertSame(["tokenize", "--model", Tiny, "this is a photo of adenocarcinoma histopathology", "@literal"]);
        AssertSame(["tokenize", "--model", Tiny, "--tokens", "Röntgen imaging"]);

        var outJit = folder.File("jit.safetensors");
        var outAot = folder.File("aot.safetensors");
        Assert.Equal(0, CliRunner.Run("embed", "--model", Tiny, "--image", Image("cell"), "--out", outJit).ExitCode);
        var written = RunAot(["embed", "--model", Tiny, "--image", Image("cell"), "--out", outAot]);
        Assert.True(written.ExitCode == 0, written.Error);
        Assert.Equal(outAot, JsonDocument.Parse(written.Output).RootElement.GetProperty("out").GetString());
        using (var a = SafeTensorsFile.Open(outJit))
        using (var b = SafeTensorsFile.Open(outAot))
        {
            Assert.Equal(a.Metadata["inputs"], b.Metadata["inputs"]);
            var x = a.GetFloat32("embeddings").ToArray();
            var y = b.GetFloat32("embeddings").ToArray();
            Assert.All(x.Zip(y), p => Assert.True(Math.Abs(p.First - p.Second) <= 1e-6));
        }

        var request = folder.Write("request.json", JsonSerializer.SerializeToUtf8Bytes(new
        {
            input_data = new { columns = new[] { "image", "text" }, index = new[] { 0 }, data = new[] { new[] { Image("mr_small"), "brain MRI, chest X-ray" } } },
        }));
        AssertSame(["score", "--model", Tiny, "--request", request]);

        var images = Directory.CreateDirectory(folder.File("images")).FullName;
        foreach (var n in new[] { "ihc", "cell", "ct_small" }) File.Copy(Image(n), Path.Combine(images, n + ".png"));
        var indexed = RunAot(["index", "--model", Tiny, images, "--out", folder.File("images.index")]);
        Assert.True(indexed.ExitCode == 0, indexed.Error);
        Assert.Equal(3, JsonDocument.Parse(indexed.Output).RootElement.GetProperty("embedded").GetInt32());
        var found = RunAot(["search", "--model", Tiny, "--index", folder.File("images.index"), "--image", Image("cell"), "-k", "1"]);
        Assert.True(found.ExitCode == 0, found.Error);
        Assert.Equal(Path.Combine(images, "cell.png"), JsonDocument.Parse(found.Output).RootElement[0].GetProperty("path").GetString());
        AssertSame(["search", "--model", Tiny, "--index", folder.File("images.index"), "--text", "immunohistochemistry"]);

        var converted = RunAot(["convert", Path.Combine(Tiny, "open_clip_pytorch_model.bin"), folder.File("tiny.safetensors")]);
        Assert.True(converted.ExitCode == 0, converted.Error);
        Assert.True(File.Exists(folder.File("tiny.safetensors")));
        Assert.Equal(72, JsonDocument.Parse(converted.Output).RootElement.GetProperty("tensors").GetInt32());

        var synthesised = RunAot(["synth", "--out", folder.File("synthetic"), "--vocab", TestData.PathOf("vocab.txt")]);
        Assert.True(synthesised.ExitCode == 0, synthesised.Error);
        Assert.True(JsonDocument.Parse(synthesised.Output).RootElement.GetProperty("vocab").GetBoolean());
    }

    [AotFact]
    public async Task DownloadOnFirstUseFromALoopbackHub()
    {
        byte[] bin = File.ReadAllBytes(Path.Combine(Tiny, "open_clip_pytorch_model.bin")),
            config = File.ReadAllBytes(Path.Combine(Tiny, "open_clip_config.json")),
            vocab = File.ReadAllBytes(Path.Combine(Tiny, "vocab.txt")),
            textConfig = File.ReadAllBytes(Path.Combine(Tiny, "text_config", "config.json"));
        var files = new (string Name, byte[] Body)[]
            { ("open_clip_pytorch_model.bin", bin), ("open_clip_config.json", config), ("vocab.txt", vocab), ("config.json", textConfig) };
        using var folder = new TempFolder();
        var manifest = DownloaderTests.Manifest(files);
        var manifestPath = folder.Write("manifest.json", JsonSerializer.SerializeToUtf8Bytes(new
        {
            endpoint = "http://unused.invalid",
            files = manifest.Files.Select(f => new { name = f.Name, url = f.Url, sha256 = f.Sha256, size = f.Size }),
        }));
        await using var server = new LoopbackHttpServer(r =>
            files.FirstOrDefault(f => "/files/" + f.Name == r.Path) is { Body: { } body } ? new Reply.File(body) : new Reply.NotFound());
        // The child process gets its own environment: the test process's variables are not touched.
        var environment = new Dictionary<string, string>
        {
            ["MANAGEDCLIP_MODEL"] = "", ["MANAGEDCLIP_CACHE"] = folder.File("cache"), ["HF_HUB_CACHE"] = folder.File("hub"),
            ["HF_HOME"] = folder.File("hf"), ["HF_ENDPOINT"] = server.Endpoint, ["HF_TOKEN"] = "hf_test", ["HF_HUB_OFFLINE"] = "",
            ["MANAGEDCLIP_HF_ENDPOINT"] = "", ["MANAGEDCLIP_MANIFEST"] = manifestPath,
        };

        var result = RunAot(["classify", "--labels", "brain MRI, chest X-ray", Image("mr_small")], environment);

        Assert.True(result.ExitCode == 0, result.Error);
        AssertSameJson(CliRunner.Run("classify", "--model", Tiny, "--labels", "brain MRI, chest X-ray", Image("mr_small")).Output, result.Output);
        Assert.All(server.Requests, r => Assert.Equal("Bearer hf_test", r.Authorization));
        Assert.Equal(files.Length, server.Requests.Count);
    }

    [AotFact]
    public async Task ServeAnswersEveryRoute()
    {
        var start = new ProcessStartInfo(Binary!) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { "serve", "--model", Tiny, "--urls", "http://127.0.0.1:0", "--max-request-mb", "1" }) start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        try
        {
            // The first stdout line says where it listens (port 0: the system chose one).
            var ready = process.StandardOutput.ReadLineAsync();
            Assert.True(ready.Wait(TimeSpan.FromSeconds(60)), "serve did not report its address");
            var url = JsonDocument.Parse(ready.Result!).RootElement.GetProperty("urls")[0].GetString()!;
            using var client = new HttpClient { BaseAddress = new Uri(url), Timeout = TimeSpan.FromSeconds(60) };

            var health = JsonDocument.Parse(await client.GetStringAsync("/healthz")).RootElement;
            Assert.Equal("ok", health.GetProperty("status").GetString());
            Assert.Equal(32, health.GetProperty("embeddingSize").GetInt32());

            var (labels, expected) = CliRunner.TinyZeroShot("radiology");
            var body = JsonSerializer.Serialize(new
            {
                input_data = new
                {
                    columns = new[] { "image", "text" }, index = new[] { 0 },
                    data = new[] { new[] { Convert.ToBase64String(File.ReadAllBytes(Image("ihc"))), string.Join(", ", labels) } },
                },
            });
            var scored = await client.PostAsync("/score", new StringContent(body, Encoding.UTF8, "application/json"));
            Assert.Equal(HttpStatusCode.OK, scored.StatusCode);
            var row = JsonDocument.Parse(await scored.Content.ReadAsStringAsync()).RootElement[0];
            TensorAssert.Close("ihc", expected["ihc"], row.GetProperty("probs").EnumerateArray().Select(e => e.GetSingle()).ToArray(), 1e-4, 0);

            using var form = new MultipartFormDataContent
            {
                { new ByteArrayContent(File.ReadAllBytes(Image("wide"))), "image", "wide.png" },
                { new StringContent("Röntgen, chest X-ray"), "labels" },
            };
            var classified = await client.PostAsync("/classify", form);
            Assert.Equal(HttpStatusCode.OK, classified.StatusCode);
            var text = await classified.Content.ReadAsStringAsync();
            Assert.Contains("\"Röntgen\"", text);

            var bad = await client.PostAsync("/score", new StringContent("{\"input_data\": ", Encoding.UTF8, "application/json"));
            Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
            Assert.Contains("malformed JSON", JsonDocument.Parse(await bad.Content.ReadAsStringAsync()).RootElement.GetProperty("error").GetString());

            var large = new ByteArrayContent(new byte[2 << 20]);
            large.Headers.ContentType = new MediaTypeHeaderValue("application/json");
            // Ask first (Expect: 100-continue, as curl does for large bodies): the server refuses before the body is
            // sent, so the answer cannot race a connection reset while the client is still writing.
            using var oversized = new HttpRequestMessage(HttpMethod.Post, "/score") { Content = large };
            oversized.Headers.ExpectContinue = true;
            var tooLarge = await client.SendAsync(oversized);
            Assert.Equal(HttpStatusCode.RequestEntityTooLarge, tooLarge.StatusCode);
            Assert.Contains("error", await tooLarge.Content.ReadAsStringAsync());
        }
        finally
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
        }
    }
}
