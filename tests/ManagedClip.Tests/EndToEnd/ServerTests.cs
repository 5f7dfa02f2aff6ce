using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using ManagedClip.Cli;
using Microsoft.AspNetCore.Builder;

namespace ManagedClip.Tests.EndToEnd;

/// <summary>
/// The scoring endpoint on a loopback port with the tiny model: model-card requests, concurrency, bad requests.
/// Every request goes to 127.0.0.1 only, and each loop is bounded.
/// </summary>
public sealed class ServerTests : IAsyncLifetime
{
    private WebApplication? app;
    private HttpClient client = new();

    public async Task InitializeAsync()
    {
        app = ScoringServer.Build(TestModels.Tiny, "http://127.0.0.1:0", ScoringServer.DefaultMaxRequestBytes);
        await app.StartAsync();
        client = new HttpClient { BaseAddress = new Uri(app.Urls.First()), Timeout = TimeSpan.FromSeconds(60) };
    }

    public async Task DisposeAsync()
    {
        client.Dispose();
        if (app != null) await app.DisposeAsync();
    }

    private static string ModelCardRequest(params (string Image, string Labels)[] rows) => JsonSerializer.Serialize(new
    {
        input_data = new
        {
            columns = new[] { "image", "text" },
            index = Enumerable.Range(0, rows.Length).ToArray(),
            data = rows.Select(r => new[] { r.Image, r.Labels }).ToArray(),
        },
    });

    private static string Base64Of(string name) => Convert.ToBase64String(File.ReadAllBytes(TestData.PathOf("images", name + ".png")));

    private Task<HttpResponseMessage> PostScore(string body) =>
        client.PostAsync("/score", new StringContent(body, Encoding.UTF8, "application/json"));

    [Fact]
    public async Task ScoreAnswersModelCardRequestsLikeTheReference()
    {
        var (labels, expected) = CliRunner.TinyZeroShot("histopathology");
        var response = await PostScore(ModelCardRequest((Base64Of("ihc"), string.Join(", ", labels)),
            ("data:image/png;base64," + Base64Of("cell"), string.Join(", ", labels))));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var rows = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.EnumerateArray().ToList();
        Assert.Equal(2, rows.Count);
        string[] names = ["ihc", "cell"];
        for (int i = 0; i < 2; i++)
        {
            Assert.Equal(labels, rows[i].GetProperty("labels").EnumerateArray().Select(e => e.GetString()!));
            TensorAssert.Close($"row {i}", expected[names[i]],
                rows[i].GetProperty("probs").EnumerateArray().Select(e => e.GetSingle()).ToArray(), 1e-4, 0);
        }
    }

    [Fact]
    public async Task ConcurrentRequestsAreServedByOneModel()
    {
        var (labels, expected) = CliRunner.TinyZeroShot("radiology");
        string[] names = ["ihc", "gray", "ct_small", "mr_small", "large", "wide", "rgba", "palette"];
        var responses = await Task.WhenAll(names.Select(n => PostScore(ModelCardRequest((Base64Of(n), string.Join(", ", labels))))));
        for (int i = 0; i < names.Length; i++)
        {
            Assert.Equal(HttpStatusCode.OK, responses[i].StatusCode);
            var row = JsonDocument.Parse(await responses[i].Content.ReadAsStringAsync()).RootElement[0];
            TensorAssert.Close(names[i], expected[names[i]],
                row.GetProperty("probs").EnumerateArray().Select(e => e.GetSingle()).ToArray(), 1e-4, 0);
        }
    }

    [Theory]
    [InlineData("{\"input_data\": {\"columns\": [\"image\", \"text\"], \"data\": [[\"", 400, "malformed JSON")]
    [InlineData("{\"inputs\": []}", 400, "input_data")]
    [InlineData("{\"input_data\": {\"columns\": [\"image\", \"text\"], \"data\": []}}", 400, "no rows")]
    [InlineData("{\"input_data\": {\"columns\": [\"image\", \"text\"], \"data\": [[\"IMAGE\", \"\"]]}}", 400, "label list is empty")]
    [InlineData("{\"input_data\": {\"columns\": [\"image\", \"text\"], \"data\": [[\"/etc/hostname\", \"a, b\"]]}}", 400, "does not read file paths")]
    [InlineData("{\"input_data\": {\"columns\": [\"image\", \"text\"], \"data\": [[\"bm90IGFuIGltYWdlIGF0IGFsbCwganVzdCB0ZXh0\", \"a, b\"]]}}", 400, "row 0 image")]
    [InlineData("{\"input_data\": {\"columns\": [\"image\", \"text\"], \"data\": [[\"IMAGE\", 7]]}}", 400, "text must be a string")]
    public async Task BadRequestsGetA4xxWithAClearMessageAndTheServerKeepsWorking(string template, int status, string message)
    {
        var response = await PostScore(template.Replace("IMAGE", Base64Of("tiny")));
        Assert.Equal(status, (int)response.StatusCode);
        var error = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("error").GetString();
        Assert.Contains(message, error);

        var healthy = await client.GetAsync("/healthz");
        Assert.Equal(HttpStatusCode.OK, healthy.StatusCode);
        var ok = await PostScore(ModelCardRequest((Base64Of("tiny"), "a, b")));
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
    }

    [Fact]
    public async Task A50MegabyteBodyIsRefusedWith413()
    {
        var body = new ByteArrayContent(new byte[50 << 20]);
        body.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        // As curl does for large bodies: ask first, so the server can refuse before 50 MB cross the wire.
        using var request = new HttpRequestMessage(HttpMethod.Post, "/score") { Content = body };
        request.Headers.ExpectContinue = true;
        var response = await client.SendAsync(request);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        Assert.Contains("limit", await response.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/healthz")).StatusCode);
    }

    [Fact]
    public async Task ClassifyTakesAMultipartImageAndLabels()
    {
        var (labels, expected) = CliRunner.TinyZeroShot("histopathology");
        using var form = new MultipartFormDataContent
        {
            { new ByteArrayContent(File.ReadAllBytes(TestData.PathOf("images", "wide.png"))), "image", "wide.png" },
            { new StringContent(string.Join(", ", labels)), "labels" },
        };
        var response = await client.PostAsync("/classify", form);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal("wide.png", json.GetProperty("image").GetString());
        TensorAssert.Close("wide", expected["wide"], json.GetProperty("probs").EnumerateArray().Select(e => e.GetSingle()).ToArray(), 1e-4, 0);

        using var noImage = new MultipartFormDataContent { { new StringContent("a, b"), "labels" } };
        var missing = await client.PostAsync("/classify", noImage);
        Assert.Equal(HttpStatusCode.BadRequest, missing.StatusCode);
        Assert.Contains("'image'", await missing.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task HealthReportsTheModel()
    {
        var json = JsonDocument.Parse(await client.GetStringAsync("/healthz")).RootElement;
        Assert.Equal("ok", json.GetProperty("status").GetString());
        Assert.Equal(32, json.GetProperty("embeddingSize").GetInt32());
    }
}

/// <summary>The real <c>managedclip serve</c> process, started the way a user starts it.</summary>
public sealed class ServeProcessTests
{
    [Fact]
    public async Task ServeCommandStartsAnswersAndStops()
    {
        int port;
        using (var probe = new TcpListener(IPAddress.Loopback, 0))
        {
            probe.Start();
            port = ((IPEndPoint)probe.LocalEndpoint).Port;
        }
        var cli = Path.Combine(AppContext.BaseDirectory, "ManagedClip.Cli.dll");
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        // No --urls or --port: the address comes from ASPNETCORE_URLS, as for any ASP.NET Core app.
        foreach (var a in new[] { cli, "serve", "--model", TestModels.TinyDirectory }) start.ArgumentList.Add(a);
        start.Environment["ASPNETCORE_URLS"] = $"http://127.0.0.1:{port}";
        using var process = Process.Start(start)!;
        var log = new List<string>();
        process.ErrorDataReceived += (_, e) => { if (e.Data != null) lock (log) log.Add(e.Data); };
        process.BeginErrorReadLine();
        try
        {
            using var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(30) };
            // Wait (bounded: 60 × 0.5 s) for the server to come up.
            HttpResponseMessage? health = null;
            for (int attempt = 0; attempt < 60 && health == null; attempt++)
            {
                try { health = await client.GetAsync("/healthz"); }
                catch (HttpRequestException) { await Task.Delay(500); }
                if (process.HasExited) Assert.Fail("serve exited: " + string.Join("\n", log));
            }
            Assert.NotNull(health);
            Assert.Equal(HttpStatusCode.OK, health!.StatusCode);

            var request = JsonSerializer.Serialize(new { input_data = new { columns = new[] { "image", "text" }, index = new[] { 0 },
                data = new[] { new[] { Convert.ToBase64String(File.ReadAllBytes(TestData.PathOf("images", "mr_small.png"))), "brain MRI, chest X-ray" } } } });
            var response = await client.PostAsync("/score", new StringContent(request, Encoding.UTF8, "application/json"));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            var probs = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement[0].GetProperty("probs");
            Assert.Equal(1.0, probs.EnumerateArray().Sum(p => p.GetDouble()), 5);

            // One log line for the request on stderr: method, path, status, duration, bytes, client; no image bytes
            // (the console logger writes on its own thread, so wait for it briefly).
            string? line = null;
            for (int attempt = 0; attempt < 50 && line == null; attempt++)
            {
                lock (log) line = log.FirstOrDefault(l => l.Contains("POST /score "));
                if (line == null) await Task.Delay(100);
            }
            Assert.NotNull(line);
            Assert.Matches(@"POST /score 200 \d+\.\d ms in=\d+ out=\d+ client=127\.0\.0\.1 rows=1$", line);
            Assert.DoesNotContain(Convert.ToBase64String(File.ReadAllBytes(TestData.PathOf("images", "mr_small.png")))[..16], line);
        }
        finally
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
        }
    }
}

/// <summary>The server's answers to client mistakes and to more requests than its queue admits (issue #14).</summary>
public sealed class ServerLimitTests : IAsyncLifetime
{
    private WebApplication? app;
    private HttpClient client = new();

    public async Task InitializeAsync()
    {
        app = ScoringServer.Build(TestModels.Tiny, "http://127.0.0.1:0", ScoringServer.DefaultMaxRequestBytes, queueCapacity: 2);
        await app.StartAsync();
        client = new HttpClient { BaseAddress = new Uri(app.Urls.First()), Timeout = TimeSpan.FromSeconds(120) };
    }

    public async Task DisposeAsync()
    {
        client.Dispose();
        if (app != null) await app.DisposeAsync();
    }

    private static string Request(string labels) => JsonSerializer.Serialize(new
    {
        input_data = new
        {
            columns = new[] { "image", "text" },
            data = new[] { new[] { Convert.ToBase64String(File.ReadAllBytes(TestData.PathOf("images", "large.png"))), labels } },
        },
    });

    private static async Task<string> ErrorOf(HttpResponseMessage response) =>
        JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("error").GetString()!;

    [Fact]
    public async Task ClientMistakesAre4xxNever500()
    {
        // Invalid UTF-8 in the body, an unpaired surrogate escape, multipart to /score, JSON to /classify.
        var invalid = new ByteArrayContent([.. "{\"input_data\": {\"columns\": [\"image\", \"text\"], \"data\": [[\"a\", \"b"u8, 0xFF, .. "\"]]}}"u8]);
        invalid.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        var response = await client.PostAsync("/score", invalid);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("UTF-8", await ErrorOf(response));

        // The serializer would escape the backslash, so the escape goes in after serializing.
        var surrogate = Request("tumorSURROGATE, x").Replace("SURROGATE", "\\ud800");
        response = await client.PostAsync("/score", new StringContent(surrogate, Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("unpaired surrogate", await ErrorOf(response));

        using var form = new MultipartFormDataContent { { new StringContent("a, b"), "labels" } };
        response = await client.PostAsync("/score", form);
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, response.StatusCode);

        response = await client.PostAsync("/classify", new StringContent(Request("a, b"), Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, response.StatusCode);
        Assert.Contains("multipart/form-data", await ErrorOf(response));

        using var truncatedImage = new MultipartFormDataContent
        {
            { new ByteArrayContent(File.ReadAllBytes(TestData.PathOf("images", "ihc.png"))[..5000]), "image", "cut.png" },
            { new StringContent("a, b"), "labels" },
        };
        response = await client.PostAsync("/classify", truncatedImage);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("image file is truncated", await ErrorOf(response));
    }

    /// <summary>
    /// Capacity 2: of 12 requests sent at once, those beyond the two admitted are answered 503 at once with a
    /// Retry-After in seconds; the admitted ones are served; the server then serves again.
    /// </summary>
    [Fact]
    public async Task AFullQueueAnswers503WithRetryAfter()
    {
        var body = Request("brain MRI, chest X-ray");
        var responses = await Task.WhenAll(Enumerable.Range(0, 12).Select(_ =>
            client.PostAsync("/score", new StringContent(body, Encoding.UTF8, "application/json"))));
        var busy = responses.Where(r => r.StatusCode == HttpStatusCode.ServiceUnavailable).ToList();
        Assert.NotEmpty(busy);
        Assert.All(responses, r => Assert.True(r.StatusCode is HttpStatusCode.OK or HttpStatusCode.ServiceUnavailable, r.StatusCode.ToString()));
        Assert.Contains(responses, r => r.StatusCode == HttpStatusCode.OK);
        foreach (var r in busy)
        {
            Assert.True(r.Headers.RetryAfter?.Delta is { } wait && wait >= TimeSpan.FromSeconds(1), "Retry-After missing");
            Assert.Contains("busy", await ErrorOf(r));
        }
        var again = await client.PostAsync("/score", new StringContent(body, Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.OK, again.StatusCode);
    }
}
