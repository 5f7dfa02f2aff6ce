using System.Text;
using System.Text.Json;

namespace ManagedClip.Tests.EndToEnd;

/// <summary>
/// The command line as a researcher uses it on a folder of images: folders, failures that do not stop the run,
/// top-k, JSON lines and CSV, labels from a file or with commas, strict option parsing, literal '@', readable
/// non-ASCII, machine-readable stdout, WordPiece strings and examples in the help. Expected probabilities come from
/// the PyTorch reference (≤ 1e-4, as in CliTests); comparisons between two of our own outputs are exact where the
/// same numbers are printed twice.
/// </summary>
public sealed class ResearcherCliTests
{
    private static readonly string Tiny = TestModels.TinyDirectory;

    private static string Image(string name) => TestData.PathOf("images", name + ".png");

    private static float[] Probs(JsonElement row) => row.GetProperty("probs").EnumerateArray().Select(e => e.GetSingle()).ToArray();

    private static string[] Labels(JsonElement row) => row.GetProperty("labels").EnumerateArray().Select(e => e.GetString()!).ToArray();

    [Fact]
    public void ClassifyTakesFoldersRecursivelyWithTheIndexRulesAndSurvivesALinkLoop()
    {
        var (labels, expected) = CliRunner.TinyZeroShot("histopathology");
        using var folder = new IO.TempFolder();
        var root = Directory.CreateDirectory(Path.Combine(folder.Path, "slides")).FullName;
        Directory.CreateDirectory(Path.Combine(root, "sub", "deeper"));
        File.Copy(Image("ihc"), Path.Combine(root, "ihc.png"));
        File.Copy(Image("cell"), Path.Combine(root, "sub", "deeper", "cell.PNG"));   // extension in any case
        File.WriteAllText(Path.Combine(root, "sub", "notes.txt"), "not an image extension: ignored");
        File.CreateSymbolicLink(Path.Combine(root, "sub", "loop"), "..");             // slides/sub/loop → slides

        var result = CliRunner.Run(["classify", "--model", Tiny, "--labels", string.Join(", ", labels), root, Image("wide")]);

        Assert.True(result.ExitCode == 0, result.Error);
        var rows = result.Json.EnumerateArray().ToList();
        // The folder's images in path order (each once, the loop not followed twice), then the file, as given.
        Assert.Equal([Path.Combine(root, "ihc.png"), Path.Combine(root, "sub", "deeper", "cell.PNG"), Image("wide")],
            rows.Select(r => r.GetProperty("image").GetString()));
        string[] names = ["ihc", "cell", "wide"];
        for (int i = 0; i < rows.Count; i++)
            TensorAssert.Close(names[i], expected[names[i]], Probs(rows[i]), 1e-4, 0);
    }

    [Fact]
    public void ABadImageGetsAnErrorRowTheOthersAreClassifiedAndTheExitCodeIs1()
    {
        var (labels, expected) = CliRunner.TinyZeroShot("radiology");
        using var folder = new IO.TempFolder();
        var broken = folder.Write("broken.png", "these are notes, not pixels"u8.ToArray());
        var missing = Path.Combine(folder.Path, "missing.png");
        // Ten images so that the bad ones share a batch of eight with good ones.
        string[] good = ["ihc", "gray", "ct_small", "mr_small", "large", "wide", "rgba", "palette"];
        string[] images = [Image(good[0]), broken, .. good[1..].Select(Image), missing];

        var result = CliRunner.Run(["classify", "--model", Tiny, "--labels", string.Join(", ", labels), .. images]);

        Assert.Equal(1, result.ExitCode);
        var rows = result.Json.EnumerateArray().ToList();
        Assert.Equal(images, rows.Select(r => r.GetProperty("image").GetString()));
        foreach (var bad in new[] { rows[1], rows[^1] })
        {
            Assert.False(bad.TryGetProperty("probs", out _));
            Assert.Contains(bad.GetProperty("image").GetString()!, bad.GetProperty("error").GetString());
        }
        Assert.Contains("no such file", rows[^1].GetProperty("error").GetString());
        var goodRows = rows.Where(r => !r.TryGetProperty("error", out _)).ToList();
        for (int i = 0; i < good.Length; i++)
            TensorAssert.Close(good[i], expected[good[i]], Probs(goodRows[i]), 1e-4, 0);
        Assert.Contains("2 of 10 images could not be classified", result.Error);
    }

    [Fact]
    public void TopKShowsTheMostProbableLabelsBestFirst()
    {
        var (labels, _) = CliRunner.TinyZeroShot("radiology");
        var all = CliRunner.Run(["classify", "--model", Tiny, "--labels", string.Join(", ", labels), Image("ihc"), Image("gray")]);
        var top = CliRunner.Run(["classify", "--model", Tiny, "--labels", string.Join(", ", labels), "--top-k", "2", Image("ihc"), Image("gray")]);
        Assert.True(top.ExitCode == 0, top.Error);
        var allRows = all.Json.EnumerateArray().ToList();
        var topRows = top.Json.EnumerateArray().ToList();
        for (int i = 0; i < 2; i++)
        {
            // The two largest of the full output, in descending order, with the same printed values.
            var ranked = Labels(allRows[i]).Zip(Probs(allRows[i])).OrderByDescending(p => p.Second).Take(2).ToArray();
            Assert.Equal(ranked.Select(p => p.First), Labels(topRows[i]));
            Assert.Equal(ranked.Select(p => p.Second), Probs(topRows[i]));
        }

        var tooMany = CliRunner.Run("classify", "--model", Tiny, "--labels", "a, b", "--top-k", "5", Image("ihc"));
        Assert.Equal(2, Labels(tooMany.Json[0]).Length);
        Assert.Equal(2, CliRunner.Run("classify", "--model", Tiny, "--labels", "a, b", "--top-k", "0", Image("ihc")).ExitCode);
    }

    [Fact]
    public void JsonLinesAndCsvCarryTheSameRowsAsJson()
    {
        // A label with a comma and a quote, and a path with a comma, so the CSV must quote.
        string[] labels = ["brain MRI", "carcinoma, \"squamous\" cell", "chest X-ray"];
        const string labelsArgument = "brain MRI, \"carcinoma, \"\"squamous\"\" cell\", chest X-ray";
        using var folder = new IO.TempFolder();
        var odd = Path.Combine(folder.Path, "scan, left.png");
        File.Copy(Image("mr_small"), odd);
        var broken = folder.Write("broken.png", "not pixels"u8.ToArray());
        string[] images = [Image("ihc"), odd, broken];

        var json = CliRunner.Run(["classify", "--model", Tiny, "--labels", labelsArgument, .. images]);
        var jsonl = CliRunner.Run(["classify", "--model", Tiny, "--labels", labelsArgument, "--format", "jsonl", .. images]);
        var csv = CliRunner.Run(["classify", "--model", Tiny, "--labels", labelsArgument, "--format", "csv", .. images]);
        Assert.All(new[] { json, jsonl, csv }, r => Assert.Equal(1, r.ExitCode));

        var rows = json.Json.EnumerateArray().ToList();
        Assert.Equal(labels, Labels(rows[0]));
        var lines = jsonl.Output.TrimEnd('\n').Split('\n');
        Assert.Equal(3, lines.Length);
        for (int i = 0; i < 3; i++) Assert.Equal(rows[i].GetRawText(), JsonDocument.Parse(lines[i]).RootElement.GetRawText());

        var table = ParseCsv(csv.Output);
        Assert.Equal(["image", "label", "prob", "rank", "error"], table[0]);
        var body = table.Skip(1).ToList();
        Assert.All(body, r => Assert.Equal(5, r.Length));
        Assert.Equal(2 * labels.Length + 1, body.Count);   // one line per label, one for the failed image
        for (int i = 0; i < 2; i++)
        {
            var probs = Probs(rows[i]);
            var ranks = probs.Select(p => 1 + probs.Count(q => q > p)).ToArray();
            for (int j = 0; j < labels.Length; j++)
            {
                var line = body[i * labels.Length + j];
                Assert.Equal(images[i], line[0]);
                Assert.Equal(labels[j], line[1]);
                Assert.Equal(probs[j], float.Parse(line[2], System.Globalization.CultureInfo.InvariantCulture));
                Assert.Equal(ranks[j].ToString(), line[3]);
                Assert.Equal("", line[4]);
            }
        }
        Assert.Equal([broken, "", "", ""], body[^1][..4]);
        Assert.Equal(rows[2].GetProperty("error").GetString(), body[^1][4]);
    }

    [Fact]
    public void LabelsComeFromAFileOrWithQuotesAndMalformedListsAreUsageErrors()
    {
        using var folder = new IO.TempFolder();
        // A byte-order mark, CRLF line ends, a blank line, commas and quotes taken as written.
        var file = folder.Write("labels.txt", Encoding.UTF8.GetPreamble()
            .Concat(Encoding.UTF8.GetBytes("brain MRI\r\n\r\ncarcinoma, squamous cell\r\n  say \"ah\"  \n")).ToArray());
        var fromFile = CliRunner.Run("classify", "--model", Tiny, "--labels-file", file, Image("ihc"));
        var quoted = CliRunner.Run("classify", "--model", Tiny, "--labels", "brain MRI, \"carcinoma, squamous cell\", \"say \"\"ah\"\"\"", Image("ihc"));
        Assert.True(fromFile.ExitCode == 0, fromFile.Error);
        Assert.True(quoted.ExitCode == 0, quoted.Error);
        Assert.Equal(["brain MRI", "carcinoma, squamous cell", "say \"ah\""], Labels(fromFile.Json[0]));
        Assert.Equal(fromFile.Output, quoted.Output);

        foreach (var bad in new[] { "a, \"b, c", "a, \"b\" c", "a,, b" })
        {
            var result = CliRunner.Run("classify", "--model", Tiny, "--labels", bad, Image("ihc"));
            Assert.Equal(2, result.ExitCode);
            Assert.Equal("", result.Output);
        }
        Assert.Equal(2, CliRunner.Run("classify", "--model", Tiny, Image("ihc")).ExitCode);                                   // no labels
        Assert.Equal(2, CliRunner.Run("classify", "--model", Tiny, "--labels", "a", "--labels-file", file, Image("ihc")).ExitCode); // both

        var latin1 = folder.Write("latin1.txt", [0x52, 0xF6, 0x6E, 0x74, 0x67, 0x65, 0x6E, 0x0A]);   // "Röntgen" in Latin-1
        var notUtf8 = CliRunner.Run("classify", "--model", Tiny, "--labels-file", latin1, Image("ihc"));
        Assert.Equal(1, notUtf8.ExitCode);
        Assert.Contains("not UTF-8", notUtf8.Error);
    }

    [Theory]
    [InlineData("classify", "--top", "3")]          // a misspelt option is not an image path
    [InlineData("classify", "-x")]
    [InlineData("tokenize", "--token")]
    public void UnknownOptionsAreUsageErrorsNotValues(params string[] extra)
    {
        string[] args = extra[0] == "classify"
            ? ["classify", "--model", Tiny, "--labels", "a, b", .. extra[1..], Image("ihc")]
            : ["tokenize", "--model", Tiny, .. extra[1..], "some text"];
        var result = CliRunner.Run(args);
        Assert.Equal(2, result.ExitCode);
        Assert.Contains($"unknown option '{extra[1]}'", result.Error);
        Assert.Equal("", result.Output);
    }

    [Fact]
    public void AfterADoubleDashAValueMayStartWithADash()
    {
        var tokens = CliRunner.Run("tokenize", "--model", Tiny, "--tokens", "--", "-x ray");
        Assert.True(tokens.ExitCode == 0, tokens.Error);
        Assert.Equal(["[CLS]", "-", "x", "ray", "[SEP]"], tokens.Json[0].EnumerateArray().Select(e => e.GetString()));
    }

    [Fact]
    public void AnAtSignIsLiteralNotAResponseFile()
    {
        using var folder = new IO.TempFolder();
        // A file named like the argument exists: a response-file reader would splice its content in.
        var file = folder.Write("labels", "--help"u8.ToArray());
        var tokens = CliRunner.Run("tokenize", "--model", Tiny, "--tokens", "@" + file, "@mention");
        Assert.True(tokens.ExitCode == 0, tokens.Error);
        Assert.Equal(["[CLS]", "@", "mention", "[SEP]"], tokens.Json[1].EnumerateArray().Select(e => e.GetString()));
        Assert.Equal("@", tokens.Json[0][1].GetString());

        var classify = CliRunner.Run("classify", "--model", Tiny, "--labels", "@" + file + ", b", Image("ihc"));
        Assert.True(classify.ExitCode == 0, classify.Error);
        Assert.Equal(["@" + file, "b"], Labels(classify.Json[0]));
    }

    [Fact]
    public void JsonKeepsNonAsciiReadableAndEscapesWhatCouldMisleadATerminal()
    {
        var result = CliRunner.Run("classify", "--model", Tiny, "--labels", "Röntgen, 肺炎, naïve \u001b[31mred\u202E", Image("ihc"));
        Assert.True(result.ExitCode == 0, result.Error);
        Assert.Contains("\"Röntgen\"", result.Output);
        Assert.Contains("\"肺炎\"", result.Output);
        Assert.DoesNotContain("\\u00F6", result.Output, StringComparison.OrdinalIgnoreCase);
        // The escape character and the right-to-left override reach the terminal only as escapes.
        Assert.DoesNotContain('\u001b', result.Output);
        Assert.DoesNotContain('\u202E', result.Output);
        Assert.Contains("\\u001B", result.Output);
        Assert.Contains("\\u202E", result.Output);
        // Still valid JSON with the original strings.
        Assert.Equal(["Röntgen", "肺炎", "naïve \u001b[31mred\u202E"], Labels(result.Json[0]));
    }

    [Fact]
    public void EveryCommandPrintsMachineReadableStdout()
    {
        using var folder = new IO.TempFolder();
        var embedded = CliRunner.Run("embed", "--model", Tiny, "--text", "chest X-ray", "brain MRI", "--out", folder.File("texts.safetensors"));
        Assert.True(embedded.ExitCode == 0, embedded.Error);
        Assert.Equal(folder.File("texts.safetensors"), embedded.Json.GetProperty("out").GetString());
        Assert.Equal(2, embedded.Json.GetProperty("count").GetInt32());
        Assert.Equal(32, embedded.Json.GetProperty("dim").GetInt32());

        var converted = CliRunner.Run("convert", Path.Combine(TestData.Tiny, "open_clip_pytorch_model.bin"), folder.File("tiny.safetensors"));
        Assert.True(converted.ExitCode == 0, converted.Error);
        Assert.Equal(72, converted.Json.GetProperty("tensors").GetInt32());

        // synth writes the full-size synthetic model (750 MB, a few seconds); the note about the missing vocabulary
        // goes to stderr.
        var synthesised = CliRunner.Run("synth", "--out", folder.File("synthetic"));
        Assert.True(synthesised.ExitCode == 0, synthesised.Error);
        Assert.Equal(folder.File("synthetic"), synthesised.Json.GetProperty("model").GetString());
        Assert.False(synthesised.Json.GetProperty("vocab").GetBoolean());
        Assert.Contains("--vocab", synthesised.Error);

        foreach (var result in new[] { embedded, converted, synthesised })
            Assert.Single(result.Output.TrimEnd('\n').Split('\n'));
    }

    [Fact]
    public void TokenizeTokensShowsTheWordPieceStrings()
    {
        var lines = File.ReadLines(TestData.PathOf("tokenizer.jsonl")).Take(12).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        var result = CliRunner.Run(["tokenize", "--model", Tiny, "--tokens", .. lines.Select(l => l.GetProperty("text").GetString()!)]);
        Assert.True(result.ExitCode == 0, result.Error);
        var rows = result.Json.EnumerateArray().ToList();
        for (int i = 0; i < lines.Count; i++)
            Assert.Equal(lines[i].GetProperty("tokens").EnumerateArray().Select(e => e.GetString()),
                rows[i].EnumerateArray().Select(e => e.GetString()));
    }

    [Fact]
    public void TheCommandAsInstalledTokenizesNonAsciiTextLikeTheReference()
    {
        // The CLI process, not the test host: its runtime configuration (globalization, trimming) is what users get.
        // Accent stripping needs Unicode normalisation, which an invariant-globalization build would lose.
        var lines = File.ReadLines(TestData.PathOf("tokenizer.jsonl")).Select(l => JsonDocument.Parse(l).RootElement)
            .Where(l => l.GetProperty("text").GetString()!.Any(c => c > 127)).Take(6).ToList();
        var start = new System.Diagnostics.ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { Path.Combine(AppContext.BaseDirectory, "ManagedClip.Cli.dll"), "tokenize", "--model", Tiny, "--tokens" })
            start.ArgumentList.Add(a);
        foreach (var line in lines) start.ArgumentList.Add(line.GetProperty("text").GetString()!);
        using var process = System.Diagnostics.Process.Start(start)!;
        var output = process.StandardOutput.ReadToEnd();
        Assert.True(process.WaitForExit(TimeSpan.FromMinutes(2)));
        Assert.True(process.ExitCode == 0, process.StandardError.ReadToEnd());
        var rows = JsonDocument.Parse(output).RootElement.EnumerateArray().ToList();
        for (int i = 0; i < lines.Count; i++)
            Assert.Equal(lines[i].GetProperty("tokens").EnumerateArray().Select(e => e.GetString()).Take(256),
                rows[i].EnumerateArray().Select(e => e.GetString()));
    }

    [Theory]
    [InlineData("classify")]
    [InlineData("score")]
    [InlineData("embed")]
    [InlineData("tokenize")]
    [InlineData("index")]
    [InlineData("search")]
    [InlineData("serve")]
    [InlineData("download")]
    [InlineData("convert")]
    [InlineData("synth")]
    public void HelpShowsExamplesForEveryCommand(string command)
    {
        var help = CliRunner.Run(command, "--help");
        Assert.Equal(0, help.ExitCode);
        var examples = help.Output[(help.Output.IndexOf("Examples:", StringComparison.Ordinal) + 1)..];
        Assert.Contains("Examples:", help.Output);
        Assert.Contains($"managedclip {command}", examples);
    }

    /// <summary>An RFC 4180 reader, independent of the writer: quoted fields, doubled quotes, commas and line breaks inside quotes.</summary>
    private static List<string[]> ParseCsv(string text)
    {
        var records = new List<string[]>();
        var fields = new List<string>();
        var field = new StringBuilder();
        bool quoted = false;
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            if (quoted)
            {
                if (c == '"' && i + 1 < text.Length && text[i + 1] == '"') { field.Append('"'); i++; }
                else if (c == '"') quoted = false;
                else field.Append(c);
            }
            else if (c == '"') quoted = true;
            else if (c == ',') { fields.Add(field.ToString()); field.Clear(); }
            else if (c == '\n')
            {
                fields.Add(field.ToString()); field.Clear();
                records.Add(fields.ToArray()); fields.Clear();
            }
            else if (c != '\r') field.Append(c);
        }
        Assert.False(quoted, "unterminated quoted field");
        Assert.Equal(0, field.Length + fields.Count);   // the last record ends with a line break
        return records;
    }
}
