namespace ManagedClip.Tests.EndToEnd;

/// <summary><c>--precision fp32|bf16|int8</c> on the command line (see <see cref="ClipPrecision"/>).</summary>
public class PrecisionCliTests
{
    private static string Tiny => TestData.Tiny;

    // Largest probability difference to the float32 reference on the tiny model's zero-shot tables, measured by
    // PrecisionAccuracyTests: bf16 8.1e-5, int8 1.1e-3. The tolerances leave 5× and 4.5× of that.
    [Theory]
    [InlineData("fp32", 1e-4)]
    [InlineData("bf16", 5e-4)]
    [InlineData("int8", 5e-3)]
    public void ClassifyInEachPrecisionStaysCloseToTheReference(string precision, double tolerance)
    {
        var (labels, expected) = CliRunner.TinyZeroShot("radiology");
        var images = CliRunner.PngImages;
        var result = CliRunner.Run(["classify", "--model", Tiny, "--precision", precision, "--labels", string.Join(", ", labels), .. images]);
        Assert.True(result.ExitCode == 0, result.Error);
        var rows = result.Json.EnumerateArray().ToList();
        for (int i = 0; i < images.Length; i++)
        {
            var probs = rows[i].GetProperty("probs").EnumerateArray().Select(e => e.GetSingle()).ToArray();
            var reference = expected[Path.GetFileNameWithoutExtension(images[i])];
            TensorAssert.Close($"{precision} {Path.GetFileName(images[i])}", reference, probs, tolerance, 0);
            Assert.Equal(Array.IndexOf(reference, reference.Max()), Array.IndexOf(probs, probs.Max()));
            Assert.Equal(precision, rows[i].GetProperty("precision").GetString()); // the row says which format answered
        }
    }

    // Every JSON line that carries model output names the precision that produced it; without --precision it is fp32.
    [Theory]
    [InlineData(null, "fp32")]
    [InlineData("fp32", "fp32")]
    [InlineData("bf16", "bf16")]
    [InlineData("int8", "int8")]
    public void EmbedAndScoreSayThePrecisionInUse(string? precision, string expected)
    {
        string[] flag = precision == null ? [] : ["--precision", precision];
        var embed = CliRunner.Run(["embed", "--model", Tiny, .. flag, "--text", "a chest x-ray", "an MRI"]);
        Assert.True(embed.ExitCode == 0, embed.Error);
        var rows = embed.Json.EnumerateArray().ToList();
        Assert.Equal(2, rows.Count);
        Assert.All(rows, row => Assert.Equal(expected, row.GetProperty("precision").GetString()));

        using var folder = new IO.TempFolder();
        var summary = CliRunner.Run(["embed", "--model", Tiny, .. flag, "--text", "a chest x-ray", "--out", folder.File("e.safetensors")]);
        Assert.True(summary.ExitCode == 0, summary.Error);
        Assert.Equal(expected, summary.Json.GetProperty("precision").GetString());

        var request = System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(new
        {
            input_data = new { columns = new[] { "image", "text" }, data = new[] { new[] { TestData.PathOf("images", "tiny.png"), "a, b" } } },
        });
        var score = CliRunner.Run(["score", "--model", Tiny, .. flag, "--request", folder.Write("request.json", request)]);
        Assert.True(score.ExitCode == 0, score.Error);
        Assert.Equal(expected, score.Json.EnumerateArray().Single().GetProperty("precision").GetString());
    }

    [Fact]
    public void UnknownPrecisionIsAOneLineUsageError()
    {
        var result = CliRunner.Run("classify", "--model", Tiny, "--precision", "fp16", "--labels", "a, b", TestData.PathOf("images", "tiny.png"));
        Assert.Equal(2, result.ExitCode);
        Assert.Contains("fp16", result.Error);
        Assert.Contains("bf16", result.Error);
        Assert.Contains("--precision", result.Error.Split('\n')[0]);   // the first line names the option
        Assert.DoesNotContain("\\n", result.Error);                    // not the parser's newlines escaped into the line
        Assert.DoesNotContain("Exception", result.Error);
        Assert.Equal("", result.Output);
    }

    [Theory]
    [InlineData("classify")]
    [InlineData("score")]
    [InlineData("embed")]
    [InlineData("index")]
    [InlineData("search")]
    [InlineData("serve")]
    public void EveryCommandThatLoadsTheModelTakesPrecision(string command)
    {
        var help = CliRunner.Run(command, "--help");
        Assert.Equal(0, help.ExitCode);
        Assert.Contains("--precision", help.Output);
    }

    [Fact]
    public void CommandsThatDoNotLoadTheModelDoNotTakeIt()
    {
        var help = CliRunner.Run("tokenize", "--help");
        Assert.DoesNotContain("--precision", help.Output);
    }
}
