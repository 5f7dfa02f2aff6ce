using System.Text;
using ManagedClip.Imaging;

namespace ManagedClip.Cli;

/// <summary>
/// The server's first requests, sent to itself before <c>/readyz</c> says ready. The first request down any path
/// compiles that path's methods (Kestrel's body reading, the JSON and form readers, the health reply, image decoding,
/// both towers), and a load balancer's probe that arrives meanwhile waits for the compiler on a small machine
/// (measured in docs/benchmarks/healthz-2026-12-06.md). So once the model is loaded the server sends itself <c>/healthz</c>, <c>/readyz</c>, a small
/// <c>/score</c> and a small <c>/classify</c> over loopback, the way a client would, and only then reports ready.
/// The warm-up requests appear in the request log and metrics like any other. A warm-up that fails is logged and
/// does not stop the server (it would only be slower to answer first).
/// </summary>
internal sealed class ServerWarmUp
{
    private readonly TaskCompletionSource done = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completes when the warm-up has run (or was skipped, or failed: the server is ready either way).</summary>
    public Task Done => done.Task;

    /// <summary>True once <see cref="Done"/> has completed.</summary>
    public bool IsDone => done.Task.IsCompleted;

    /// <summary>A warm-up that has nothing to do (servers built without one).</summary>
    public static ServerWarmUp None()
    {
        var warmUp = new ServerWarmUp();
        warmUp.done.SetResult();
        return warmUp;
    }

    /// <summary>Starts the warm-up once the app listens and the model is loaded.</summary>
    public void Start(WebApplication app, ServedModel served, long maxRequestBytes)
    {
        _ = Task.Run(async () =>
        {
            try
            {
                await served.Loaded.ConfigureAwait(false);
                if (LoopbackAddress(app.Urls) is { } address) await SendAsync(address, maxRequestBytes, app.Lifetime.ApplicationStopping).ConfigureAwait(false);
            }
            catch (Exception e) when (!served.Loaded.IsFaulted)
            {
                app.Logger.LogWarning("warm-up request failed (the server serves anyway; its first requests may be slower): {Reason}",
                    UserText.OneLine(e.Message));
            }
            catch
            {
                // The load failed: /readyz reports that; there is nothing to warm.
            }
            finally
            {
                done.TrySetResult();
            }
        });
    }

    /// <summary>The first plain-HTTP address, with a wildcard host replaced by loopback; null when there is none.</summary>
    internal static Uri? LoopbackAddress(IEnumerable<string> urls)
    {
        foreach (var url in urls)
        {
            if (!url.StartsWith("http://", StringComparison.OrdinalIgnoreCase)) continue;
            var address = url.Replace("://0.0.0.0:", "://127.0.0.1:").Replace("://[::]:", "://[::1]:")
                .Replace("://+:", "://127.0.0.1:").Replace("://*:", "://127.0.0.1:");
            if (Uri.TryCreate(address, UriKind.Absolute, out var uri)) return uri;
        }
        return null;
    }

    private static async Task SendAsync(Uri address, long maxRequestBytes, CancellationToken cancel)
    {
        using var client = new HttpClient { BaseAddress = address, Timeout = TimeSpan.FromMinutes(2) };
        (await client.GetAsync("/healthz", cancel).ConfigureAwait(false)).EnsureSuccessStatusCode();
        (await client.GetAsync("/readyz", cancel).ConfigureAwait(false)).Dispose(); // 503 "warming" until this ends
        byte[] png = SmallPng();
        // Padded with up to 1 MB of JSON whitespace (half the body limit at most): a body that arrives in many reads
        // takes Kestrel's asynchronous body path, as a real multi-megabyte image does; a small one arrives whole and
        // leaves that path cold.
        string score = "{\"input_data\":{\"columns\":[\"image\",\"text\"],\"index\":[0],\"data\":[[\"" + Convert.ToBase64String(png) + "\",\"warm, up\"]]}}"
                       + new string(' ', (int)Math.Min(1 << 20, maxRequestBytes / 2));
        using (var json = new StringContent(score, Encoding.UTF8, "application/json"))
            (await client.PostAsync("/score", json, cancel).ConfigureAwait(false)).EnsureSuccessStatusCode();
        // Two images: the several-image path (each image alone, ClipModel.ClassifyEach); /score's one row took the
        // one-image path.
        using var form = new MultipartFormDataContent
        {
            { new ByteArrayContent(png), "image", "warm-up.png" },
            { new ByteArrayContent(png), "image", "warm-up-2.png" },
            { new StringContent("warm, up"), "labels" },
        };
        (await client.PostAsync("/classify", form, cancel).ConfigureAwait(false)).EnsureSuccessStatusCode();
    }

    /// <summary>A 32×32 RGB gradient as PNG: big enough to go through resize and crop, small enough to cost nothing.</summary>
    private static byte[] SmallPng()
    {
        const int Side = 32;
        var rgb = new byte[Side * Side * 3];
        for (int y = 0; y < Side; y++)
            for (int x = 0; x < Side; x++)
            {
                int i = (y * Side + x) * 3;
                rgb[i] = (byte)(x * 8);
                rgb[i + 1] = (byte)(y * 8);
                rgb[i + 2] = 128;
            }
        return PngWriter.EncodeRgb(rgb, Side, Side);
    }
}
