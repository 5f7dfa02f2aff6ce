using System.Net;
using System.Text.Json;
using ManagedClip.Cli;
using Microsoft.Extensions.DependencyInjection;

namespace ManagedClip.Tests.EndToEnd;

/// <summary>
/// The server's warm-up (<see cref="ServerWarmUp"/>): once the model is loaded it sends itself its first requests
/// through the real HTTP pipeline, and /readyz turns 200 only after them.
/// </summary>
public sealed class ServerWarmUpTests
{
    [Theory]
    [InlineData("http://0.0.0.0:9000", "http://127.0.0.1:9000/")]
    [InlineData("http://[::]:9000", "http://[::1]:9000/")]
    [InlineData("http://+:9000", "http://127.0.0.1:9000/")]
    [InlineData("http://*:9000", "http://127.0.0.1:9000/")]
    [InlineData("http://localhost:5000", "http://localhost:5000/")]
    public void WarmUpRequestsGoToLoopback(string listening, string expected) =>
        Assert.Equal(expected, ServerWarmUp.LoopbackAddress([listening])?.ToString());

    [Fact]
    public void AServerWithoutPlainHttpIsNotWarmed() =>
        Assert.Null(ServerWarmUp.LoopbackAddress(["https://127.0.0.1:5001"]));

    [Fact]
    public async Task ReadyzWaitsForTheWarmUpWhichGoesThroughTheModelRoutes()
    {
        using var release = new ManualResetEventSlim();
        var served = ServedModel.LoadInBackground(() =>
        {
            release.Wait(TimeSpan.FromSeconds(60));
            return TestModels.Tiny;
        });
        await using var app = ScoringServer.Build(served, new ServerOptions { Urls = "http://127.0.0.1:0", LogRequests = false, WarmUp = true });
        await app.StartAsync();
        using var client = new HttpClient { BaseAddress = new Uri(app.Urls.First()), Timeout = TimeSpan.FromSeconds(60) };
        var warmUp = app.Services.GetRequiredService<ServerWarmUp>();

        Assert.Equal(HttpStatusCode.ServiceUnavailable, (await client.GetAsync("/readyz")).StatusCode);
        await Task.Delay(200);
        Assert.False(warmUp.IsDone); // nothing to warm before the model is in

        release.Set();
        await warmUp.Done.WaitAsync(TimeSpan.FromSeconds(60));
        var ready = await client.GetAsync("/readyz");
        Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
        Assert.Equal("ready", JsonDocument.Parse(await ready.Content.ReadAsStringAsync()).RootElement.GetProperty("status").GetString());

        // The warm-up's /score and /classify went through the real pipeline and were answered 200 (the request
        // metrics are recorded as each answer completes, so they may trail the client by a moment: up to 10 s on a loaded machine).
        string metrics = "";
        for (int attempt = 0; attempt < 100 && !metrics.Contains("route=\"/classify\",status=\"200\""); attempt++)
        {
            await Task.Delay(100);
            metrics = await client.GetStringAsync("/metrics");
        }
        Assert.Contains("managedclip_server_requests_total{otel_scope_name=\"ManagedClip.Server\",route=\"/score\",status=\"200\"} 1", metrics);
        Assert.Contains("managedclip_server_requests_total{otel_scope_name=\"ManagedClip.Server\",route=\"/classify\",status=\"200\"} 1", metrics);
    }
}
