using System.Text.Json;
using System.Text.RegularExpressions;
using ManagedClip.Cli;
using Microsoft.AspNetCore.Builder;
using PuppeteerSharp;

namespace ManagedClip.Tests.EndToEnd;

/// <summary>Runs only where Debian's chromium is installed (.ci/run installs it).</summary>
public sealed class ChromiumFactAttribute : FactAttribute
{
    public const string Chromium = "/usr/bin/chromium";

    public ChromiumFactAttribute()
    {
        if (!File.Exists(Chromium)) Skip = $"{Chromium} not found: install Debian's chromium (apt-get install chromium; .ci/run does) to drive the web page in a real browser";
    }
}

/// <summary>
/// The web page in headless Chromium: the test starts the server itself (tiny model, a free loopback port), opens
/// the page, uploads a model card image, clicks Classify, and checks that the bars show what POST /classify answers
/// for the same image and labels, and that the 224×224 image the model saw is shown. Nothing is downloaded: the
/// browser is the system's, and the page loads only from the server (its content security policy says so, and a
/// violation would be a console error, which fails the test).
/// </summary>
public sealed class WebPageBrowserTests
{
    /// <summary>Set to a file path to save the screenshot there (docs/images/web-page.png is made this way).</summary>
    public const string ScreenshotVariable = "MANAGEDCLIP_WEB_SCREENSHOT";

    [ChromiumFact]
    public async Task ClassifyInTheBrowserShowsTheBarsClassifyAnswers()
    {
        await using var app = ScoringServer.Build(TestModels.Tiny, "http://127.0.0.1:0", ScoringServer.DefaultMaxRequestBytes);
        await app.StartAsync();
        string url = app.Urls.First();
        string image = Path.Combine(TestData.ModelCard, "images", "brain_MRI.jpg");

        await using var browser = await Puppeteer.LaunchAsync(new LaunchOptions
        {
            Headless = true,
            ExecutablePath = ChromiumFactAttribute.Chromium,
            // Root in CI has no user namespace sandbox; /dev/shm is small in containers.
            Args = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"],
            Timeout = 60_000,
        });
        await using var page = await browser.NewPageAsync();
        var consoleErrors = new List<string>();
        page.Console += (_, e) => { if (e.Message.Type == ConsoleType.Error) consoleErrors.Add(e.Message.Text); };
        page.PageError += (_, e) => consoleErrors.Add(e.Message);
        await page.SetViewportAsync(new ViewPortOptions { Width = 1000, Height = 860 });
        await page.GoToAsync(url + "/", new NavigationOptions { Timeout = 60_000 });

        // The status line names the model by its folder, not by the server's full path.
        await page.WaitForFunctionAsync("() => document.getElementById('status').textContent.startsWith('Model ')",
            new WaitForFunctionOptions { Timeout = 60_000 });
        string status = await page.EvaluateExpressionAsync<string>("document.getElementById('status').textContent");
        string folder = Path.GetFileName(TestModels.Tiny.Source.TrimEnd('/', '\\'));
        Assert.StartsWith($"Model {folder} · {TestModels.Tiny.EmbeddingSize}-d embeddings", status);
        Assert.DoesNotContain("/", status);

        // The labels box starts with the model card's nine labels, in its order.
        string labels = await page.EvaluateExpressionAsync<string>("document.getElementById('labels').value");
        Assert.Equal(ModelCardLabels(), labels.Split(',').Select(l => l.Trim()).ToArray());

        var input = await page.QuerySelectorAsync("#image");
        await input.UploadFileAsync(image);
        await page.ClickAsync("#classify");
        await page.WaitForSelectorAsync("body[data-state=classified]", new WaitForSelectorOptions { Timeout = 120_000 });

        var bars = await BarsAsync(page, 0);
        Assert.Equal(1, await page.EvaluateExpressionAsync<int>("document.querySelectorAll('#results .result').length"));
        Assert.Equal("brain_MRI.jpg", await page.EvaluateExpressionAsync<string>("document.querySelector('#results .result').dataset.image"));
        int seenWidth = await page.EvaluateExpressionAsync<int>("document.querySelector('#results .result img.seen').naturalWidth");
        Assert.Equal(224, seenWidth);

        // The same request straight to /classify.
        using var client = new HttpClient { BaseAddress = new Uri(url) };
        using var form = new MultipartFormDataContent
        {
            { new ByteArrayContent(await File.ReadAllBytesAsync(image)), "image", "brain_MRI.jpg" },
            { new StringContent(labels), "labels" },
        };
        var reply = JsonDocument.Parse(await (await client.PostAsync("/classify", form)).Content.ReadAsStringAsync()).RootElement;
        AssertBarsShow(reply, bars);

        string? screenshot = Environment.GetEnvironmentVariable(ScreenshotVariable);
        await page.ScreenshotAsync(string.IsNullOrEmpty(screenshot) ? Path.Combine(Path.GetTempPath(), "managedclip-web-page.png") : screenshot,
            new ScreenshotOptions { FullPage = true });

        string folder2 = Path.Combine(Path.GetTempPath(), $"managedclip-web-{Environment.ProcessId}");
        Directory.CreateDirectory(folder2);
        string cut = Path.Combine(folder2, "cut.png");
        await File.WriteAllBytesAsync(cut, File.ReadAllBytes(TestData.PathOf("images", "ihc.png"))[..5000]);
        try
        {
            // Several images, one truncated: each good one gets its bars (those /classify gives it alone), the bad
            // one its own error in its place, and the page does not fail as a whole.
            string second = Path.Combine(TestData.ModelCard, "images", "chest_X-ray.jpg");
            await (await page.QuerySelectorAsync("#image")).UploadFileAsync(image, cut, second);
            await page.ClickAsync("#classify");
            await page.WaitForSelectorAsync("body[data-state=classified] #results .result:nth-child(3)", new WaitForSelectorOptions { Timeout = 120_000 });
            var cards = JsonDocument.Parse(await page.EvaluateExpressionAsync<string>(
                "JSON.stringify([...document.querySelectorAll('#results .result')].map(c => ({ image: c.dataset.image, state: c.dataset.state, " +
                "error: c.querySelector('.item-error')?.textContent ?? null, seen: c.querySelector('img.seen')?.naturalWidth ?? 0 })))")).RootElement;
            Assert.Equal(["brain_MRI.jpg", "cut.png", "chest_X-ray.jpg"], cards.EnumerateArray().Select(c => c.GetProperty("image").GetString()!));
            Assert.Equal(["classified", "error", "classified"], cards.EnumerateArray().Select(c => c.GetProperty("state").GetString()!));
            string error = cards[1].GetProperty("error").GetString()!;
            Assert.StartsWith("cut.png: ", error);
            Assert.Contains("truncated", error);
            Assert.Equal(224, cards[0].GetProperty("seen").GetInt32());
            Assert.Equal(224, cards[2].GetProperty("seen").GetInt32());
            Assert.True(await page.EvaluateExpressionAsync<bool>("document.getElementById('classify-error').hidden"));
            Assert.Contains("2 of 3 images classified", await page.EvaluateExpressionAsync<string>("document.getElementById('result-summary').textContent"));
            AssertBarsShow(reply, await BarsAsync(page, 0));
            await page.ScreenshotAsync(Path.Combine(Path.GetTempPath(), "managedclip-web-page-items.png"), new ScreenshotOptions { FullPage = true });
            using var alone = new MultipartFormDataContent
            {
                { new ByteArrayContent(await File.ReadAllBytesAsync(second)), "image", "chest_X-ray.jpg" },
                { new StringContent(labels), "labels" },
            };
            AssertBarsShow(JsonDocument.Parse(await (await client.PostAsync("/classify", alone)).Content.ReadAsStringAsync()).RootElement,
                await BarsAsync(page, 2));

            // One image that fails is the request's error (HTTP 400), shown as its text.
            await (await page.QuerySelectorAsync("#image")).UploadFileAsync(cut);
            await page.ClickAsync("#classify");
            await page.WaitForSelectorAsync("body[data-state=error]", new WaitForSelectorOptions { Timeout = 60_000 });
            string requestError = await page.EvaluateExpressionAsync<string>("document.getElementById('classify-error').textContent");
            Assert.Contains("truncated", requestError);
            Assert.Contains("HTTP 400", requestError);
        }
        finally
        {
            Directory.Delete(folder2, recursive: true);
        }
        // The failed fetch itself is logged by the browser as a console error; nothing else may be.
        Assert.All(consoleErrors, e => Assert.Contains("400", e));
    }

    /// <summary>The bars of the <paramref name="card"/>-th result card, top to bottom.</summary>
    private static async Task<JsonElement> BarsAsync(IPage page, int card) => JsonDocument.Parse(await page.EvaluateExpressionAsync<string>(
        $"JSON.stringify([...document.querySelectorAll('#results .result')[{card}].querySelectorAll('.bars li')].map(li => ({{ label: li.dataset.label, " +
        "prob: Number(li.dataset.prob), width: li.querySelector('.fill').style.width, text: li.textContent })))")).RootElement;

    /// <summary>The bars show /classify's reply for one image: its labels by probability, each number and length.</summary>
    private static void AssertBarsShow(JsonElement reply, JsonElement bars)
    {
        var expected = reply.GetProperty("labels").EnumerateArray().Select(e => e.GetString()!)
            .Zip(reply.GetProperty("probs").EnumerateArray().Select(e => e.GetDouble()))
            .OrderByDescending(p => p.Second).ToList();
        Assert.Equal(expected.Count, bars.GetArrayLength());
        for (int i = 0; i < expected.Count; i++)
        {
            var bar = bars[i];
            Assert.Equal(expected[i].First, bar.GetProperty("label").GetString());
            // The page shows the number /classify sent, parsed as a double by both sides: equal exactly.
            Assert.Equal(expected[i].Second, bar.GetProperty("prob").GetDouble());
            // The bar's length is the probability (a percentage with two decimals).
            double width = double.Parse(bar.GetProperty("width").GetString()!.TrimEnd('%'), System.Globalization.CultureInfo.InvariantCulture);
            Assert.Equal(expected[i].Second * 100, width, 0.005 + 1e-9);
            Assert.Contains($"{expected[i].Second * 100:0.0} %", bar.GetProperty("text").GetString());
        }
    }

    /// <summary>The labels of the model card's example, read from testdata/model-card/README.md.</summary>
    private static string[] ModelCardLabels()
    {
        string readme = File.ReadAllText(Path.Combine(TestData.ModelCard, "README.md"));
        var list = Regex.Match(readme, @"labels = \[(.*?)\]", RegexOptions.Singleline).Groups[1].Value;
        return Regex.Matches(list, "'([^']*)'").Select(m => m.Groups[1].Value).ToArray();
    }
}
