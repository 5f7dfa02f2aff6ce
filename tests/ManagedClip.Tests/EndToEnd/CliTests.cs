using System.Text.Json;
using ManagedClip.IO.Formats;

namespace ManagedClip.Tests.EndToEnd;

/// <summary>
/// The managedclip commands on the tiny model, checked against the reference PyTorch outputs.
/// Probabilities: ≤ 1e-4 absolute (the issue's bar for the tiny model; measured differences are ~1e-6).
/// </summary>
public sealed class CliTests
{
    [Theory]
    [InlineData("classify", "--no-such-option")]
    [InlineData("no-such-command")]
    [InlineData("tokenize", "--model")]
    public void CommandLinesThatDoNotParseExitWithUsageError(params string[] args)
    {
        var result = CliRunner.Run(args);
        Assert.Equal(2, result.ExitCode);
        Assert.StartsWith("managedclip: ", result.Error);
        Assert.Contains($"see 'managedclip {(args[0] == "no-such-command" ? "" : args[0] + " ")}--help'", result.Error);
    }

    private static readonly string Tiny = TestModels.TinyDirectory;

    [Theory]
    [InlineData("histopathology")]
    [InlineData("radiology")]
    public void ClassifyMatchesReferenceZeroShot(string set)
    {
        var (labels, expected) = CliRunner.TinyZeroShot(set);
        var images = CliRunner.PngImages;
        var result = CliRunner.Run(["classify", "--model", Tiny, "--labels", string.Join(", ", labels), .. images]);
        Assert.True(result.ExitCode == 0, result.Error);
        var rows = result.Json.EnumerateArray().ToList();
        Assert.Equal(images.Length, rows.Count);
        for (int i = 0; i < images.Length; i++)
        {
            Assert.Equal(images[i], rows[i].GetProperty("image").GetString());
            Assert.Equal(labels, rows[i].GetProperty("labels").EnumerateArray().Select(e => e.GetString()!));
            var probs = rows[i].GetProperty("probs").EnumerateArray().Select(e => e.GetSingle()).ToArray();
            TensorAssert.Close($"{set} {Path.GetFileName(images[i])}", expected[Path.GetFileNameWithoutExtension(images[i])], probs, 1e-4, 0);
        }
    }

    [Fact]
    public void ScoreAcceptsPathsBase64AndDataUris()
    {
        var (labels, expected) = CliRunner.TinyZeroShot("radiology");
        string ihc = TestData.PathOf("images", "ihc.png"), ct = TestData.PathOf("images", "ct_small.png"), gray = TestData.PathOf("images", "gray.png");
        var request = new
        {
            input_data = new
            {
                columns = new[] { "image", "text" },
                index = new[] { 0, 1, 2 },
                data = new object[][]
                {
                    [ihc, string.Join(", ", labels)],
                    [Convert.ToBase64String(File.ReadAllBytes(ct)), string.Join(",", labels)],
                    ["data:image/png;base64," + Convert.ToBase64String(File.ReadAllBytes(gray)), string.Join(" , ", labels)],
                },
            },
        };
        using var folder = new IO.TempFolder();
        var requestPath = folder.Write("request.json", JsonSerializer.SerializeToUtf8Bytes(request));
        var result = CliRunner.Run("score", "--model", Tiny, "--request", requestPath);
        Assert.True(result.ExitCode == 0, result.Error);
        var rows = result.Json.EnumerateArray().ToList();
        string[] names = ["ihc", "ct_small", "gray"];
        for (int i = 0; i < 3; i++)
        {
            Assert.Equal(labels, rows[i].GetProperty("labels").EnumerateArray().Select(e => e.GetString()!));
            var probs = rows[i].GetProperty("probs").EnumerateArray().Select(e => e.GetSingle()).ToArray();
            TensorAssert.Close($"score row {i}", expected[names[i]], probs, 1e-4, 0);
        }
    }

    [Fact]
    public void ScoreAnswersEachRowOrItsOwnErrorWhenSeveralRowsAreGiven()
    {
        using var folder = new IO.TempFolder();
        string ihc = TestData.PathOf("images", "ihc.png"), gray = TestData.PathOf("images", "gray.png");
        string cut = folder.Write("cut.png", File.ReadAllBytes(ihc)[..40]); // exists, but cannot be decoded
        string[][] data = [[ihc, "a, b, c"], [cut, "d, e"], ["data:image/png;base64," + Convert.ToBase64String(File.ReadAllBytes(gray)), "f, g"]];

        string Request(params string[][] rows) => folder.Write($"request{rows.Length}-{Guid.NewGuid():N}.json",
            JsonSerializer.SerializeToUtf8Bytes(new { input_data = new { columns = new[] { "image", "text" }, data = rows } }));
        var result = CliRunner.Run("score", "--model", Tiny, "--request", Request(data));

        Assert.Equal(1, result.ExitCode); // some rows failed
        Assert.Contains("1 of 3 rows could not be scored", result.Error);
        var rows = result.Json.EnumerateArray().ToList();
        Assert.Equal(3, rows.Count);
        // The good rows are what a one-row request answers for them, to the byte.
        foreach (int r in new[] { 0, 2 })
        {
            var alone = CliRunner.Run("score", "--model", Tiny, "--request", Request(data[r]));
            Assert.True(alone.ExitCode == 0, alone.Error);
            Assert.Equal(alone.Json.EnumerateArray().Single().GetRawText(), rows[r].GetRawText());
        }
        Assert.Equal(["d", "e"], rows[1].GetProperty("labels").EnumerateArray().Select(e => e.GetString()!));
        Assert.False(rows[1].TryGetProperty("probs", out _));
        string error = rows[1].GetProperty("error").GetString()!;
        Assert.Contains("cut.png", error);
        Assert.DoesNotContain('\n', error);
        // Alone, the same bad row is the command's error, as before.
        var bad = CliRunner.Run("score", "--model", Tiny, "--request", Request(data[1]));
        Assert.Equal(1, bad.ExitCode);
        Assert.Equal("", bad.Output);
        Assert.Contains("cut.png", bad.Error);
    }

    [Theory]
    [InlineData("{\"input_data\": {\"columns\": [\"image\", \"text\"], \"data\": [[\"/no/such/file.png\", \"a, b\"]]}}", "row 0: image is not an existing file")]
    [InlineData("{\"input_data\": {\"columns\": [\"image\", \"text\"], \"data\": [[\"IMAGE\", \"\"]]}}", "row 0: the label list is empty")]
    [InlineData("{\"input_data\": {\"columns\": [\"image\", \"text\"], \"data\": [[\"NOTANIMAGE\", \"a, b\"]]}}", "is text")]
    [InlineData("{\"input_data\": {\"columns\": [\"image\"], \"data\": []}}", "must name \"image\" and \"text\"")]
    [InlineData("{\"input_data\": ", "malformed JSON")]
    [InlineData("[1, 2]", "\"input_data\"")]
    public void ScoreRejectsBadRequestsWithOneClearLine(string requestTemplate, string expectedMessage)
    {
        using var folder = new IO.TempFolder();
        var notAnImage = folder.Write("notes.png", "these are notes, not pixels"u8.ToArray());
        var request = requestTemplate.Replace("NOTANIMAGE", notAnImage).Replace("IMAGE", TestData.PathOf("images", "tiny.png"));
        var requestPath = folder.Write("request.json", System.Text.Encoding.UTF8.GetBytes(request));
        var result = CliRunner.Run("score", "--model", Tiny, "--request", requestPath);
        Assert.Equal(1, result.ExitCode);
        Assert.Contains(expectedMessage, result.Error);
        Assert.Single(result.Error.TrimEnd().Split('\n'));   // one line, no stack trace
        Assert.StartsWith("managedclip: ", result.Error);
        Assert.Equal("", result.Output);
    }

    [Fact]
    public void ClassifyReportsBadInputsAndKeepsWorking()
    {
        var missing = CliRunner.Run("classify", "--model", Tiny, "--labels", "a, b", "/no/such/image.png");
        Assert.Equal(1, missing.ExitCode);
        Assert.Contains("/no/such/image.png: no such file", missing.Error);

        // An empty label list is a command line that cannot work (exit 2).
        var noLabels = CliRunner.Run("classify", "--model", Tiny, "--labels", " ", TestData.PathOf("images", "tiny.png"));
        Assert.Equal(2, noLabels.ExitCode);
        Assert.Contains("label list is empty", noLabels.Error);

        var badTemplate = CliRunner.Run("classify", "--model", Tiny, "--labels", "a", "--template", "no slot", TestData.PathOf("images", "tiny.png"));
        Assert.Equal(2, badTemplate.ExitCode);

        var noModel = CliRunner.Run("classify", "--model", "/no/such/model", "--labels", "a", TestData.PathOf("images", "tiny.png"));
        Assert.Equal(1, noModel.ExitCode);
        Assert.Contains("/no/such/model", noModel.Error);

        var ok = CliRunner.Run("classify", "--model", Tiny, "--labels", "a, b", TestData.PathOf("images", "tiny.png"));
        Assert.Equal(0, ok.ExitCode);
    }

    [Fact]
    public void EmbedWritesNormalisedEmbeddingsAsJsonOrSafetensors()
    {
        using var outputs = SafeTensorsFile.Open(Path.Combine(TestData.Tiny, "outputs.safetensors"));
        string ihc = TestData.PathOf("images", "ihc.png"), gray = TestData.PathOf("images", "gray.png");
        var json = CliRunner.Run("embed", "--model", Tiny, "--image", ihc, gray);
        Assert.True(json.ExitCode == 0, json.Error);
        var rows = json.Json.EnumerateArray().ToList();
        Assert.Equal(ihc, rows[0].GetProperty("input").GetString());
        // Normalised features: ≤ 2e-5 (reference README's suggested tolerance).
        TensorAssert.Close("ihc", outputs.GetFloat32("image.ihc.features_normalized").ToArray(),
            rows[0].GetProperty("embedding").EnumerateArray().Select(e => e.GetSingle()).ToArray(), 2e-5, 0.99999);

        using var folder = new IO.TempFolder();
        var outPath = folder.File("texts.safetensors");
        var text = JsonDocument.Parse(File.ReadAllText(Path.Combine(TestData.Tiny, "texts.json"))).RootElement[0];
        var written = CliRunner.Run("embed", "--model", Tiny, "--text", text.GetProperty("text").GetString()!, "--out", outPath);
        Assert.True(written.ExitCode == 0, written.Error);
        using (var file = SafeTensorsFile.Open(outPath))
        {
            Assert.Equal([1L, 32L], file.Info("embeddings").Shape);
            Assert.Equal("text", file.Metadata["kind"]);
            TensorAssert.Close("text.00", outputs.GetFloat32(text.GetProperty("key").GetString() + ".features_normalized").ToArray(),
                file.GetFloat32("embeddings").ToArray(), 2e-5, 0.99999);
        }

        var again = CliRunner.Run("embed", "--model", Tiny, "--text", "x", "--out", outPath);
        Assert.Equal(2, again.ExitCode);
        Assert.Contains("--force", again.Error);

        var both = CliRunner.Run("embed", "--model", Tiny, "--text", "x", "--image", ihc);
        Assert.Equal(2, both.ExitCode);
    }

    [Fact]
    public void TokenizeMatchesReferenceIds()
    {
        var lines = File.ReadLines(TestData.PathOf("tokenizer.jsonl")).Take(12).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        var result = CliRunner.Run(["tokenize", "--model", Tiny, .. lines.Select(l => l.GetProperty("text").GetString()!)]);
        Assert.True(result.ExitCode == 0, result.Error);
        var rows = result.Json.EnumerateArray().ToList();
        for (int i = 0; i < lines.Count; i++)
        {
            int count = lines[i].GetProperty("num_tokens").GetInt32();
            var expected = lines[i].GetProperty("input_ids").EnumerateArray().Take(count).Select(e => e.GetInt32());
            Assert.Equal(expected, rows[i].EnumerateArray().Select(e => e.GetInt32()));
        }
    }

    [Fact]
    public void IndexIsIncrementalAndSearchFindsEachImageFirst()
    {
        using var folder = new IO.TempFolder();
        var imagesDir = Path.Combine(folder.Path, "images");
        Directory.CreateDirectory(Path.Combine(imagesDir, "sub"));
        // Images that differ visibly (tiny/exact copies would tie); one in a subfolder, plus one unreadable file.
        string[] names = ["ihc", "cell", "ct_small", "rgba", "palette", "large", "tall_thin"];
        foreach (var n in names)
            File.Copy(TestData.PathOf("images", n + ".png"), Path.Combine(imagesDir, n == "cell" ? "sub" : "", n + ".png"));
        File.WriteAllText(Path.Combine(imagesDir, "broken.png"), "not a png");
        File.WriteAllText(Path.Combine(imagesDir, "notes.txt"), "ignored: not an image extension");
        var index = Path.Combine(folder.Path, "images.index");

        var first = CliRunner.Run("index", "--model", Tiny, imagesDir, "--out", index);
        Assert.True(first.ExitCode == 0, first.Error);
        Assert.Equal(names.Length, first.Json.GetProperty("embedded").GetInt32());
        Assert.Equal(1, first.Json.GetProperty("errors").GetInt32());
        var skipped = first.Json.GetProperty("error_samples").EnumerateArray().ToList();
        Assert.Equal("broken.png", Assert.Single(skipped).GetProperty("path").GetString());

        var second = CliRunner.Run("index", "--model", Tiny, imagesDir, "--out", index);
        Assert.True(second.ExitCode == 0, second.Error);
        Assert.Equal(0, second.Json.GetProperty("embedded").GetInt32());
        Assert.Equal(names.Length + 1, second.Json.GetProperty("reused").GetInt32()); // the broken file's row too

        // A changed file is embedded again, and only that one.
        File.Copy(TestData.PathOf("images", "gray.png"), Path.Combine(imagesDir, "ihc.png"), overwrite: true);
        File.SetLastWriteTimeUtc(Path.Combine(imagesDir, "ihc.png"), DateTime.UtcNow.AddMinutes(1));
        var third = CliRunner.Run("index", "--model", Tiny, imagesDir, "--out", index);
        Assert.Equal(1, third.Json.GetProperty("embedded").GetInt32());

        foreach (var path in Directory.GetFiles(imagesDir, "*.png", SearchOption.AllDirectories).Where(p => !p.EndsWith("broken.png")))
        {
            var hits = CliRunner.Run("search", "--model", Tiny, "--index", index, "--image", path, "-k", "3");
            Assert.True(hits.ExitCode == 0, hits.Error);
            var ranked = hits.Json.EnumerateArray().ToList();
            Assert.Equal(3, ranked.Count);
            Assert.Equal(Path.GetFullPath(path), ranked[0].GetProperty("path").GetString());
            Assert.True(ranked[0].GetProperty("score").GetSingle() > 0.9999f);
        }

        var byText = CliRunner.Run("search", "--model", Tiny, "--index", index, "--text", "immunohistochemistry");
        var scores = byText.Json.EnumerateArray().Select(h => h.GetProperty("score").GetSingle()).ToList();
        Assert.Equal(names.Length, scores.Count);
        Assert.Equal(scores.OrderDescending(), scores);

        // An --out that is some other file is never overwritten (an index is a folder).
        var precious = folder.Write("precious.safetensors", "user data"u8.ToArray());
        var refused = CliRunner.Run("index", "--model", Tiny, imagesDir, "--out", precious);
        Assert.Equal(1, refused.ExitCode);
        Assert.Equal("user data", File.ReadAllText(precious));
    }

    [Fact]
    public void ConvertAndSynthRefuseToOverwrite()
    {
        using var folder = new IO.TempFolder();
        var existing = folder.Write("out.safetensors", "keep me"u8.ToArray());
        var convert = CliRunner.Run("convert", Path.Combine(TestData.Tiny, "open_clip_pytorch_model.bin"), existing);
        Assert.Equal(1, convert.ExitCode);
        Assert.Equal("keep me", File.ReadAllText(existing));

        var converted = folder.File("tiny.safetensors");
        var ok = CliRunner.Run("convert", Path.Combine(TestData.Tiny, "open_clip_pytorch_model.bin"), converted);
        Assert.True(ok.ExitCode == 0, ok.Error);
        Assert.Equal(72, ok.Json.GetProperty("tensors").GetInt32());
    }

    [Fact]
    public void HelpListsEveryCommand()
    {
        var help = CliRunner.Run("--help");
        Assert.Equal(0, help.ExitCode);
        foreach (var command in new[] { "classify", "score", "embed", "tokenize", "index", "merge", "search", "serve", "download", "convert", "synth", "prepare" })
            Assert.Contains(command, help.Output);
    }
}
