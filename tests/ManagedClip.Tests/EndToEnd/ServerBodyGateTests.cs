using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using ManagedClip.Cli;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace ManagedClip.Tests.EndToEnd;

/// <summary>
/// The server's bounded body reading (<see cref="RequestBodyGate"/>, issue #14): a client that stops sending its body
/// cannot hold a slot (408 after the per-read deadline, the slot freed, the connection closed) nor block the others;
/// a burst larger than the slots is still answered in full, each request with its own image's result; and a pooled
/// buffer never carries one request's bytes into another's parse. Loopback only; every wait is bounded.
/// </summary>
public sealed class ServerBodyGateTests
{
    private static string Base64Of(string name) => Convert.ToBase64String(File.ReadAllBytes(TestData.PathOf("images", name + ".png")));

    /// <summary>A model card request padded with JSON whitespace to at least <paramref name="bytes"/> (pooled sizes).</summary>
    private static string ScoreRequest(string image, string labels, int bytes = 0)
    {
        string json = JsonSerializer.Serialize(new { input_data = new { columns = new[] { "image", "text" }, data = new[] { new[] { image, labels } } } });
        return json.Length >= bytes ? json : json + new string(' ', bytes - json.Length);
    }

    private static async Task<(WebApplication App, HttpClient Client, RequestBodyGate Gate)> StartAsync(int slots, TimeSpan readTimeout)
    {
        var app = ScoringServer.Build(ServedModel.Ready(TestModels.Tiny), new ServerOptions
        {
            Urls = "http://127.0.0.1:0", LogRequests = false, BodySlots = slots, BodyReadTimeout = readTimeout,
        });
        await app.StartAsync();
        var client = new HttpClient { BaseAddress = new Uri(app.Urls.First()), Timeout = TimeSpan.FromSeconds(90) };
        return (app, client, app.Services.GetRequiredService<RequestBodyGate>());
    }

    /// <summary>
    /// Opens a connection and sends a request's headers with <paramref name="declaredLength"/>, then only
    /// <paramref name="sent"/> of the body, and stops (as a stalled or malicious client does).
    /// </summary>
    private static async Task<Socket> SendPartOfABodyAsync(Uri server, string path, string contentType, long declaredLength, byte[] sent)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(IPAddress.Loopback, server.Port);
        var head = $"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {contentType}\r\nContent-Length: {declaredLength}\r\n\r\n";
        await socket.SendAsync(Encoding.ASCII.GetBytes(head));
        await socket.SendAsync(sent);
        return socket;
    }

    /// <summary>Everything the server sends until it closes the connection (at most 30 s).</summary>
    private static async Task<string> ReadUntilClosedAsync(Socket socket)
    {
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var reply = new MemoryStream();
        var buffer = new byte[4096];
        int read;
        while ((read = await socket.ReceiveAsync(buffer, SocketFlags.None, deadline.Token)) > 0) reply.Write(buffer, 0, read);
        return Encoding.UTF8.GetString(reply.ToArray());
    }

    /// <summary>A 200 /score reply whose one row has the reference probabilities of <paramref name="expected"/>.</summary>
    private static async Task AssertProbabilities(string what, float[] expected, HttpResponseMessage response)
    {
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var probs = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement[0].GetProperty("probs");
        // 1e-4: the tolerance ServerTests uses for the same model-card replies (float32 reference, JSON round trip).
        TensorAssert.Close(what, expected, probs.EnumerateArray().Select(e => e.GetSingle()).ToArray(), 1e-4, 0);
    }

    private static async Task WaitUntil(Func<bool> condition, string what)
    {
        for (int i = 0; i < 400 && !condition(); i++) await Task.Delay(25);
        Assert.True(condition(), $"timed out waiting until {what}");
    }

    [Theory]
    [InlineData("/score", "application/json")]
    [InlineData("/classify", "multipart/form-data; boundary=XyZ")]
    public async Task AStalledBodyIsAnswered408AndItsSlotFreed(string path, string contentType)
    {
        // One slot and a 1 s deadline: the healthy request below can only be served once the stalled one lets go.
        var (app, client, gate) = await StartAsync(slots: 1, readTimeout: TimeSpan.FromSeconds(1));
        await using var _ = app;
        using var __ = client;
        byte[] start = path == "/score" ? "{\"input_data\": {\"columns\": [\"image\", \"text\"], \"data\": [[\""u8.ToArray()
            : "--XyZ\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.png\"\r\n\r\n\u0089PNG"u8.ToArray();
        using var stalled = await SendPartOfABodyAsync(new Uri(app.Urls.First()), path, contentType, 200_000, start);
        await WaitUntil(() => gate.Busy == 1, "the stalled request holds the body slot");

        var healthy = client.PostAsync("/score", new StringContent(ScoreRequest(Base64Of("cell"), "a, b"), Encoding.UTF8, "application/json"));
        // Liveness does not wait for bodies at all.
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/healthz")).StatusCode);

        string reply = await ReadUntilClosedAsync(stalled); // the server closes the connection after answering
        Assert.StartsWith("HTTP/1.1 408", reply);
        Assert.Contains("Connection: close", reply);
        // The JSON error, whether sent with a length or in one chunk.
        string error = JsonDocument.Parse(reply[reply.IndexOf('{')..(reply.LastIndexOf('}') + 1)]).RootElement.GetProperty("error").GetString()!;
        Assert.Contains("stopped arriving", error);
        Assert.Contains($"after {start.Length} of 200000 bytes", error);

        Assert.Equal(HttpStatusCode.OK, (await healthy).StatusCode);
        await WaitUntil(() => gate.Busy == 0, "every slot is free again");
    }

    [Fact]
    public async Task AStalledBodyDoesNotBlockOtherRequests()
    {
        // Two slots and a deadline far beyond the test: the stalled client keeps its slot throughout, and the other
        // requests are served through the second one meanwhile.
        var (app, client, gate) = await StartAsync(slots: 2, readTimeout: TimeSpan.FromMinutes(5));
        await using var _ = app;
        using var __ = client;
        using var stalled = await SendPartOfABodyAsync(new Uri(app.Urls.First()), "/score", "application/json", 500_000, "{\"input_data\": "u8.ToArray());
        await WaitUntil(() => gate.Busy == 1, "the stalled request holds a body slot");

        var (labels, expected) = CliRunner.TinyZeroShot("histopathology");
        for (int i = 0; i < 3; i++)
        {
            var response = await client.PostAsync("/score", new StringContent(ScoreRequest(Base64Of("cell"), string.Join(", ", labels)), Encoding.UTF8, "application/json"));
            await AssertProbabilities("cell", expected["cell"], response);
        }
        Assert.Equal(1, gate.Busy); // still held by the stalled client, which has had no answer
        Assert.Equal(0, stalled.Available);
    }

    [Fact]
    public async Task ABurstLargerThanTheSlotsIsAnsweredInFullEachWithItsOwnImage()
    {
        // One slot: sixteen requests of different sizes pass through one body slot and share pooled buffers; each
        // answer must still be its own image's (a buffer mixed up between requests would give another image's
        // probabilities, or a parse error).
        var (app, client, gate) = await StartAsync(slots: 1, readTimeout: TimeSpan.FromSeconds(30));
        await using var _ = app;
        using var __ = client;
        var (labels, expected) = CliRunner.TinyZeroShot("radiology");
        string[] names = ["ihc", "gray", "ct_small", "mr_small", "large", "wide", "rgba", "palette"];
        var requests = Enumerable.Range(0, 16).Select(i => names[i % names.Length]).ToList();
        var responses = await Task.WhenAll(requests.Select((name, i) => client.PostAsync("/score", new StringContent(
            ScoreRequest(Base64Of(name), string.Join(", ", labels), bytes: 100_000 + 150_000 * i), Encoding.UTF8, "application/json"))));
        for (int i = 0; i < responses.Length; i++)
            await AssertProbabilities($"request {i} ({requests[i]})", expected[requests[i]], responses[i]);
        Assert.InRange(gate.Kept, 1, gate.Slots); // the pool was used, and is bounded by the slots
    }

    [Fact]
    public async Task AShortBodyAfterALongOneParsesOnlyItsOwnBytes()
    {
        // One slot, so the pool keeps one buffer: the 4 MB one the long request used is the one the short request
        // (about 106 kB, also pooled) is handed next.
        var (app, client, gate) = await StartAsync(slots: 1, readTimeout: TimeSpan.FromSeconds(30));
        await using var _ = app;
        using var __ = client;
        var (labels, expected) = CliRunner.TinyZeroShot("histopathology");
        string joined = string.Join(", ", labels);
        var longReply = await client.PostAsync("/score", new StringContent(ScoreRequest(Base64Of("large"), joined, bytes: 4_000_000), Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.OK, longReply.StatusCode);
        Assert.Equal(1, gate.Kept);

        var shortReply = await client.PostAsync("/score", new StringContent(ScoreRequest(Base64Of("cell"), joined), Encoding.UTF8, "application/json"));
        await AssertProbabilities("cell after large", expected["cell"], shortReply);

        // A short malformed body after the long one is judged on its own bytes: the error is where it ends.
        string cut = "{\"input_data\": {\"columns\": [\"image\"" + new string(' ', 70_000);
        var malformed = await client.PostAsync("/score", new StringContent(cut, Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, malformed.StatusCode);
        Assert.Contains("malformed JSON", await malformed.Content.ReadAsStringAsync());
    }
}

/// <summary>The body buffer pool on its own: cleared, bounded, emptied when idle.</summary>
public sealed class RequestBodyGateTests
{
    [Fact]
    public void ABufferComesBackClearedAndThePoolIsBoundedAndTrimmed()
    {
        using var gate = new RequestBodyGate(slots: 2, TimeSpan.FromSeconds(1));
        var first = gate.Rent(3_000_000);
        Assert.True(first.Length >= 3_000_000);
        first.AsSpan().Fill(0xAB);
        gate.Return(first, first.Length);

        var again = gate.Rent(100_000); // smaller: handed the kept buffer, with nothing of the last body in it
        Assert.Same(first, again);
        Assert.True(again.AsSpan().IndexOfAnyExcept((byte)0) < 0, "a reused buffer still holds the previous body's bytes");

        var small = gate.Rent(1_000); // small bodies are not pooled
        gate.Return(small, small.Length);
        Assert.Equal(0, gate.Kept);

        for (int i = 0; i < 5; i++) gate.Return(new byte[(i + 1) << 20], 10);
        Assert.Equal(2, gate.Kept); // never more than the slots
        Assert.True(gate.Rent(4 << 20).Length >= 4 << 20);
        gate.Trim();
        Assert.Equal(0, gate.Kept);
    }
}
