using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats.Png;
using SixLabors.ImageSharp.PixelFormats;
using Xunit.Abstractions;

namespace ManagedClip.Tests.EndToEnd;

/// <summary>
/// The real <c>managedclip serve</c> process under a burst of 16 concurrent requests (loopback only, bounded in
/// count and time), with <c>/healthz</c> polled throughout: every request is answered, liveness does not wait for
/// the model, and the process gives back what the burst took (RSS within 1.3× of its steady size). Two bursts: the
/// first right after /readyz turns 200 (a fresh server), the second after the idle trim (the steady state).
/// The latency bounds here are deliberately generous (this VM is shared and its speed drifts); the &lt; 50 ms claim is
/// measured by tools/healthz-probe.sh and reported in docs/benchmarks/healthz-2026-12-06.md.
/// </summary>
public sealed class ServerLoadTests(ITestOutputHelper output)
{
    private const int Burst = 16;

    [Fact]
    public async Task BurstOfSixteenIsServedWhileHealthStaysFastAndMemoryComesBack()
    {
        if (!OperatingSystem.IsLinux()) return; // RSS is read from /proc
        int port;
        using (var probe = new TcpListener(IPAddress.Loopback, 0))
        {
            probe.Start();
            port = ((IPEndPoint)probe.LocalEndpoint).Port;
        }
        var cli = Path.Combine(AppContext.BaseDirectory, "ManagedClip.Cli.dll");
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { cli, "serve", "--model", TestModels.TinyDirectory, "--urls", $"http://127.0.0.1:{port}" }) start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        // Drained, so the request log (a line per request and poll) can never fill the pipe and stall the server.
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            using var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(120) };
            // Ready means the model is loaded and the server has sent itself its warm-up requests.
            for (int attempt = 0; attempt < 240; attempt++)
            {
                try { if ((await client.GetAsync("/readyz")).IsSuccessStatusCode) break; }
                catch (HttpRequestException) { }
                Assert.False(process.HasExited, "serve exited");
                await Task.Delay(250);
            }
            Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/readyz")).StatusCode);

            var body = ScoreRequest(NoisePng(1024, 1024));
            // The first burst meets the server as a fresh pod does (first use of every path); the second, after the
            // idle trim, is the steady state the memory bound is stated for.
            var first = await BurstAsync(client, body);
            output.WriteLine($"first burst: {first.Health}");
            await Task.Delay(TimeSpan.FromSeconds(4)); // past the idle trim
            long steady = RssMegabytes(process.Id);
            var second = await BurstAsync(client, body, () => RssMegabytes(process.Id));
            await Task.Delay(TimeSpan.FromSeconds(5));
            long after = RssMegabytes(process.Id);
            output.WriteLine($"second burst: {second.Health}; RSS steady {steady} MB, peak {second.PeakRss} MB, after {after} MB ({(double)after / steady:F2}x)");
            Assert.True(after <= 1.3 * steady, $"RSS after the burst {after} MB > 1.3 x steady {steady} MB");

            foreach (var (name, burst) in new[] { ("first", first), ("second", second) })
            {
                Assert.All(burst.Codes, c => Assert.Equal(HttpStatusCode.OK, c)); // 16 fit the default queue of 16
                Assert.True(burst.Health.Failures.Count == 0, $"{name} burst: /healthz failed: {string.Join("; ", burst.Health.Failures)}");
                // Every poll must answer within PollTimeout (no liveness failure); p95 < 500 ms is 10x the 50 ms target,
                // loose enough for this shared two-core VM at load average 30 (measured p95 there: 25-57 ms), tight
                // enough to fail if /healthz queues behind model work (each /score holds the model for 0.3-1 s).
                Assert.True(burst.Health.P95 < 500, $"{name} burst: /healthz p95 {burst.Health.P95:F1} ms while the model was busy");
            }
        }
        finally
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
        }
    }

    /// <summary>How long one /healthz poll may take before it counts as failed (a liveness probe's usual timeout is 1-10 s).</summary>
    private static readonly TimeSpan PollTimeout = TimeSpan.FromSeconds(5);

    private sealed record HealthPolls(List<double> Milliseconds, List<string> Failures)
    {
        public double P95 => Milliseconds.Count == 0 ? double.NaN : Milliseconds.Order().ElementAt((int)(Milliseconds.Count * 0.95));

        public override string ToString()
        {
            var sorted = Milliseconds.Order().ToList();
            return sorted.Count == 0 ? $"/healthz no polls, {Failures.Count} failed"
                : $"/healthz n={sorted.Count} median {sorted[sorted.Count / 2]:F1} ms, p95 {P95:F1} ms, max {sorted[^1]:F1} ms, failed {Failures.Count}";
        }
    }

    private sealed record BurstResult(List<HttpStatusCode> Codes, HealthPolls Health, long PeakRss);

    /// <summary>Sixteen concurrent /score requests while a separate client polls /healthz every 50 ms.</summary>
    private static async Task<BurstResult> BurstAsync(HttpClient client, string body, Func<long>? rss = null)
    {
        using var poll = new HttpClient { BaseAddress = client.BaseAddress, Timeout = PollTimeout };
        var health = new HealthPolls([], []);
        using var stop = new CancellationTokenSource();
        var poller = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                var clock = Stopwatch.StartNew();
                try
                {
                    using var reply = await poll.GetAsync("/healthz");
                    if (reply.StatusCode != HttpStatusCode.OK) lock (health) health.Failures.Add($"status {(int)reply.StatusCode}");
                    else lock (health) health.Milliseconds.Add(clock.Elapsed.TotalMilliseconds);
                }
                catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
                {
                    lock (health) health.Failures.Add($"{e.GetType().Name} after {clock.Elapsed.TotalMilliseconds:F0} ms");
                }
                await Task.Delay(50);
            }
        });
        long peak = 0;
        var burst = Enumerable.Range(0, Burst)
            .Select(_ => client.PostAsync("/score", new StringContent(body, Encoding.UTF8, "application/json"))).ToList();
        while (!burst.All(t => t.IsCompleted))
        {
            if (rss != null) peak = Math.Max(peak, rss());
            await Task.Delay(50);
        }
        stop.Cancel();
        await poller;
        return new BurstResult(burst.Select(t => t.Result.StatusCode).ToList(), health, peak);
    }

    private static long RssMegabytes(int pid)
    {
        foreach (var line in File.ReadLines($"/proc/{pid}/status"))
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) / 1024;
        return 0;
    }

    private static string ScoreRequest(byte[] image) => JsonSerializer.Serialize(new
    {
        input_data = new { columns = new[] { "image", "text" }, index = new[] { 0 }, data = new[] { new[] { Convert.ToBase64String(image), "brain MRI, chest X-ray, bone X-ray" } } },
    });

    private static byte[] NoisePng(int width, int height)
    {
        var pixels = new byte[width * height * 3];
        new Random(7).NextBytes(pixels);
        using var image = Image.LoadPixelData<Rgb24>(pixels, width, height);
        var stream = new MemoryStream();
        image.Save(stream, new PngEncoder());
        return stream.ToArray();
    }
}
