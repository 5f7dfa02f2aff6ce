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

        var bars = JsonDocument.Parse(await page.EvaluateExpressionAsync<string>(
            "JSON.stringify([...document.querySelectorAll('#bars li')].map(li => ({ label: li.dataset.label, " +
            "prob: Number(li.dataset.prob), width: li.querySelector('.fill').style.width, text: li.textContent })))")).RootElement;
        int seenWidth = await page.EvaluateExpressionAsync<int>("document.getElementById('seen').naturalWidth");
        Assert.Equal(224, seenWidth);

        // The same request straight to /classify.
        using var client = new HttpClient { BaseAddress = new Uri(url) };
        using var form = new MultipartFormDataContent
        {
            { new ByteArrayContent(await File.ReadAllBytesAsync(image)), "image", "brain_MRI.jpg" },
            { new StringContent(labels), "labels" },
        };
        var reply = JsonDocument.Parse(await (await client.PostAsync("/classify", form)).Content.ReadAsStringAsync()).RootElement;
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

        string? screenshot = Environment.GetEnvironmentVariable(ScreenshotVariable);
        await page.ScreenshotAsync(string.IsNullOrEmpty(screenshot) ? Path.Combine(Path.GetTempPath(), "managedclip-web-page.png") : screenshot,
            new ScreenshotOptions { FullPage = true });

        // A server error is shown as its text: a truncated image.
        string cut = Path.Combine(Path.GetTempPath(), $"managedclip-web-cut-{Environment.ProcessId}.png");
        await File.WriteAllBytesAsync(cut, File.ReadAllBytes(TestData.PathOf("images", "ihc.png"))[..5000]);
        try
        {
            await (await page.QuerySelectorAsync("#image")).UploadFileAsync(cut);
            await page.ClickAsync("#classify");
            await page.WaitForSelectorAsync("body[data-state=error]", new WaitForSelectorOptions { Timeout = 60_000 });
            string error = await page.EvaluateExpressionAsync<string>("document.getElementById('classify-error').textContent");
            Assert.Contains("truncated", error);
            Assert.Contains("HTTP 400", error);
        }
        finally
        {
            File.Delete(cut);
        }
        // The failed fetch itself is logged by the browser as a console error; nothing else may be.
        Assert.All(consoleErrors, e => Assert.Contains("400", e));
    }

    /// <summary>The labels of the model card's example, read from testdata/model-card/README.md.</summary>
    private static string[] ModelCardLabels()
    {
        string readme = File.ReadAllText(Path.Combine(TestData.ModelCard, "README.md"));
        var list = Regex.Match(readme, @"labels = \[(.*?)\]", RegexOptions.Singleline).Groups[1].Value;
        return Regex.Matches(list, "'([^']*)'").Select(m => m.Groups[1].Value).ToArray();
    }
}
