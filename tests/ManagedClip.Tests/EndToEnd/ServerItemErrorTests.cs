using System.Diagnostics.Metrics;
using System.Net;
using System.Text;
using System.Text.Json;
using ManagedClip.Cli;
using ManagedClip.Tests.IO;
using ManagedClip.Tests.Imaging;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace ManagedClip.Tests.EndToEnd;

/// <summary>
/// Requests of several items where some items are bad: each bad image is answered with its own one-line error in its
/// place (the words the CLI's classify prints for that file), the good ones exactly as they are answered alone, and
/// the request is 200; a request of one item keeps its error as the status. Also the library meter "ManagedClip"
/// the server now feeds, counted exactly on this server's own meter.
/// </summary>
public sealed class ServerItemErrorTests : IAsyncLifetime
{
    private const string Labels = "adenocarcinoma histopathology, brain MRI, chest X-ray";

    private readonly TempFolder folder = new();
    private WebApplication? app;
    private HttpClient client = new();

    /// <summary>The uploads, in order: name, bytes, and whether the image is one the library cannot read.</summary>
    private readonly List<(string Name, byte[] Bytes, bool Bad)> uploads = [];

    public async Task InitializeAsync()
    {
        byte[] ihc = File.ReadAllBytes(TestData.PathOf("images", "ihc.png"));
        var noise = new byte[3000];
        new Random(7).NextBytes(noise);
        noise[0] = 0x17; // not the first byte of any image signature
        uploads.Add(("ihc.png", ihc, false));
        uploads.Add(("corrupt.png", noise, true));                                    // random bytes
        uploads.Add(("cut.png", ihc[..5000], true));                                   // truncated inside IDAT
        uploads.Add(("notes.txt", "a text file, not an image\n"u8.ToArray(), true));  // unsupported format
        uploads.Add(("huge.png", HostileInputTests.PngWithHeader(20_000, 20_000), true)); // 400 MP: over the pixel limit
        // A DICOM file in a transfer syntax no managed decoder reads (JPEG 2000): refused by name.
        uploads.Add(("mr_jp2k.dcm", File.ReadAllBytes(Path.Combine(TestData.File("reference", "dicom"), "MR_small_jp2klossless.dcm")), true));
        uploads.Add(("brain_MRI.jpg", File.ReadAllBytes(Path.Combine(TestData.ModelCard, "images", "brain_MRI.jpg")), false));
        foreach (var (name, bytes, _) in uploads) File.WriteAllBytes(folder.File(name), bytes);

        app = ScoringServer.Build(TestModels.Tiny, "http://127.0.0.1:0", ScoringServer.DefaultMaxRequestBytes);
        await app.StartAsync();
        client = new HttpClient { BaseAddress = new Uri(app.Urls.First()), Timeout = TimeSpan.FromSeconds(120) };
    }

    public async Task DisposeAsync()
    {
        client.Dispose();
        if (app != null) await app.DisposeAsync();
        folder.Dispose();
    }

    private MultipartFormDataContent ClassifyForm(IEnumerable<(string Name, byte[] Bytes, bool Bad)> images, string labels = Labels)
    {
        var form = new MultipartFormDataContent();
        foreach (var (name, bytes, _) in images) form.Add(new ByteArrayContent(bytes), "image", name);
        form.Add(new StringContent(labels), "labels");
        return form;
    }

    private static async Task<JsonElement> JsonOf(HttpResponseMessage response, HttpStatusCode expected)
    {
        string body = await response.Content.ReadAsStringAsync();
        Assert.True(expected == response.StatusCode, $"{(int)response.StatusCode}: {body}");
        return JsonDocument.Parse(body).RootElement;
    }

    private static void AssertOneLineInUserTerms(string error)
    {
        Assert.DoesNotContain('\n', error);
        Assert.DoesNotContain("Exception", error);
        Assert.DoesNotContain("(Parameter", error);
    }

    [Fact]
    public async Task ClassifyAnswersEachImageOrItsOwnErrorInUploadOrder()
    {
        using var form = ClassifyForm(uploads);
        var items = (await JsonOf(await client.PostAsync("/classify", form), HttpStatusCode.OK)).EnumerateArray().ToList();
        Assert.Equal(uploads.Select(u => u.Name), items.Select(i => i.GetProperty("image").GetString()));

        // What the CLI's classify says for the same files (its rows name the file by the path it was given).
        var cli = CliRunner.Run(["classify", "--model", TestData.Tiny, "--labels", Labels, .. uploads.Select(u => folder.File(u.Name))]);
        Assert.Equal(1, cli.ExitCode); // some images failed
        var cliRows = cli.Json.EnumerateArray().ToList();

        for (int i = 0; i < uploads.Count; i++)
        {
            var (name, bytes, bad) = uploads[i];
            var item = items[i];
            if (bad)
            {
                // Exactly {"image", "error"}: the error names the file and is the CLI's line for it.
                Assert.Equal(["image", "error"], item.EnumerateObject().Select(p => p.Name));
                string error = item.GetProperty("error").GetString()!;
                Assert.StartsWith(name + ": ", error);
                AssertOneLineInUserTerms(error);
                Assert.Equal(cliRows[i].GetProperty("error").GetString()!.Replace(folder.File(name), name, StringComparison.Ordinal), error);
                continue;
            }
            // A good image gets what a request of that image alone gets, to the last bit of every printed float.
            using var alone = ClassifyForm([(name, bytes, false)]);
            var single = await JsonOf(await client.PostAsync("/classify", alone), HttpStatusCode.OK);
            Assert.Equal(single.GetRawText(), item.GetRawText());
            Assert.Equal(cliRows[i].GetProperty("probs").GetRawText(), item.GetProperty("probs").GetRawText());
        }
        Assert.Contains("truncated", items[2].GetProperty("error").GetString());
        Assert.Contains("not a supported image", items[3].GetProperty("error").GetString());
        Assert.Contains("JPEG 2000", items[5].GetProperty("error").GetString());
    }

    [Fact]
    public async Task OneBadImageAloneIsStillA400WithTheSameWords()
    {
        using var several = ClassifyForm([uploads[0], uploads[2]]);
        string itemError = (await JsonOf(await client.PostAsync("/classify", several), HttpStatusCode.OK))[1].GetProperty("error").GetString()!;

        using var one = ClassifyForm([uploads[2]]);
        var reply = await JsonOf(await client.PostAsync("/classify", one), HttpStatusCode.BadRequest);
        Assert.Equal(["error"], reply.EnumerateObject().Select(p => p.Name));
        Assert.Equal(itemError, reply.GetProperty("error").GetString());
    }

    [Fact]
    public async Task RequestLevelProblemsStay4xxEvenWithBadImagesInside()
    {
        using (var noLabels = ClassifyForm(uploads, labels: " "))
            Assert.Contains("label list is empty", (await JsonOf(await client.PostAsync("/classify", noLabels), HttpStatusCode.BadRequest)).GetProperty("error").GetString());
        using (var badTemplate = ClassifyForm(uploads))
        {
            badTemplate.Add(new StringContent("no placeholder"), "template");
            Assert.Contains("template must contain {}", (await JsonOf(await client.PostAsync("/classify", badTemplate), HttpStatusCode.BadRequest)).GetProperty("error").GetString());
        }
        using (var tooMany = ClassifyForm(Enumerable.Repeat(uploads[2], ScoringServer.MaxImagesPerRequest + 1)))
            Assert.Contains($"at most {ScoringServer.MaxImagesPerRequest}", (await JsonOf(await client.PostAsync("/classify", tooMany), HttpStatusCode.BadRequest)).GetProperty("error").GetString());
    }

    [Fact]
    public async Task EmbedAndScoreFollowTheSameRule()
    {
        // /embed: the good image's row is the row it gets alone; the bad one {"input", "kind", "error"}; texts go on.
        using var form = new MultipartFormDataContent
        {
            { new ByteArrayContent(uploads[0].Bytes), "image", uploads[0].Name },
            { new ByteArrayContent(uploads[2].Bytes), "image", uploads[2].Name },
            { new StringContent("brain MRI"), "text" },
        };
        var rows = (await JsonOf(await client.PostAsync("/embed", form), HttpStatusCode.OK)).EnumerateArray().ToList();
        Assert.Equal(3, rows.Count);
        using var alone = new MultipartFormDataContent { { new ByteArrayContent(uploads[0].Bytes), "image", uploads[0].Name } };
        var single = await JsonOf(await client.PostAsync("/embed", alone), HttpStatusCode.OK);
        Assert.Equal(single[0].GetRawText(), rows[0].GetRawText());
        Assert.Equal(["input", "kind", "error"], rows[1].EnumerateObject().Select(p => p.Name));
        Assert.Equal("image", rows[1].GetProperty("kind").GetString());
        Assert.StartsWith("cut.png: ", rows[1].GetProperty("error").GetString());
        Assert.Equal("text", rows[2].GetProperty("kind").GetString());
        Assert.Equal(TestModels.Tiny.EmbeddingSize, rows[2].GetProperty("embedding").GetArrayLength());

        // /score: a row whose image fails is {"labels", "error"} naming its row; the others as a one-row request.
        string Row(byte[] image, string labels) => $"[\"{Convert.ToBase64String(image)}\", \"{labels}\"]";
        string Request(params string[] data) => $"{{\"input_data\": {{\"columns\": [\"image\", \"text\"], \"data\": [{string.Join(", ", data)}]}}}}";
        var scored = (await JsonOf(await client.PostAsync("/score", new StringContent(
            Request(Row(uploads[0].Bytes, "a, b"), Row(uploads[1].Bytes, "c, d"), Row(uploads[6].Bytes, "e, f")), Encoding.UTF8, "application/json")), HttpStatusCode.OK)).EnumerateArray().ToList();
        Assert.Equal(["labels", "error"], scored[1].EnumerateObject().Select(p => p.Name));
        Assert.Equal(["c", "d"], scored[1].GetProperty("labels").EnumerateArray().Select(e => e.GetString()));
        Assert.StartsWith("row 1 image: ", scored[1].GetProperty("error").GetString());
        AssertOneLineInUserTerms(scored[1].GetProperty("error").GetString()!);
        var first = await JsonOf(await client.PostAsync("/score", new StringContent(Request(Row(uploads[0].Bytes, "a, b")), Encoding.UTF8, "application/json")), HttpStatusCode.OK);
        Assert.Equal(first[0].GetRawText(), scored[0].GetRawText());
        Assert.Equal(["probs", "labels"], scored[2].EnumerateObject().Select(p => p.Name));
        // One row whose image fails: the request's error, as before.
        var oneRow = await client.PostAsync("/score", new StringContent(Request(Row(uploads[1].Bytes, "c, d")), Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, oneRow.StatusCode);
    }

    [Fact]
    public async Task TheLibraryMeterCountsWhatTheServerEmbeddedOnce()
    {
        // Listen to this server's own "ManagedClip" meter only (its IMeterFactory), so other servers and generators
        // running in this process cannot add to the counts.
        var factory = app!.Services.GetRequiredService<IMeterFactory>();
        var sums = new Dictionary<string, double>();
        var durations = new List<(double Seconds, string? Input, string? Error)>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == Extensions.AI.ManagedClipTelemetry.MeterName && instrument.Meter.Scope == factory
                || instrument.Meter.Name == ServerMetrics.MeterName && instrument.Meter.Scope == factory)
                l.EnableMeasurementEvents(instrument);
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            lock (sums) sums[instrument.Name] = sums.GetValueOrDefault(instrument.Name) + value;
        });
        listener.SetMeasurementEventCallback<double>((instrument, value, tags, _) =>
        {
            if (instrument.Name != "managedclip.embedding.duration") return;
            string? input = null, error = null;
            foreach (var tag in tags)
            {
                if (tag.Key == "managedclip.input") input = tag.Value as string;
                if (tag.Key == "error.type") error = tag.Value as string;
            }
            lock (sums) durations.Add((value, input, error));
        });
        listener.Start();

        // Two good images, one truncated, three labels; then one bad image alone (a failed call).
        using (var form = ClassifyForm([uploads[0], uploads[2], uploads[6]])) await JsonOf(await client.PostAsync("/classify", form), HttpStatusCode.OK);
        using (var one = ClassifyForm([uploads[2]])) await JsonOf(await client.PostAsync("/classify", one), HttpStatusCode.BadRequest);
        listener.Dispose();

        lock (sums)
        {
            Assert.Equal(2, sums.GetValueOrDefault("managedclip.images.embedded"));
            Assert.Equal(3, sums.GetValueOrDefault("managedclip.texts.embedded")); // the three label prompts, once
            Assert.Equal(0, sums.GetValueOrDefault("managedclip.calls.active"));  // +1 and -1 per call
            Assert.Equal(1, sums.GetValueOrDefault("managedclip.server.items.failed"));
            Assert.Equal(2, sums.GetValueOrDefault("managedclip.server.images")); // the server's own count agrees
            Assert.Equal(2, durations.Count);
            Assert.Equal(("image", (string?)null), (durations[0].Input, durations[0].Error));
            Assert.Equal("image", durations[1].Input);
            Assert.NotNull(durations[1].Error);
            Assert.All(durations, d => Assert.True(d.Seconds > 0));
        }

        // /metrics exports the library meter's instruments beside the server's (the exporter may serve a scrape
        // collected a moment earlier, so poll briefly).
        string metrics = "";
        for (int attempt = 0; attempt < 20 && !metrics.Contains("managedclip_server_items_failed_total"); attempt++)
        {
            metrics = await client.GetStringAsync("/metrics");
            await Task.Delay(100);
        }
        Assert.Contains("managedclip_images_embedded_total{otel_scope_name=\"ManagedClip\"", metrics);
        Assert.Contains("managedclip_texts_embedded_total{otel_scope_name=\"ManagedClip\"", metrics);
        Assert.Contains("managedclip_embedding_duration_seconds_bucket{otel_scope_name=\"ManagedClip\"", metrics);
        Assert.Contains("managedclip_calls_active{otel_scope_name=\"ManagedClip\"", metrics);
        Assert.Contains("managedclip_server_items_failed_total{otel_scope_name=\"ManagedClip.Server\",route=\"/classify\"}", metrics);
    }
}
