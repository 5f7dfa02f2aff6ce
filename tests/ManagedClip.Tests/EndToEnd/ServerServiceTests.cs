using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using ManagedClip.Cli;
using ManagedClip.IO.Formats;
using ManagedClip.Retrieval;
using ManagedClip.Tests.Imaging;
using ManagedClip.Tests.IO;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace ManagedClip.Tests.EndToEnd;

/// <summary>
/// The server as a service (issue #18 part B), in-process on a loopback port with the tiny model and an index of
/// five fixture images: /embed, several images per /classify, /search, /preprocess, the OpenAPI document, /metrics,
/// and hostile requests. Expected values come from the upstream reference outputs in testdata/, not from our code.
/// </summary>
public sealed class ServerServiceTests : IAsyncLifetime
{
    // Normalised features are compared as ZeroShotTests compares them: float32 noise of two different summation
    // orders over 2 layers of width 64 stays well below 2e-5.
    private const float FeatureTolerance = 2e-5f;

    private static readonly string[] IndexedImages = ["ihc", "cell", "gray", "ct_small", "mr_small"];

    private readonly TempFolder folder = new();
    private WebApplication? app;
    private HttpClient client = new();

    public async Task InitializeAsync()
    {
        var images = Path.Combine(folder.Path, "images");
        Directory.CreateDirectory(images);
        foreach (var name in IndexedImages) File.Copy(TestData.PathOf("images", name + ".png"), Path.Combine(images, name + ".png"));
        string index = folder.File("index");
        using (var run = ImageIndex.Open(TestModels.Tiny, images, index)) run.RunToEnd();
        var served = ServedModel.Ready(TestModels.Tiny, ImageIndexReader.Open(index));
        app = ScoringServer.Build(served, new ServerOptions { Urls = "http://127.0.0.1:0", LogRequests = false });
        await app.StartAsync();
        client = new HttpClient { BaseAddress = new Uri(app.Urls.First()), Timeout = TimeSpan.FromSeconds(60) };
    }

    public async Task DisposeAsync()
    {
        client.Dispose();
        if (app != null) await app.DisposeAsync();
        folder.Dispose();
    }

    private static float[] Reference(string key)
    {
        using var outputs = SafeTensorsFile.Open(Path.Combine(TestData.Tiny, "outputs.safetensors"));
        return outputs.GetFloat32(key).ToArray();
    }

    private static string ReferenceText(string key) =>
        JsonDocument.Parse(File.ReadAllText(Path.Combine(TestData.Tiny, "texts.json"))).RootElement.EnumerateArray()
            .First(t => t.GetProperty("key").GetString() == key).GetProperty("text").GetString()!;

    private static ByteArrayContent ImagePart(string name) => new(File.ReadAllBytes(TestData.PathOf("images", name + ".png")));

    private static float[] Floats(JsonElement array) => array.EnumerateArray().Select(e => e.GetSingle()).ToArray();

    private static async Task<string> ErrorOf(HttpResponseMessage response)
    {
        string body = await response.Content.ReadAsStringAsync();
        string error = JsonDocument.Parse(body).RootElement.GetProperty("error").GetString()!;
        // One line in the user's terms: no .NET exception text or parameter names.
        Assert.DoesNotContain('\n', error);
        Assert.DoesNotContain("Exception", error);
        Assert.DoesNotContain("(Parameter", error);
        return error;
    }

    [Fact]
    public async Task EmbedAnswersImagesThenTextsLikeTheReference()
    {
        string text0 = ReferenceText("text.00"), text1 = ReferenceText("text.01");
        using var form = new MultipartFormDataContent
        {
            { ImagePart("ihc"), "image", "ihc.png" },
            { new StringContent(text0), "text" },
            { ImagePart("cell"), "image", "cell.png" },
            { new StringContent(text1), "text" },
        };
        var response = await client.PostAsync("/embed", form);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var rows = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.EnumerateArray().ToList();
        Assert.Equal(["ihc.png", "cell.png", text0, text1], rows.Select(r => r.GetProperty("input").GetString()));
        Assert.Equal(["image", "image", "text", "text"], rows.Select(r => r.GetProperty("kind").GetString()));
        TensorAssert.Close("ihc", Reference("image.ihc.features_normalized"), Floats(rows[0].GetProperty("embedding")), FeatureTolerance, 0);
        TensorAssert.Close("cell", Reference("image.cell.features_normalized"), Floats(rows[1].GetProperty("embedding")), FeatureTolerance, 0);
        TensorAssert.Close("text.00", Reference("text.00.features_normalized"), Floats(rows[2].GetProperty("embedding")), FeatureTolerance, 0);
        TensorAssert.Close("text.01", Reference("text.01.features_normalized"), Floats(rows[3].GetProperty("embedding")), FeatureTolerance, 0);

        // The JSON form of the same request gives the same vectors, bit for bit (one code path after parsing).
        string json = JsonSerializer.Serialize(new
        {
            images = new[] { Convert.ToBase64String(File.ReadAllBytes(TestData.PathOf("images", "ihc.png"))) },
            texts = new[] { text1 },
        });
        var again = await client.PostAsync("/embed", new StringContent(json, Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.OK, again.StatusCode);
        var jsonRows = JsonDocument.Parse(await again.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal("images[0]", jsonRows[0].GetProperty("input").GetString());
        Assert.Equal(rows[0].GetProperty("embedding").GetRawText(), jsonRows[0].GetProperty("embedding").GetRawText());
        Assert.Equal(rows[3].GetProperty("embedding").GetRawText(), jsonRows[1].GetProperty("embedding").GetRawText());
    }

    [Fact]
    public async Task ClassifyAnswersEveryUploadedImageInOrder()
    {
        var (labels, expected) = CliRunner.TinyZeroShot("histopathology");
        string[] order = ["wide", "ihc", "cell"];
        using var form = new MultipartFormDataContent();
        foreach (var name in order) form.Add(ImagePart(name), "image", name + ".png");
        form.Add(new StringContent(string.Join(", ", labels)), "labels");
        var response = await client.PostAsync("/classify", form);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var rows = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.EnumerateArray().ToList();
        Assert.Equal(order.Select(n => n + ".png"), rows.Select(r => r.GetProperty("image").GetString()));
        for (int i = 0; i < order.Length; i++)
        {
            Assert.Equal(labels, rows[i].GetProperty("labels").EnumerateArray().Select(e => e.GetString()));
            // As ServerTests: the reference zero-shot probabilities within 1e-4.
            TensorAssert.Close(order[i], expected[order[i]], Floats(rows[i].GetProperty("probs")), 1e-4, 0);
        }
    }

    [Fact]
    public async Task SearchRanksTheIndexByCosineWithTheQueryText()
    {
        string query = ReferenceText("text.02");
        var response = await client.PostAsync("/search", new StringContent(JsonSerializer.Serialize(new { text = query, k = 3 }), Encoding.UTF8, "application/json"));
        Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync());
        var hits = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.EnumerateArray().ToList();
        Assert.Equal(3, hits.Count);

        // Expected: the cosine of the reference text and image features, ranked (all five images are indexed).
        var text = Reference("text.02.features_normalized");
        var expected = IndexedImages
            .Select(n => (Path: n + ".png", Score: Reference($"image.{n}.features_normalized").Zip(text, (a, b) => a * b).Sum()))
            .OrderByDescending(e => e.Score).ToList();
        for (int i = 0; i < hits.Count; i++)
        {
            var match = expected.Single(e => e.Path == hits[i].GetProperty("relative_path").GetString());
            Assert.Equal(match.Score, hits[i].GetProperty("score").GetSingle(), 1e-4); // features within 2e-5 each, 32 terms
            Assert.EndsWith(match.Path, hits[i].GetProperty("path").GetString());
            // Best first; a reference near-tie (within the tolerance) may swap.
            Assert.True(expected[i].Score - match.Score <= 1e-4, $"hit {i}: {match.Path} scores {match.Score}, rank {i} should score {expected[i].Score}");
        }

        // A form works too, and bad queries are one-line 400s.
        using var form = new FormUrlEncodedContent([new("text", query), new("k", "2")]);
        var formReply = await client.PostAsync("/search", form);
        Assert.Equal(HttpStatusCode.OK, formReply.StatusCode);
        Assert.Equal(2, JsonDocument.Parse(await formReply.Content.ReadAsStringAsync()).RootElement.GetArrayLength());
        var badK = await client.PostAsync("/search", new StringContent("{\"text\": \"x\", \"k\": 0}", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, badK.StatusCode);
        Assert.Contains("k must be between 1", await ErrorOf(badK));
    }

    [Fact]
    public async Task SearchWithoutAnIndexIs404NamingTheOption()
    {
        await using var plain = ScoringServer.Build(TestModels.Tiny, "http://127.0.0.1:0", ScoringServer.DefaultMaxRequestBytes);
        await plain.StartAsync();
        using var other = new HttpClient { BaseAddress = new Uri(plain.Urls.First()) };
        var response = await other.PostAsync("/search", new StringContent("{\"text\": \"brain MRI\"}", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Contains("--index", await ErrorOf(response));
        var health = JsonDocument.Parse(await other.GetStringAsync("/healthz")).RootElement;
        Assert.Equal(JsonValueKind.Null, health.GetProperty("indexRows").ValueKind);
        Assert.Equal("fp32", health.GetProperty("precision").GetString());
    }

    [Fact]
    public async Task HealthSaysThePrecisionTheModelWasLoadedIn()
    {
        using var model = ClipModel.Load(new ClipModelOptions { ModelDirectory = TestModels.TinyDirectory, Precision = ClipPrecision.Int8 });
        await using var app = ScoringServer.Build(model, "http://127.0.0.1:0", ScoringServer.DefaultMaxRequestBytes);
        await app.StartAsync();
        using var http = new HttpClient { BaseAddress = new Uri(app.Urls.First()) };
        var health = JsonDocument.Parse(await http.GetStringAsync("/healthz")).RootElement;
        Assert.Equal("int8", health.GetProperty("precision").GetString());
    }

    [Fact]
    public async Task PreprocessReturnsTheExactImageTheModelSees()
    {
        using var form = new MultipartFormDataContent { { ImagePart("ihc"), "image", "ihc.png" } };
        var response = await client.PostAsync("/preprocess", form);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("image/png", response.Content.Headers.ContentType?.MediaType);
        using var png = Image.Load<Rgb24>(await response.Content.ReadAsByteArrayAsync());
        Assert.Equal((224, 224), (png.Width, png.Height));
        var rgb = new byte[224 * 224 * 3];
        png.CopyPixelDataTo(rgb);
        // torchvision's Resize + CenterCrop output from the reference run: byte-exact for PNG fixtures.
        PreprocessReferenceTests.AssertBytesEqual(ReferenceTensors.Preprocess.U8("ihc.rgb224"), rgb, "ihc via /preprocess");
    }

    [Fact]
    public async Task OpenApiDocumentDescribesEveryRouteAndTheRepliesAsSent()
    {
        var openApi = await client.GetAsync("/openapi/v1.json");
        string openApiText = await openApi.Content.ReadAsStringAsync();
        Assert.True(openApi.IsSuccessStatusCode, $"{(int)openApi.StatusCode}: {openApiText}");
        var document = JsonDocument.Parse(openApiText).RootElement;
        var paths = document.GetProperty("paths");
        var routes = app!.Services.GetRequiredService<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>()
            .Select(e => e.RoutePattern.RawText!)
            .Where(r => r is not ("/app.js" or "/app.css" or "/favicon.svg" or "{*path}") && !r.StartsWith("/openapi/", StringComparison.Ordinal))
            .ToHashSet();
        Assert.Contains("/embed", routes);
        foreach (var route in routes) Assert.True(paths.TryGetProperty(route, out _), $"{route} is not in the OpenAPI document");

        // The documented 200 shapes carry exactly the keys the handlers write.
        var schemas = document.GetProperty("components").GetProperty("schemas");
        HashSet<string> Keys(string schema) => schemas.GetProperty(schema).GetProperty("properties").EnumerateObject().Select(p => p.Name).ToHashSet();
        HashSet<string> ReplyKeys(JsonElement reply) => reply.EnumerateObject().Select(p => p.Name).ToHashSet();

        using var embedForm = new MultipartFormDataContent { { new StringContent("brain MRI"), "text" } };
        var embed = JsonDocument.Parse(await (await client.PostAsync("/embed", embedForm)).Content.ReadAsStringAsync()).RootElement;
        Assert.Equal(Keys("EmbedRow"), ReplyKeys(embed[0]));

        using var classifyForm = new MultipartFormDataContent { { ImagePart("tiny"), "image", "tiny.png" }, { new StringContent("a, b"), "labels" } };
        var classify = JsonDocument.Parse(await (await client.PostAsync("/classify", classifyForm)).Content.ReadAsStringAsync()).RootElement;
        Assert.Equal(Keys("ClassifyReply"), ReplyKeys(classify));

        // Several images, one of them not an image: the array's elements are the two documented shapes.
        using var itemsForm = new MultipartFormDataContent
        {
            { ImagePart("tiny"), "image", "tiny.png" },
            { new ByteArrayContent("not an image"u8.ToArray()), "image", "notes.txt" },
            { new StringContent("a, b"), "labels" },
        };
        var items = JsonDocument.Parse(await (await client.PostAsync("/classify", itemsForm)).Content.ReadAsStringAsync()).RootElement;
        Assert.Equal(Keys("ClassifyReply"), ReplyKeys(items[0]));
        Assert.Equal(Keys("ItemError"), ReplyKeys(items[1]));
        var classifyReply = paths.GetProperty("/classify").GetProperty("post").GetProperty("responses").GetProperty("200")
            .GetProperty("content").GetProperty("application/json").GetProperty("schema");
        Assert.Equal(["#/components/schemas/ClassifyReply", "#/components/schemas/ItemError"],
            classifyReply.GetProperty("oneOf")[1].GetProperty("items").GetProperty("oneOf").EnumerateArray().Select(s => s.GetProperty("$ref").GetString()));
        using var embedItemsForm = new MultipartFormDataContent
        {
            { new ByteArrayContent("not an image"u8.ToArray()), "image", "notes.txt" },
            { new StringContent("brain MRI"), "text" },
        };
        var embedItems = JsonDocument.Parse(await (await client.PostAsync("/embed", embedItemsForm)).Content.ReadAsStringAsync()).RootElement;
        Assert.Equal(Keys("EmbedError"), ReplyKeys(embedItems[0]));
        Assert.Equal(["error", "labels"], Keys("ScoreError").Order());

        var search = JsonDocument.Parse(await (await client.PostAsync("/search", new StringContent("{\"text\": \"cell\", \"k\": 1}", Encoding.UTF8, "application/json"))).Content.ReadAsStringAsync()).RootElement;
        Assert.Equal(Keys("SearchHitReply"), ReplyKeys(search[0]));

        var health = JsonDocument.Parse(await client.GetStringAsync("/healthz")).RootElement;
        var healthSchema = paths.GetProperty("/healthz").GetProperty("get").GetProperty("responses").GetProperty("200")
            .GetProperty("content").GetProperty("application/json").GetProperty("schema");
        var healthKeys = (healthSchema.TryGetProperty("$ref", out var reference)
                ? schemas.GetProperty(reference.GetString()!.Split('/')[^1]) : healthSchema)
            .GetProperty("properties").EnumerateObject().Select(p => p.Name).ToHashSet();
        Assert.Equal(healthKeys, ReplyKeys(health));

        // Every documented shape has compile-time JSON metadata: the native AOT binary has no reflection fallback, and
        // a shape without it makes /openapi/v1.json a 500 there (this JIT build would not notice).
        var documented = app.Services.GetRequiredService<EndpointDataSource>().Endpoints.SelectMany(e => e.Metadata).SelectMany(m => m switch
        {
            ServerApiDocs.Items items => new[] { items.Single, items.Item, items.Error },
            ServerApiDocs.Reply reply => [reply.Type],
            ServerApiDocs.JsonBody body => [body.Type],
            _ => [],
        }).OfType<Type>().Distinct().ToList();
        Assert.Contains(typeof(ItemError), documented);
        foreach (var type in documented) Assert.True(CliJsonContext.Default.GetTypeInfo(type) is not null, $"{type.Name} is not in CliJsonContext");

        var classifyBody = paths.GetProperty("/classify").GetProperty("post").GetProperty("requestBody").GetProperty("content")
            .GetProperty("multipart/form-data").GetProperty("schema").GetProperty("properties");
        Assert.Equal("binary", classifyBody.GetProperty("image").GetProperty("items").GetProperty("format").GetString());
    }

    [Fact]
    public async Task MetricsExportRequestsQueueAndModelWorkInPrometheusFormat()
    {
        using var form = new MultipartFormDataContent { { ImagePart("tiny"), "image", "tiny.png" }, { new StringContent("a, b, c"), "labels" } };
        Assert.Equal(HttpStatusCode.OK, (await client.PostAsync("/classify", form)).StatusCode);
        // The exporter collects on scrape; the request's own log pass runs as its answer completes, so poll briefly.
        string metrics = "";
        for (int attempt = 0; attempt < 20 && !metrics.Contains("route=\"/classify\",status=\"200\""); attempt++)
        {
            metrics = await client.GetStringAsync("/metrics");
            await Task.Delay(100);
        }
        Assert.Contains("managedclip_server_requests_total{otel_scope_name=\"ManagedClip.Server\",route=\"/classify\",status=\"200\"}", metrics);
        Assert.Contains("managedclip_server_images_total", metrics);
        Assert.Contains("managedclip_server_texts_total", metrics);
        Assert.Contains("managedclip_server_model_duration_seconds_bucket", metrics);
        Assert.Contains("managedclip_server_queue_length", metrics);
        Assert.Contains("managedclip_server_ready{otel_scope_name=\"ManagedClip.Server\"} 1", metrics);
        Assert.Contains("http_server_request_duration_seconds_bucket", metrics); // ASP.NET Core's own
    }

    [Fact]
    public async Task HostileRequestsGetOneLineErrorsAndTheServerKeepsServing()
    {
        // 1000 form parts: refused by the form reader's part limit, not read into memory.
        using (var many = new MultipartFormDataContent())
        {
            for (int i = 0; i < 1000; i++) many.Add(new StringContent("x"), "text");
            var response = await client.PostAsync("/embed", many);
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            Assert.Contains($"more than {ScoringServer.MaxFormParts}", await ErrorOf(response));
        }
        // More images than one request may carry.
        using (var images = new MultipartFormDataContent())
        {
            for (int i = 0; i <= ScoringServer.MaxImagesPerRequest; i++) images.Add(ImagePart("tiny"), "image", $"t{i}.png");
            images.Add(new StringContent("a, b"), "labels");
            var response = await client.PostAsync("/classify", images);
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            Assert.Contains($"at most {ScoringServer.MaxImagesPerRequest}", await ErrorOf(response));
        }
        // An enormous text.
        var huge = await client.PostAsync("/embed", new StringContent(JsonSerializer.Serialize(new { texts = new[] { new string('a', 1_000_000) } }), Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, huge.StatusCode);
        Assert.Contains($"at most {ScoringServer.MaxTextCharacters}", await ErrorOf(huge));

        (string Route, HttpContent Body, HttpStatusCode Status, string Message)[] cases =
        [
            ("/embed", Json("{\"texts\": [\"a\""), HttpStatusCode.BadRequest, "malformed JSON"),
            ("/embed", Json("{\"texts\": \"a\"}"), HttpStatusCode.BadRequest, "texts must be an array"),
            ("/embed", Json("{\"texts\": [7]}"), HttpStatusCode.BadRequest, "texts[0] must be a string"),
            ("/embed", Json("{\"words\": []}"), HttpStatusCode.BadRequest, "unknown field"),
            ("/embed", Json("{}"), HttpStatusCode.BadRequest, "nothing to embed"),
            ("/embed", Json("{\"images\": [\"/etc/hostname\"]}"), HttpStatusCode.BadRequest, "does not read file paths"),
            ("/embed", Json("{\"images\": [\"bm90IGFuIGltYWdlIGF0IGFsbCwganVzdCB0ZXh0\"]}"), HttpStatusCode.BadRequest, "images[0]"),
            ("/embed", Bytes([.. "{\"texts\": [\"a"u8, 0xC3, .. "\"]}"u8], "application/json"), HttpStatusCode.BadRequest, "UTF-8"),
            ("/embed", new StringContent("brain MRI", Encoding.UTF8, "text/plain"), HttpStatusCode.UnsupportedMediaType, "multipart/form-data"),
            ("/search", Json("[1, 2]"), HttpStatusCode.BadRequest, "\"text\" string"),
            ("/search", Json("{\"text\": \"x\", \"k\": 1.5}"), HttpStatusCode.BadRequest, "k must be a whole number"),
            ("/search", Json("{\"text\": \"   \"}"), HttpStatusCode.BadRequest, "text is empty"),
            ("/classify", Bytes("--xyz\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.png\"\r\n\r\nabc"u8.ToArray(), "multipart/form-data; boundary=xyz"), HttpStatusCode.BadRequest, "malformed multipart"),
            ("/preprocess", Json("{}"), HttpStatusCode.UnsupportedMediaType, "multipart/form-data"),
        ];
        foreach (var (route, body, status, message) in cases)
        {
            var response = await client.PostAsync(route, body);
            Assert.True(status == response.StatusCode, $"{route} {message}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
            Assert.Contains(message, await ErrorOf(response));
        }

        var unknown = await client.GetAsync("/classify/nothing.png?x=1");
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
        Assert.Contains("no route GET /classify/nothing.png:", await ErrorOf(unknown));

        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/healthz")).StatusCode);
        using var ok = new MultipartFormDataContent { { new StringContent("brain MRI"), "text" } };
        Assert.Equal(HttpStatusCode.OK, (await client.PostAsync("/embed", ok)).StatusCode);

        static HttpContent Json(string text) => new StringContent(text, Encoding.UTF8, "application/json");
        static HttpContent Bytes(byte[] bytes, string type)
        {
            var content = new ByteArrayContent(bytes);
            content.Headers.ContentType = MediaTypeHeaderValue.Parse(type);
            return content;
        }
    }
}

/// <summary>Liveness and readiness while the model loads, and after a failed load.</summary>
public sealed class ServerReadinessTests
{
    [Fact]
    public async Task HealthzAnswersWhileTheModelLoadsAndRequestsWaitForIt()
    {
        using var release = new ManualResetEventSlim();
        var served = ServedModel.LoadInBackground(() =>
        {
            release.Wait(TimeSpan.FromSeconds(60));
            return TestModels.Tiny;
        });
        await using var app = ScoringServer.Build(served, new ServerOptions { Urls = "http://127.0.0.1:0", LogRequests = false });
        await app.StartAsync();
        using var client = new HttpClient { BaseAddress = new Uri(app.Urls.First()), Timeout = TimeSpan.FromSeconds(60) };

        var health = await client.GetAsync("/healthz");
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        var healthJson = JsonDocument.Parse(await health.Content.ReadAsStringAsync()).RootElement;
        Assert.False(healthJson.GetProperty("ready").GetBoolean());
        Assert.Equal("ok", healthJson.GetProperty("status").GetString());
        var ready = await client.GetAsync("/readyz");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.StatusCode);
        Assert.Equal("loading", JsonDocument.Parse(await ready.Content.ReadAsStringAsync()).RootElement.GetProperty("status").GetString());

        // A request sent now waits in the queue for the model, and is answered once it is in.
        using var form = new MultipartFormDataContent { { new StringContent("brain MRI"), "text" } };
        var pending = client.PostAsync("/embed", form);
        await Task.Delay(300);
        Assert.False(pending.IsCompleted);
        Assert.Equal(1, JsonDocument.Parse(await client.GetStringAsync("/healthz")).RootElement.GetProperty("requests").GetInt32());

        release.Set();
        Assert.Equal(HttpStatusCode.OK, (await pending).StatusCode);
        var readyNow = await client.GetAsync("/readyz");
        Assert.Equal(HttpStatusCode.OK, readyNow.StatusCode);
        Assert.Equal("ready", JsonDocument.Parse(await readyNow.Content.ReadAsStringAsync()).RootElement.GetProperty("status").GetString());
    }

    [Fact]
    public async Task AFailedLoadKeepsReadyz503WithTheReasonAndModelRoutesSay503()
    {
        var served = ServedModel.LoadInBackground(() => throw new InvalidDataException("weights.safetensors: header is truncated"));
        await using var app = ScoringServer.Build(served, new ServerOptions { Urls = "http://127.0.0.1:0", LogRequests = false });
        await app.StartAsync();
        using var client = new HttpClient { BaseAddress = new Uri(app.Urls.First()) };
        try { await served.Loaded; } catch (InvalidDataException) { }

        var ready = await client.GetAsync("/readyz");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.StatusCode);
        var json = JsonDocument.Parse(await ready.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal("failed", json.GetProperty("status").GetString());
        Assert.Contains("header is truncated", json.GetProperty("error").GetString());
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/healthz")).StatusCode);

        using var form = new MultipartFormDataContent { { new StringContent("brain MRI"), "text" } };
        var embed = await client.PostAsync("/embed", form);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, embed.StatusCode);
        Assert.Contains("the model failed to load: weights.safetensors: header is truncated", await embed.Content.ReadAsStringAsync());
    }

    [Theory]
    [InlineData("http://0.0.0.0:9000", 7000, "http://0.0.0.0:9000")]
    [InlineData(null, 7000, "http://127.0.0.1:7000")]
    public void UrlsWinOverPortWhichWinsOverTheEnvironment(string? urls, int? port, string expected) =>
        Assert.Equal(expected, CliApp.ListenUrls(urls, port));
}

/// <summary>What the request log may show of a text: a short, escaped prefix.</summary>
public sealed class RequestLogTests
{
    [Theory]
    [InlineData("brain MRI", "\"brain MRI\"")]
    [InlineData("this is a photo of chest X-ray with effusion", "\"this is a photo of chest…\"")]
    [InlineData("line\nbreak", "\"line\\nbreak\"")]
    [InlineData("12345678901234567890123😀tail", "\"12345678901234567890123…\"")] // the emoji's pair is not split
    public void TextsAreLoggedAsAShortEscapedPrefix(string text, string logged) =>
        Assert.Equal(logged, RequestLog.Prefix(text));
}
