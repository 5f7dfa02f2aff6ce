using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;

namespace ManagedClip.IO.Distribution;

/// <summary>What happened to one manifest file.</summary>
/// <param name="File">The manifest entry.</param>
/// <param name="Path">Where the verified file now is.</param>
/// <param name="AlreadyComplete">True when a file with the right hash was already there and nothing was fetched.</param>
public sealed record DownloadResult(ModelFile File, string Path, bool AlreadyComplete);

/// <summary>
/// Downloads the files of a <see cref="ModelManifest"/> into a folder so that a file under its final name is
/// always complete and verified. Per file:
/// <list type="number">
/// <item>a final file whose SHA-256 already matches is kept and nothing is fetched;</item>
/// <item>otherwise the body goes to <c>&lt;name&gt;.partial</c>; a partial left by an interrupted run is resumed
/// with an HTTP <c>Range</c> request (a server that ignores the range restarts it from byte 0);</item>
/// <item>a transient failure (cut or refused connection, timeout, HTTP 5xx, 408, 429) is retried with exponential
/// backoff, or after the server's Retry-After, resuming from what the partial already holds;</item>
/// <item>the SHA-256 of the whole partial is checked; a match is renamed onto the final name (an atomic replace
/// within one folder), a mismatch deletes the partial and throws. A failure never touches the final file.</item>
/// </list>
/// Requests carry <c>Authorization: Bearer</c> when a token is known (<see cref="HubEnvironment.Token"/>); with
/// <c>HF_HUB_OFFLINE</c> set no request is made at all. Memory stays bounded: bodies stream through one fixed buffer.
/// </summary>
public sealed class ModelDownloader
{
    /// <summary>Environment variable that replaces the manifest's endpoint (a mirror); it wins over <c>HF_ENDPOINT</c>.</summary>
    public const string EndpointVariable = "MANAGEDCLIP_HF_ENDPOINT";

    /// <summary>Attempts per file before a transient failure is reported.</summary>
    public const int DefaultMaxAttempts = 5;

    /// <summary>Suffix of an unfinished download beside its final name.</summary>
    public const string PartialSuffix = ".partial";

    private const int BufferSize = 1 << 16;        // bytes per read and write
    private const long ProgressStep = 1 << 20;     // report at most once per MiB

    // HttpClient.Timeout covers only the wait for response headers here (bodies are read with
    // ResponseHeadersRead); a stalled body is caught by StallTimeout instead.
    private static readonly HttpClient SharedClient = new() { Timeout = TimeSpan.FromSeconds(100) };

    private readonly HttpClient http;

    /// <summary>The files this downloader fetches.</summary>
    public ModelManifest Manifest { get; }

    /// <summary>The server the manifest's relative URLs resolve against, without a trailing slash.</summary>
    public string Endpoint { get; }

    /// <summary>Longest wait for the next bytes of a body before the download counts as cut.</summary>
    internal TimeSpan StallTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Attempts per file for transient failures (the first one included).</summary>
    public int MaxAttempts { get; init; } = DefaultMaxAttempts;

    /// <summary>Wait before the first retry; each further retry waits twice as long, up to 32 times this.</summary>
    public TimeSpan RetryDelay { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Longest Retry-After honoured; a server asking for more is waited on for this long.</summary>
    internal TimeSpan MaxRetryAfter { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>True when no request may be made (<c>HF_HUB_OFFLINE</c>): only complete files already there count.</summary>
    public bool Offline { get; }

    private readonly string? token;
    /// <summary>Creates a downloader.</summary>
    /// <param name="manifest">Files to fetch; default <see cref="ModelManifest.Default"/> (the real BiomedCLIP files).</param>
    /// <param name="endpoint">Server to use; default <c>$MANAGEDCLIP_HF_ENDPOINT</c>, else <c>$HF_ENDPOINT</c>, else the
    /// manifest's endpoint (https://huggingface.co).</param>
    /// <param name="httpClient">Client to send requests with; default a shared client. Redirects (Hugging Face
    /// sends large files to a CDN) are followed by the client and keep the Range header; the client drops the
    /// Authorization header when a redirect leaves the endpoint's host.</param>
    /// <param name="token">Access token sent as <c>Authorization: Bearer</c>; null: <see cref="HubEnvironment.Token"/>;
    /// empty: none.</param>
    /// <param name="offline">Make no request; default <see cref="HubEnvironment.Offline"/>.</param>
    /// <exception cref="ArgumentException">The endpoint is not an absolute http(s) URL.</exception>
    public ModelDownloader(ModelManifest? manifest = null, string? endpoint = null, HttpClient? httpClient = null,
        string? token = null, bool? offline = null)
    {
        Manifest = manifest ?? ModelManifest.Default;
        var chosen = endpoint;
        if (string.IsNullOrWhiteSpace(chosen)) chosen = Environment.GetEnvironmentVariable(EndpointVariable);
        if (string.IsNullOrWhiteSpace(chosen)) chosen = HubEnvironment.Endpoint;
        if (string.IsNullOrWhiteSpace(chosen)) chosen = Manifest.Endpoint;
        if (!Uri.TryCreate(chosen, UriKind.Absolute, out var uri) || (uri.Scheme != "https" && uri.Scheme != "http"))
            throw new ArgumentException($"Endpoint must be an absolute http(s) URL, got \"{chosen}\".", nameof(endpoint));
        Endpoint = chosen.TrimEnd('/');
        http = httpClient ?? SharedClient;
        this.token = token is null ? HubEnvironment.Token : string.IsNullOrWhiteSpace(token) ? null : token.Trim();
        Offline = offline ?? HubEnvironment.Offline;
    }

    /// <summary>The full URL of a manifest file at this downloader's endpoint.</summary>
    public Uri UrlOf(ModelFile file) => new(Endpoint + "/" + file.Url);

    /// <summary>Downloads every manifest file, in manifest order, stopping at the first failure.</summary>
    /// <param name="targetDirectory">Folder to fill (created if missing); default <see cref="CachePaths.DownloadDirectory"/>.</param>
    /// <param name="progress">Receives <see cref="DownloadProgress"/> reports synchronously, in order.</param>
    /// <param name="cancellationToken">Cancels the download; a partial file is kept for a later resume.</param>
    /// <exception cref="ModelDownloadException">A file could not be fetched or did not verify.</exception>
    public async Task<IReadOnlyList<DownloadResult>> DownloadAllAsync(
        string? targetDirectory = null, IProgress<DownloadProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        var directory = Path.GetFullPath(targetDirectory ?? CachePaths.DownloadDirectory);
        var results = new List<DownloadResult>(Manifest.Files.Count);
        foreach (var file in Manifest.Files)
            results.Add(await DownloadFileAsync(file, directory, progress, cancellationToken).ConfigureAwait(false));
        return results;
    }

    /// <summary>Downloads one file into <paramref name="targetDirectory"/> (created if missing).</summary>
    /// <exception cref="ModelDownloadException">The file could not be fetched or did not verify.</exception>
    public async Task<DownloadResult> DownloadFileAsync(
        ModelFile file, string targetDirectory, IProgress<DownloadProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        Directory.CreateDirectory(targetDirectory);
        var finalPath = Path.Combine(targetDirectory, file.Name);
        var partialPath = finalPath + PartialSuffix;

        if (File.Exists(finalPath) && await HashFileAsync(finalPath, cancellationToken).ConfigureAwait(false) == file.Sha256)
        {
            var length = new FileInfo(finalPath).Length;
            progress?.Report(new DownloadProgress(file.Name, length, length));
            return new DownloadResult(file, finalPath, AlreadyComplete: true);
        }

        if (Offline)
            throw new ModelDownloadException(
                $"{file.Name}: not in {targetDirectory}, and {HubEnvironment.OfflineVariable} is set, so it is not downloaded.");

        for (int attempt = 1; ; attempt++)
        {
            string? rejection;
            try
            {
                rejection = await FillPartialAsync(file, partialPath, progress, cancellationToken).ConfigureAwait(false);
            }
            catch (ModelDownloadException e) when (e.IsTransient && attempt < MaxAttempts)
            {
                var wait = RetryWait(e, attempt);
                var kept = File.Exists(partialPath) ? new FileInfo(partialPath).Length : 0;
                // The message's advice to run the download again is what happens next anyway: show only the cause.
                var cause = e.Message;
                int advice = cause.IndexOf(" The partial download", StringComparison.Ordinal);
                if (advice > 0) cause = cause[..advice];
                progress?.Report(new DownloadProgress(file.Name, kept, file.Size,
                    $"{cause} Retrying in {wait.TotalSeconds:0.#} s (attempt {attempt + 1} of {MaxAttempts})."));
                await Task.Delay(wait, cancellationToken).ConfigureAwait(false);
                continue;
            }
            catch (ModelDownloadException e) when (e.IsTransient)
            {
                throw new ModelDownloadException($"{e.Message} Gave up after {attempt} attempts.", e.InnerException ?? e);
            }
            if (rejection is not null)
            {
                File.Delete(partialPath);
                var untouched = File.Exists(finalPath) ? $" The existing {file.Name} was left as it was." : "";
                throw new ModelDownloadException($"{rejection} The partial download was deleted.{untouched}");
            }
            File.Move(partialPath, finalPath, overwrite: true);
            return new DownloadResult(file, finalPath, AlreadyComplete: false);
        }
    }

    /// <summary>The server's Retry-After (capped), else exponential backoff: 1, 2, 4, … × <see cref="RetryDelay"/>, at most 32×.</summary>
    private TimeSpan RetryWait(ModelDownloadException failure, int attempt)
    {
        if (failure.RetryAfter is { } asked) return asked < TimeSpan.Zero ? TimeSpan.Zero : asked > MaxRetryAfter ? MaxRetryAfter : asked;
        return RetryDelay * (1 << Math.Min(attempt - 1, 5));
    }

    /// <summary>
    /// Brings <c>&lt;name&gt;.partial</c> to the complete, verified file. Returns null on success, else why the
    /// body was rejected (the caller deletes the partial); connection failures throw and keep the partial.
    /// </summary>
    private async Task<string?> FillPartialAsync(
        ModelFile file, string partialPath, IProgress<DownloadProgress>? progress, CancellationToken cancellationToken)
    {
        var partial = OpenPartial(file, partialPath);
        try
        {
            await using (partial)
            {
                try
                {
                    var actual = await FetchIntoAsync(partial, file, partialPath, progress, cancellationToken).ConfigureAwait(false);
                    if (actual != file.Sha256)
                        return $"{file.Name}: SHA-256 mismatch for {UrlOf(file)}: expected {file.Sha256}, got {actual}.";
                    // On disk before the rename, so a crash cannot leave a short file under the final name.
                    partial.Flush(flushToDisk: true);
                    return null;
                }
                catch (BodyRejectedException e)
                {
                    return e.Message;
                }
            }
        }
        catch
        {
            // Nothing to resume: do not leave an empty partial behind (e.g. after a 404).
            if (new FileInfo(partialPath) is { Exists: true, Length: 0 }) File.Delete(partialPath);
            throw;
        }
    }

    /// <summary>
    /// Completes <paramref name="partial"/> from the server and returns the SHA-256 (lower-case hex) of its whole
    /// content. Protocol failures that leave a resumable partial throw <see cref="ModelDownloadException"/>;
    /// bodies that cannot be the manifest's file throw <see cref="BodyRejectedException"/>.
    /// </summary>
    private async Task<string> FetchIntoAsync(
        FileStream partial, ModelFile file, string partialPath, IProgress<DownloadProgress>? progress, CancellationToken cancellationToken)
    {
        var url = UrlOf(file);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);

        long existing = partial.Length;
        if (file.Size is long size && existing > size) existing = Restart(partial, hash);
        // Hash what an earlier run left, so the whole file is hashed without reading the new part back.
        await AppendPrefixAsync(partial, existing, hash, cancellationToken).ConfigureAwait(false);
        if (existing > 0 && existing == file.Size) return Convert.ToHexStringLower(hash.GetHashAndReset());

        // At most two requests: the second one only after the server refused or misplaced our range.
        for (var attempt = 0; ; attempt++)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, url);
            if (existing > 0) request.Headers.Range = new RangeHeaderValue(existing, null);
            if (token is not null) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
            using var response = await SendAsync(request, file, partialPath, existing, cancellationToken).ConfigureAwait(false);

            long? serverTotal;
            switch (response.StatusCode)
            {
                case HttpStatusCode.RequestedRangeNotSatisfiable when existing > 0 && attempt == 0:
                    // The server's file is not longer than our partial: it cannot be a prefix of it.
                    existing = Restart(partial, hash);
                    continue;
                case HttpStatusCode.PartialContent when existing > 0:
                    var range = response.Content.Headers.ContentRange;
                    if (range?.From != existing)
                    {
                        if (attempt > 0) break;
                        existing = Restart(partial, hash);
                        continue;
                    }
                    serverTotal = range.Length;
                    return await CopyBodyAsync(response, partial, hash, existing, serverTotal, file, partialPath, progress, cancellationToken).ConfigureAwait(false);
                case HttpStatusCode.OK:
                    // A plain 200 is the whole file, even if we asked for a range: start the partial over.
                    if (existing > 0) existing = Restart(partial, hash);
                    serverTotal = response.Content.Headers.ContentLength;
                    return await CopyBodyAsync(response, partial, hash, existing, serverTotal, file, partialPath, progress, cancellationToken).ConfigureAwait(false);
            }
            var kept = partial.Length > 0 ? KeptNote(partialPath, partial.Length) : "";
            int status = (int)response.StatusCode;
            var hint = status is 401 or 403
                ? token is null ? $" The repository may need an access token: set {HubEnvironment.TokenVariable}." : $" Check that the token in {HubEnvironment.TokenVariable} grants access."
                : " Run the download again to retry.";
            throw new ModelDownloadException(
                $"{file.Name}: {url} answered HTTP {status} {response.ReasonPhrase ?? response.StatusCode.ToString()}.{hint}{kept}")
            {
                IsTransient = status is >= 500 or 408 or 429,
                RetryAfter = RetryAfterOf(response),
            };
        }
    }

    /// <summary>Streams the body onto the end of the partial, hashing as it goes; returns the whole file's hash.</summary>
    private async Task<string> CopyBodyAsync(
        HttpResponseMessage response, FileStream partial, IncrementalHash hash, long done, long? serverTotal,
        ModelFile file, string partialPath, IProgress<DownloadProgress>? progress, CancellationToken cancellationToken)
    {
        var url = UrlOf(file);
        if (file.Size is long size && serverTotal is long announced && announced != size)
            throw new BodyRejectedException($"{file.Name}: {url} serves {announced} bytes but the manifest expects {size}.");
        long? total = file.Size ?? serverTotal;

        var buffer = new byte[BufferSize];
        long lastReport = done;
        progress?.Report(new DownloadProgress(file.Name, done, total));

        await using var body = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        using var stall = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        while (true)
        {
            int read;
            try
            {
                stall.CancelAfter(StallTimeout);
                read = await body.ReadAsync(buffer, stall.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException e) when (!cancellationToken.IsCancellationRequested)
            {
                throw new ModelDownloadException(
                    $"{file.Name}: {url} sent nothing for {StallTimeout.TotalSeconds:0.#} s after {done} bytes." + KeptNote(partialPath, done), e)
                { IsTransient = true };
            }
            catch (Exception e) when (e is IOException or HttpRequestException)
            {
                throw new ModelDownloadException(
                    $"{file.Name}: the connection to {url} broke after {done} bytes ({e.Message})." + KeptNote(partialPath, done), e)
                { IsTransient = true };
            }
            if (read == 0) break;
            if (file.Size is long limit && done + read > limit)
                throw new BodyRejectedException($"{file.Name}: {url} sent more than the {limit} bytes the manifest expects.");

            await partial.WriteAsync(buffer.AsMemory(0, read), cancellationToken).ConfigureAwait(false);
            hash.AppendData(buffer, 0, read);
            done += read;
            if (done - lastReport >= ProgressStep)
            {
                progress?.Report(new DownloadProgress(file.Name, done, total));
                lastReport = done;
            }
        }
        progress?.Report(new DownloadProgress(file.Name, done, total));

        if (total is long expected && done < expected)
            throw new ModelDownloadException(
                $"{file.Name}: {url} closed the connection after {done} of {expected} bytes." + KeptNote(partialPath, done))
            { IsTransient = true };
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    private async Task<HttpResponseMessage> SendAsync(
        HttpRequestMessage request, ModelFile file, string partialPath, long partialLength, CancellationToken cancellationToken)
    {
        var kept = KeptNote(partialPath, partialLength);
        try
        {
            return await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException e) when (!cancellationToken.IsCancellationRequested)
        {
            throw new ModelDownloadException(
                $"{file.Name}: {request.RequestUri} did not answer within {http.Timeout.TotalSeconds:0.#} s." + kept, e)
            { IsTransient = true };
        }
        catch (HttpRequestException e)
        {
            // An unknown host will not appear by waiting (no network, or a wrong HF_ENDPOINT); a refused or reset
            // connection may.
            throw new ModelDownloadException($"{file.Name}: could not fetch {request.RequestUri} ({e.Message})." + kept, e)
            {
                IsTransient = e.HttpRequestError is not (HttpRequestError.NameResolutionError or HttpRequestError.SecureConnectionError
                    or HttpRequestError.ConfigurationLimitExceeded or HttpRequestError.UserAuthenticationError),
            };
        }
    }

    /// <summary>Retry-After as seconds or as an HTTP date, or null.</summary>
    private static TimeSpan? RetryAfterOf(HttpResponseMessage response) => response.Headers.RetryAfter switch
    {
        { Delta: { } delta } => delta,
        { Date: { } date } => date - DateTimeOffset.UtcNow,
        _ => null,
    };

    private static FileStream OpenPartial(ModelFile file, string partialPath)
    {
        try
        {
            // FileShare.None locks the partial, so two downloads into one folder cannot interleave their writes.
            return new FileStream(partialPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None,
                bufferSize: 0, FileOptions.Asynchronous);
        }
        catch (IOException e)
        {
            throw new ModelDownloadException(
                $"{file.Name}: cannot open {partialPath} ({e.Message}); is another download writing it?", e);
        }
    }

    /// <summary>Feeds the first <paramref name="length"/> bytes of the partial to the hash; leaves the position there.</summary>
    private static async Task AppendPrefixAsync(FileStream partial, long length, IncrementalHash hash, CancellationToken cancellationToken)
    {
        var buffer = new byte[BufferSize];
        partial.Position = 0;
        for (long remaining = length; remaining > 0;)
        {
            var read = await partial.ReadAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, remaining)), cancellationToken).ConfigureAwait(false);
            if (read == 0) throw new IOException($"{partial.Name} shrank while being read.");
            hash.AppendData(buffer, 0, read);
            remaining -= read;
        }
    }

    /// <summary>Empties the partial and the hash; returns the new length, 0.</summary>
    private static long Restart(FileStream partial, IncrementalHash hash)
    {
        partial.SetLength(0);
        partial.Position = 0;
        hash.GetHashAndReset();
        return 0;
    }

    private static async Task<string> HashFileAsync(string path, CancellationToken cancellationToken)
    {
        await using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, BufferSize, FileOptions.Asynchronous);
        return Convert.ToHexStringLower(await SHA256.HashDataAsync(stream, cancellationToken).ConfigureAwait(false));
    }

    private static string KeptNote(string partialPath, long length) => length > 0
        ? $" The partial download {partialPath} ({length} bytes) was kept; run the download again to resume it."
        : " Run the download again to retry.";

    /// <summary>The server's body cannot be the manifest's file: the partial must be deleted, not resumed.</summary>
    private sealed class BodyRejectedException(string message) : Exception(message);
}
