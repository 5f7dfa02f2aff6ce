using ManagedClip.IO.Distribution;
using System.Diagnostics;
using ManagedClip.IO;
using static ManagedClip.Tests.IO.DownloaderTests;

namespace ManagedClip.Tests.IO;

/// <summary>
/// Transient failures retried within one download (503, 429 with Retry-After, a cut connection resumed with Range),
/// failures that are not retried, the access token, HF_ENDPOINT and HF_HUB_OFFLINE; all against
/// <see cref="LoopbackHttpServer"/> on 127.0.0.1. Retry waits are shortened to milliseconds except where the
/// Retry-After header itself is the subject.
/// </summary>
[Collection(nameof(EnvironmentCollection))]
public sealed class DownloaderRetryTests : IDisposable
{
    private static readonly byte[] Weights = RandomBytes(200_000, seed: 11);
    private static readonly string[] Variables = ["HF_ENDPOINT", "HF_TOKEN", "HF_TOKEN_PATH", "HF_HOME", "HF_HUB_OFFLINE", ModelDownloader.EndpointVariable];

    private readonly Dictionary<string, string?> saved = Variables.ToDictionary(v => v, Environment.GetEnvironmentVariable);
    private readonly TempFolder temp = new();
    private readonly HttpClient http = new(new SocketsHttpHandler { UseProxy = false }) { Timeout = TimeSpan.FromSeconds(10) };

    public DownloaderRetryTests()
    {
        foreach (var variable in Variables) Environment.SetEnvironmentVariable(variable, null);
        Environment.SetEnvironmentVariable("HF_HOME", temp.File("hf-home"));   // no saved token from this machine
    }

    public void Dispose()
    {
        foreach (var (variable, value) in saved) Environment.SetEnvironmentVariable(variable, value);
        http.Dispose();
        temp.Dispose();
    }

    private string Folder => temp.File("download");

    private ModelDownloader Downloader(LoopbackHttpServer server, int attempts = 5, string? token = "") =>
        new(Manifest(("model.bin", Weights)), server.Endpoint, http, token: token, offline: false)
        {
            MaxAttempts = attempts,
            RetryDelay = TimeSpan.FromMilliseconds(10),
        };

    [Fact]
    public async Task A503IsRetriedAndTheFileArrivesInOneRun()
    {
        int calls = 0;
        await using var server = new LoopbackHttpServer(_ =>
            Interlocked.Increment(ref calls) <= 2 ? new Reply.Status(503, "Service Unavailable") : new Reply.File(Weights));
        var notes = new List<string>();

        await Downloader(server).DownloadAllAsync(Folder, new Notes(notes));

        Assert.Equal(3, server.Requests.Count);
        Assert.Equal(Weights, File.ReadAllBytes(Path.Combine(Folder, "model.bin")));
        Assert.Equal(2, notes.Count);
        Assert.All(notes, n => Assert.Contains("HTTP 503", n));
        Assert.Contains("attempt 2 of 5", notes[0]);
    }

    [Fact]
    public async Task ACutConnectionIsResumedWithRangeInTheSameRun()
    {
        const int cutAt = 90_000;
        int calls = 0;
        await using var server = new LoopbackHttpServer(_ =>
            Interlocked.Increment(ref calls) == 1 ? new Reply.CutAfter(Weights, cutAt) : new Reply.File(Weights));

        await Downloader(server).DownloadAllAsync(Folder);

        Assert.Equal([null, $"bytes={cutAt}-"], server.Requests.Select(r => r.Range));
        Assert.Equal(Weights, File.ReadAllBytes(Path.Combine(Folder, "model.bin")));
        Assert.False(File.Exists(Path.Combine(Folder, "model.bin" + ModelDownloader.PartialSuffix)));
    }

    [Fact]
    public async Task A429WaitsForRetryAfter()
    {
        int calls = 0;
        await using var server = new LoopbackHttpServer(_ =>
            Interlocked.Increment(ref calls) == 1 ? new Reply.Status(429, "Too Many Requests", RetryAfter: "1") : new Reply.File(Weights));
        var clock = Stopwatch.StartNew();

        await Downloader(server).DownloadAllAsync(Folder);

        // The backoff alone would wait 10 ms; the server asked for a second (timers do not fire early by more
        // than their resolution, so 0.9 s is a safe lower bound).
        Assert.True(clock.Elapsed >= TimeSpan.FromSeconds(0.9), $"retried after {clock.Elapsed}");
        Assert.Equal(2, server.Requests.Count);
    }

    [Fact]
    public async Task PersistentFailureGivesUpAfterMaxAttemptsWithNothingVisible()
    {
        await using var server = new LoopbackHttpServer(_ => new Reply.Status(502, "Bad Gateway"));

        var error = await Assert.ThrowsAsync<ModelDownloadException>(() => Downloader(server, attempts: 3).DownloadAllAsync(Folder));

        Assert.Equal(3, server.Requests.Count);
        Assert.Contains("HTTP 502", error.Message);
        Assert.Contains("Gave up after 3 attempts", error.Message);
        Assert.False(File.Exists(Path.Combine(Folder, "model.bin")));
    }

    [Theory]
    [InlineData(404, "Not Found")]
    [InlineData(401, "Unauthorized")]
    public async Task ClientErrorsAreNotRetried(int status, string reason)
    {
        await using var server = new LoopbackHttpServer(_ => new Reply.Status(status, reason));

        var error = await Assert.ThrowsAsync<ModelDownloadException>(() => Downloader(server).DownloadAllAsync(Folder));

        Assert.Single(server.Requests);
        Assert.Contains($"HTTP {status}", error.Message);
        if (status == 401) Assert.Contains("HF_TOKEN", error.Message);
    }

    [Fact]
    public async Task AWrongHashIsRefusedAfterRetriesOfNothingAndLeavesNoFile()
    {
        var corrupted = (byte[])Weights.Clone();
        corrupted[^1] ^= 0xFF;
        await using var server = new LoopbackHttpServer(_ => new Reply.File(corrupted));

        var error = await Assert.ThrowsAsync<ModelDownloadException>(() => Downloader(server).DownloadAllAsync(Folder));

        Assert.Contains("SHA-256 mismatch", error.Message);
        Assert.Single(server.Requests);   // a body that cannot be the file is not fetched again
        Assert.Empty(Directory.GetFiles(Folder));
    }

    [Fact]
    public async Task TheTokenIsSentAsBearerFromTheArgumentTheVariableOrTheSavedLogin()
    {
        await using var server = new LoopbackHttpServer(_ => new Reply.File(Weights));

        await Downloader(server, token: "hf_argument").DownloadAllAsync(temp.File("a"));
        Environment.SetEnvironmentVariable("HF_TOKEN", "hf_variable");
        await Downloader(server, token: null).DownloadAllAsync(temp.File("b"));
        Environment.SetEnvironmentVariable("HF_TOKEN", null);
        Directory.CreateDirectory(temp.File("hf-home"));
        File.WriteAllText(Path.Combine(temp.File("hf-home"), "token"), "hf_saved\n");
        await Downloader(server, token: null).DownloadAllAsync(temp.File("c"));
        await Downloader(server, token: "").DownloadAllAsync(temp.File("d"));

        Assert.Equal(["Bearer hf_argument", "Bearer hf_variable", "Bearer hf_saved", null], server.Requests.Select(r => r.Authorization));
    }

    [Fact]
    public async Task HfEndpointChoosesTheServerAndTheManagedClipVariableWins()
    {
        await using var server = new LoopbackHttpServer(_ => new Reply.File(Weights));
        Environment.SetEnvironmentVariable("HF_ENDPOINT", server.Endpoint + "/");
        var manifest = Manifest(("model.bin", Weights));

        var viaHf = new ModelDownloader(manifest, httpClient: http, token: "", offline: false);
        Assert.Equal(server.Endpoint, viaHf.Endpoint);
        await viaHf.DownloadAllAsync(Folder);
        Assert.Equal("/files/model.bin", Assert.Single(server.Requests).Path);

        Environment.SetEnvironmentVariable(ModelDownloader.EndpointVariable, "http://127.0.0.2:9");
        Assert.Equal("http://127.0.0.2:9", new ModelDownloader(manifest, httpClient: http).Endpoint);
    }

    [Theory]
    [InlineData("1")]
    [InlineData("TRUE")]
    [InlineData("on")]
    public async Task OfflineMakesNoRequestButAcceptsCompleteFiles(string value)
    {
        Environment.SetEnvironmentVariable("HF_HUB_OFFLINE", value);
        await using var server = new LoopbackHttpServer(_ => new Reply.File(Weights));
        var downloader = new ModelDownloader(Manifest(("model.bin", Weights)), server.Endpoint, http);
        Assert.True(downloader.Offline);

        var error = await Assert.ThrowsAsync<ModelDownloadException>(() => downloader.DownloadAllAsync(Folder));
        Assert.Contains("HF_HUB_OFFLINE", error.Message);
        Assert.Empty(server.Requests);

        File.WriteAllBytes(Path.Combine(Folder, "model.bin"), Weights);
        Assert.True(Assert.Single(await downloader.DownloadAllAsync(Folder)).AlreadyComplete);
        Assert.Empty(server.Requests);
    }

    private sealed class Notes(List<string> notes) : IProgress<DownloadProgress>
    {
        public void Report(DownloadProgress value)
        {
            if (value.Note is { } note) notes.Add(note);
        }
    }
}
