using System.Text.Json;
using ManagedClip.Cli;
using ManagedClip.IO.Formats;

namespace ManagedClip.Tests.EndToEnd;

/// <summary>Runs the managedclip command line in-process and captures what it prints.</summary>
internal static class CliRunner
{
    public sealed record Result(int ExitCode, string Output, string Error)
    {
        public JsonElement Json => JsonDocument.Parse(Output).RootElement;
    }

    public static Result Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code = CliApp.Run(args, output, error);
        return new Result(code, output.ToString(), error.ToString());
    }

    /// <summary>Reference zero-shot rows of the tiny model: label set → (labels, image name → probabilities).</summary>
    public static (string[] Labels, Dictionary<string, float[]> Probs) TinyZeroShot(string set)
    {
        var spec = JsonDocument.Parse(File.ReadAllText(Path.Combine(TestData.Tiny, "zeroshot.json"))).RootElement
            .GetProperty("label_sets").GetProperty(set);
        var labels = spec.GetProperty("labels").EnumerateArray().Select(e => e.GetString()!).ToArray();
        var rows = spec.GetProperty("rows").EnumerateArray().Select(e => e.GetString()!).ToArray();
        using var outputs = SafeTensorsFile.Open(Path.Combine(TestData.Tiny, "outputs.safetensors"));
        var probs = outputs.GetFloat32($"zeroshot.{set}.probs").ToArray();
        var byImage = new Dictionary<string, float[]>();
        for (int i = 0; i < rows.Length; i++) byImage[rows[i]] = probs.AsSpan(i * labels.Length, labels.Length).ToArray();
        return (labels, byImage);
    }

    /// <summary>The PNG fixture images: preprocessing is byte-exact for them, so outputs can be compared tightly.</summary>
    public static string[] PngImages => pngImages.Value;

    private static readonly Lazy<string[]> pngImages = new(() =>
        Directory.GetFiles(TestData.File("reference", "images"), "*.png").Order(StringComparer.Ordinal).ToArray());
}
