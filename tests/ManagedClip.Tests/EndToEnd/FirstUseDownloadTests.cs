using ManagedClip.IO.Distribution;
using System.Text.Json;
using ManagedClip.Cli;
using ManagedClip.IO;
using ManagedClip.Tests.IO;

namespace ManagedClip.Tests.EndToEnd;

/// <summary>
/// A command with no --model and empty caches downloads the model on first use, as huggingface_hub does: here from
/// <see cref="LoopbackHttpServer"/> on 127.0.0.1 (HF_ENDPOINT) serving the tiny reference model's files, listed
/// with their hashes in a test manifest ($MANAGEDCLIP_MANIFEST). Every cache points into a temp folder.
/// </summary>
[Collection(nameof(EnvironmentCollection))]
public sealed class FirstUseDownloadTests : IDisposable
{
    private static readonly string[] Variables =
    [
        "MANAGEDCLIP_MODEL", "MANAGEDCLIP_CACHE", "HF_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME", "HF_ENDPOINT", "HF_TOKEN",
        "HF_TOKEN_PATH", "HF_HUB_OFFLINE", ModelDownloader.EndpointVariable, FirstUse.ManifestVariable,
    ];

    // The tiny model as a hub repository would serve it: the weights as the torch checkpoint, the text tower's
    // config beside the open_clip config (the reader looks there when the hf_model_name folder is absent).
    private static readonly (string Name, byte[] Body)[] Files =
    [
        ("open_clip_pytorch_model.bin", File.ReadAllBytes(Path.Combine(TestData.Tiny, "open_clip_pytorch_model.bin"))),
        ("open_clip_config.json", File.ReadAllBytes(Path.Combine(TestData.Tiny, "open_clip_config.json"))),
        ("vocab.txt", File.ReadAllBytes(Path.Combine(TestData.Tiny, "vocab.txt"))),
        ("config.json", File.ReadAllBytes(Path.Combine(TestData.Tiny, "text_config", "config.json"))),
    ];

    private readonly Dictionary<string, string?> saved = Variables.ToDictionary(v => v, Environment.GetEnvironmentVariable);
    private readonly TempFolder temp = new();

    public FirstUseDownloadTests()
    {
        foreach (var variable in Variables) Environment.SetEnvironmentVariable(variable, null);
        Environment.SetEnvironmentVariable("MANAGEDCLIP_CACHE", Cache);
        Environment.SetEnvironmentVariable("HF_HUB_CACHE", temp.File("hub"));
        Environment.SetEnvironmentVariable("HF_HOME", temp.File("hf-home"));
        var manifest = DownloaderTests.Manifest(Files);
        var json = new
        {
            endpoint = "http://unused.invalid",
            files = manifest.Files.Select(f => new { name = f.Name, url = f.Url, sha256 = f.Sha256, size = f.Size }),
        };
        Environment.SetEnvironmentVariable(FirstUse.ManifestVariable, temp.Write("manifest.json", JsonSerializer.SerializeToUtf8Bytes(json)));
    }

    public void Dispose()
    {
        foreach (var (variable, value) in saved) Environment.SetEnvironmentVariable(variable, value);
        temp.Dispose();
    }

    private string Cache => temp.File("cache");

    private static LoopbackHttpServer TinyRepository() => new(request =>
        Files.FirstOrDefault(f => "/files/" + f.Name == request.Path) is { Body: { } body } ? new Reply.File(body) : new Reply.NotFound());

    private static readonly string[] Classify = ["classify", "--labels", "brain MRI, chest X-ray", "IMAGE"];

    private static string[] ClassifyArgs(params string[] model) =>
        [.. Classify[..^1], .. model, TestData.PathOf("images", "mr_small.png")];

    [Fact]
    public async Task TheFirstCommandDownloadsTheModelIntoTheCacheAndTheSecondUsesIt()
    {
        await using var server = TinyRepository();
        Environment.SetEnvironmentVariable("HF_ENDPOINT", server.Endpoint);

        var first = CliRunner.Run(ClassifyArgs());

        Assert.True(first.ExitCode == 0, first.Error);
        // The same result as with the tiny model named explicitly (its .bin and .safetensors hold the same bits).
        Assert.Equal(CliRunner.Run(ClassifyArgs("--model", TestModels.TinyDirectory)).Output, first.Output);
        Assert.Contains("downloading BiomedCLIP", first.Error);
        foreach (var (name, body) in Files)
        {
            Assert.Equal(body, File.ReadAllBytes(Path.Combine(Cache, name)));
            Assert.Contains(name, first.Error);   // a progress line per file, on stderr only
        }
        Assert.Empty(Directory.GetFiles(Cache, "*" + ModelDownloader.PartialSuffix));
        Assert.Equal(Files.Length, server.Requests.Count);

        var second = CliRunner.Run(ClassifyArgs());
        Assert.True(second.ExitCode == 0, second.Error);
        Assert.Equal(first.Output, second.Output);
        Assert.Equal("", second.Error);
        Assert.Equal(Files.Length, server.Requests.Count);   // nothing fetched again
    }

    [Fact]
    public async Task OfflineWithEmptyCachesFailsInOneLineNamingModelAndTheTinyModel()
    {
        await using var server = TinyRepository();
        Environment.SetEnvironmentVariable("HF_ENDPOINT", server.Endpoint);
        Environment.SetEnvironmentVariable("HF_HUB_OFFLINE", "1");

        var result = CliRunner.Run(ClassifyArgs());

        Assert.Equal(1, result.ExitCode);
        Assert.Single(result.Error.TrimEnd('\n').Split('\n'));
        Assert.Contains("HF_HUB_OFFLINE", result.Error);
        Assert.Contains("--model", result.Error);
        Assert.Contains("--model testdata/reference/tiny", result.Error);
        Assert.Equal("", result.Output);
        Assert.Empty(server.Requests);
    }

    [Fact]
    public async Task AnUnreachableHubFailsInOneLineAfterItsRetries()
    {
        // Every request fails as an overloaded or unreachable hub does; Retry-After: 0 keeps the retries quick.
        await using var server = new LoopbackHttpServer(_ => new Reply.Status(503, "Service Unavailable", RetryAfter: "0"));
        Environment.SetEnvironmentVariable("HF_ENDPOINT", server.Endpoint);

        var result = CliRunner.Run(ClassifyArgs());

        Assert.Equal(1, result.ExitCode);
        var lastLine = result.Error.TrimEnd('\n').Split('\n')[^1];
        Assert.StartsWith("managedclip: the model could not be downloaded", lastLine);
        Assert.Contains("HTTP 503", lastLine);
        Assert.Contains("--model testdata/reference/tiny", lastLine);
        Assert.Equal(ModelDownloader.DefaultMaxAttempts, server.Requests.Count);
        Assert.False(File.Exists(Path.Combine(Cache, "open_clip_pytorch_model.bin")));
    }

    [Fact]
    public async Task DownloadPrintsJsonAndKnowsWhatIsAlreadyThere()
    {
        await using var server = TinyRepository();
        Environment.SetEnvironmentVariable("HF_ENDPOINT", server.Endpoint);
        var target = temp.File("elsewhere");

        var first = CliRunner.Run("download", "--out", target);
        var second = CliRunner.Run("download", "--out", target);

        Assert.True(first.ExitCode == 0, first.Error);
        Assert.Equal(target, first.Json.GetProperty("folder").GetString());
        Assert.All(first.Json.GetProperty("files").EnumerateArray(), f => Assert.Equal("fetched", f.GetProperty("status").GetString()));
        Assert.All(second.Json.GetProperty("files").EnumerateArray(), f => Assert.Equal("present", f.GetProperty("status").GetString()));
        Assert.Equal(Files.Select(f => f.Name), first.Json.GetProperty("files").EnumerateArray().Select(f => f.GetProperty("name").GetString()));
    }
}

/// <summary>The download progress line: size, speed and time left, measured on a clock the test moves.</summary>
public sealed class ProgressBarTests
{
    [Fact]
    public void ALogGetsAPlainLineEveryFewSecondsWithSizeSpeedAndEta()
    {
        var clock = new ManualClock();
        var log = new StringWriter();
        var bar = new ProgressBar(log, redrawInPlace: false, clock) { PlainLineInterval = TimeSpan.FromSeconds(5) };
        const long total = 100L << 20;

        bar.Report(new DownloadProgress("model.bin", 0, total));
        clock.Advance(TimeSpan.FromSeconds(2));
        bar.Report(new DownloadProgress("model.bin", 20L << 20, total));   // within 5 s of the start: no line
        clock.Advance(TimeSpan.FromSeconds(3));
        bar.Report(new DownloadProgress("model.bin", 50L << 20, total));   // 5 s: a line, 10 MiB/s, 50 MiB left
        bar.Report(new DownloadProgress("model.bin", 0, total, "model.bin: HTTP 503. Retrying in 1 s (attempt 2 of 5)."));
        bar.Complete();

        var lines = log.ToString().TrimEnd('\n').Split('\n');
        Assert.Equal(3, lines.Length);
        Assert.Contains("50.0 MiB / 100.0 MiB", lines[0]);
        Assert.Contains("10.0 MiB/s", lines[0]);
        Assert.Contains("ETA 0:05", lines[0]);
        Assert.Contains(" 50%", lines[0]);
        Assert.Equal("managedclip: model.bin: HTTP 503. Retrying in 1 s (attempt 2 of 5).", lines[1]);
        Assert.StartsWith("model.bin", lines[2]);
    }

    private sealed class ManualClock : TimeProvider
    {
        private long ticks;
        public void Advance(TimeSpan by) => ticks += by.Ticks;
        public override long GetTimestamp() => ticks;
        public override long TimestampFrequency => TimeSpan.TicksPerSecond;
    }
}
