using System.Security.Cryptography;
using ManagedClip.IO.Distribution;

namespace ManagedClip.Tests.IO;

/// <summary>
/// <see cref="ModelDownloader"/> against <see cref="LoopbackHttpServer"/> with generated fixture files and a test
/// manifest holding their hashes (never the real model). Every test runs in well under a second.
/// </summary>
public sealed class DownloaderTests : IDisposable
{
    private static readonly byte[] Weights = RandomBytes(200_000, seed: 1);   // several 64 KiB buffers long
    private static readonly byte[] Vocab = RandomBytes(300, seed: 2);

    private readonly string folder = Path.Combine(Path.GetTempPath(), "managedclip-download-" + Guid.NewGuid().ToString("N"));
    private readonly HttpClient http = new(new SocketsHttpHandler { UseProxy = false }) { Timeout = TimeSpan.FromSeconds(10) };

    public void Dispose()
    {
        http.Dispose();
        if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
    }

    [Fact]
    public async Task DownloadsEveryFileVerifiedAndLeavesNoPartial()
    {
        await using var server = new LoopbackHttpServer(request => new Reply.File(BodyFor(request)));
        var progress = new RecordingProgress();

        var results = await Downloader(server, Manifest(("model.bin", Weights), ("vocab.txt", Vocab))).DownloadAllAsync(folder, progress);

        Assert.Equal(["model.bin", "vocab.txt"], results.Select(r => r.File.Name));
        Assert.All(results, r => Assert.False(r.AlreadyComplete));
        Assert.Equal(Weights, File.ReadAllBytes(Path.Combine(folder, "model.bin")));
        Assert.Equal(Vocab, File.ReadAllBytes(Path.Combine(folder, "vocab.txt")));
        Assert.Empty(Directory.GetFiles(folder, "*" + ModelDownloader.PartialSuffix));
        Assert.All(server.Requests, r => Assert.Null(r.Range));
        Assert.Equal(["/files/model.bin", "/files/vocab.txt"], server.Requests.Select(r => r.Path));
        // The last report of each file says it is complete.
        Assert.Equal(new DownloadProgress("model.bin", Weights.Length, Weights.Length), progress.Reports.Last(p => p.FileName == "model.bin"));
        Assert.Equal(new DownloadProgress("vocab.txt", Vocab.Length, Vocab.Length), progress.Reports.Last());
    }

    [Fact]
    public async Task CutConnectionKeepsPartialAndRerunResumesWithRange()
    {
        const int cutAt = 70_000;
        var attempts = 0;
        await using var server = new LoopbackHttpServer(_ =>
            Interlocked.Increment(ref attempts) == 1 ? new Reply.CutAfter(Weights, cutAt) : new Reply.File(Weights));
        // One attempt per run: the retry within a run is DownloaderRetryTests' subject; here the rerun resumes.
        var downloader = new ModelDownloader(Manifest(("model.bin", Weights)), server.Endpoint, http, token: "", offline: false) { MaxAttempts = 1 };
        var partialPath = Path.Combine(folder, "model.bin" + ModelDownloader.PartialSuffix);

        var error = await Assert.ThrowsAsync<ModelDownloadException>(() => downloader.DownloadAllAsync(folder));
        Assert.Contains("model.bin", error.Message);
        Assert.Contains("kept", error.Message);
        Assert.Contains("resume", error.Message);
        Assert.Equal(Weights[..cutAt], File.ReadAllBytes(partialPath));
        Assert.False(File.Exists(Path.Combine(folder, "model.bin")));

        await downloader.DownloadAllAsync(folder);

        Assert.Equal($"bytes={cutAt}-", server.Requests[1].Range);
        Assert.Equal(Weights, File.ReadAllBytes(Path.Combine(folder, "model.bin")));
        Assert.False(File.Exists(partialPath));
    }

    [Fact]
    public async Task CorruptedBodyIsRejectedAndExistingFileIsUntouched()
    {
        var corrupted = (byte[])Weights.Clone();
        corrupted[123_456] ^= 0x01;
        // An older file is already in place (it does not match the manifest, so it is re-downloaded).
        var older = RandomBytes(1_000, seed: 3);
        Directory.CreateDirectory(folder);
        var finalPath = Path.Combine(folder, "model.bin");
        File.WriteAllBytes(finalPath, older);
        await using var server = new LoopbackHttpServer(_ => new Reply.File(corrupted));

        var error = await Assert.ThrowsAsync<ModelDownloadException>(
            () => Downloader(server, Manifest(("model.bin", Weights))).DownloadAllAsync(folder));

        Assert.Contains("model.bin", error.Message);
        Assert.Contains(Sha256(Weights), error.Message);     // expected
        Assert.Contains(Sha256(corrupted), error.Message);   // actual
        Assert.Equal(older, File.ReadAllBytes(finalPath));
        Assert.False(File.Exists(finalPath + ModelDownloader.PartialSuffix));
    }

    [Theory]
    [InlineData(true)]    // refused as soon as Content-Length is seen
    [InlineData(false)]   // refused while streaming, once the body passes the manifest size
    public async Task BodyLongerThanManifestSizeIsRefused(bool announceLength)
    {
        var longer = Weights.Concat(new byte[10]).ToArray();
        await using var server = new LoopbackHttpServer(_ => new Reply.File(longer, AnnounceLength: announceLength));

        var error = await Assert.ThrowsAsync<ModelDownloadException>(
            () => Downloader(server, Manifest(("model.bin", Weights))).DownloadAllAsync(folder));

        Assert.Contains("model.bin", error.Message);
        Assert.Contains(Weights.Length.ToString(), error.Message);
        Assert.Empty(Directory.GetFiles(folder));
    }

    [Fact]
    public async Task NotFoundNamesTheUrlAndLeavesNothing()
    {
        await using var server = new LoopbackHttpServer(_ => new Reply.NotFound());
        var downloader = Downloader(server, Manifest(("model.bin", Weights)));

        var error = await Assert.ThrowsAsync<ModelDownloadException>(() => downloader.DownloadAllAsync(folder));

        Assert.Contains(server.Endpoint + "/files/model.bin", error.Message);
        Assert.Contains("404", error.Message);
        Assert.Empty(Directory.GetFiles(folder));
    }

    [Fact]
    public async Task ServerIgnoringRangeRestartsFromZero()
    {
        // A partial that is not even a prefix of the file: appending to it would fail the hash.
        Directory.CreateDirectory(folder);
        var partialPath = Path.Combine(folder, "model.bin" + ModelDownloader.PartialSuffix);
        File.WriteAllBytes(partialPath, RandomBytes(50_000, seed: 4));
        await using var server = new LoopbackHttpServer(_ => new Reply.File(Weights, HonourRange: false));

        await Downloader(server, Manifest(("model.bin", Weights))).DownloadAllAsync(folder);

        Assert.Equal("bytes=50000-", Assert.Single(server.Requests).Range);
        Assert.Equal(Weights, File.ReadAllBytes(Path.Combine(folder, "model.bin")));
        Assert.False(File.Exists(partialPath));
    }

    [Fact]
    public async Task RangeNotSatisfiableRestartsWithoutRange()
    {
        // The manifest gives no size, so a partial longer than the file is only discovered by the server's 416.
        Directory.CreateDirectory(folder);
        File.WriteAllBytes(Path.Combine(folder, "vocab.txt" + ModelDownloader.PartialSuffix), RandomBytes(Vocab.Length + 5, seed: 5));
        await using var server = new LoopbackHttpServer(_ => new Reply.File(Vocab));

        await Downloader(server, Manifest([("vocab.txt", Vocab)], withSizes: false)).DownloadAllAsync(folder);

        Assert.Equal([$"bytes={Vocab.Length + 5}-", null], server.Requests.Select(r => r.Range));
        Assert.Equal(Vocab, File.ReadAllBytes(Path.Combine(folder, "vocab.txt")));
    }

    [Fact]
    public async Task CompleteFileIsSkippedWithoutAnyRequest()
    {
        Directory.CreateDirectory(folder);
        var finalPath = Path.Combine(folder, "model.bin");
        File.WriteAllBytes(finalPath, Weights);
        var writtenAt = File.GetLastWriteTimeUtc(finalPath);
        await using var server = new LoopbackHttpServer(_ => new Reply.File(Weights));

        var result = Assert.Single(await Downloader(server, Manifest(("model.bin", Weights))).DownloadAllAsync(folder));

        Assert.True(result.AlreadyComplete);
        Assert.Empty(server.Requests);
        Assert.Equal(Weights, File.ReadAllBytes(finalPath));
        Assert.Equal(writtenAt, File.GetLastWriteTimeUtc(finalPath));
    }

    [Fact]
    public async Task StalledBodyTimesOutAndKeepsPartial()
    {
        await using var server = new LoopbackHttpServer(_ => new Reply.StallAfter(Weights, 10_000));
        var downloader = new ModelDownloader(Manifest(("model.bin", Weights)), server.Endpoint, http, token: "", offline: false)
        {
            StallTimeout = TimeSpan.FromMilliseconds(300),
            MaxAttempts = 1,
        };

        var error = await Assert.ThrowsAsync<ModelDownloadException>(() => downloader.DownloadAllAsync(folder));

        Assert.Contains("sent nothing", error.Message);
        Assert.Contains("resume", error.Message);
        Assert.Equal(Weights[..10_000], File.ReadAllBytes(Path.Combine(folder, "model.bin" + ModelDownloader.PartialSuffix)));
    }

    [Theory]
    [InlineData("""{"name": "../escape.bin", "url": "a", "sha256": "%H"}""", "\"name\"")]
    [InlineData("""{"name": "a.bin", "url": "https://elsewhere.example/a", "sha256": "%H"}""", "\"url\"")]
    [InlineData("""{"name": "a.bin", "url": "a", "sha256": "ABC"}""", "\"sha256\"")]
    [InlineData("""{"name": "a.bin", "url": "a", "sha256": "%H", "size": -1}""", "\"size\"")]
    public void InvalidManifestEntryIsNamed(string entry, string field)
    {
        var json = $$"""{"endpoint": "https://huggingface.co", "files": [{{entry.Replace("%H", Sha256(Vocab))}}]}""";
        var error = Assert.Throws<InvalidDataException>(() => ModelManifest.Parse(json, "test.json"));
        Assert.Contains("test.json: files[0]", error.Message);
        Assert.Contains(field, error.Message);
    }

    // No token and online, whatever the machine's environment says: these tests are about the transfer.
    private ModelDownloader Downloader(LoopbackHttpServer server, ModelManifest manifest) =>
        new(manifest, server.Endpoint, http, token: "", offline: false);

    internal static ModelManifest Manifest(params (string Name, byte[] Body)[] files) => Manifest(files, withSizes: true);

    internal static ModelManifest Manifest((string Name, byte[] Body)[] files, bool withSizes)
    {
        var entries = files.Select(f =>
            $$"""{"name": "{{f.Name}}", "url": "files/{{f.Name}}", "sha256": "{{Sha256(f.Body)}}", "size": {{(withSizes ? f.Body.Length.ToString() : "null")}}}""");
        // The endpoint here is never contacted: each test passes its server's endpoint to the downloader.
        return ModelManifest.Parse($$"""{"endpoint": "http://unused.invalid", "files": [{{string.Join(",", entries)}}]}""", "test manifest");
    }

    private static byte[] BodyFor(RecordedRequest request) => request.Path switch
    {
        "/files/model.bin" => Weights,
        "/files/vocab.txt" => Vocab,
        _ => throw new InvalidOperationException("unexpected path " + request.Path),
    };

    internal static byte[] RandomBytes(int length, int seed)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    internal static string Sha256(byte[] bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));

    /// <summary>Collects reports synchronously (Progress&lt;T&gt; would post them to the thread pool).</summary>
    private sealed class RecordingProgress : IProgress<DownloadProgress>
    {
        public List<DownloadProgress> Reports { get; } = [];
        public void Report(DownloadProgress value) => Reports.Add(value);
    }
}
