using System.Diagnostics;
using System.Globalization;
using ManagedClip.Tests.EndToEnd;

namespace ManagedClip.Tests.ExtensionsAI;

/// <summary>
/// Runs samples/ManagedClip.Sample (the generic-host app that uses ManagedClip through DI and Microsoft.Extensions.AI)
/// against the tiny reference model: it must find the generators' vectors identical to ClipModel's (its exit code) and
/// print the zero-shot probabilities PyTorch computed.
/// </summary>
public sealed class SampleAppTests
{
    [Fact]
    public async Task TheSampleAppGetsClipModelsVectorsAndTheReferenceRanking()
    {
        var (labels, reference) = CliRunner.TinyZeroShot("histopathology");
        // The sample is built beside the tests, in the same configuration: …/bin/<Configuration>/net10.0/.
        var testBin = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        string configuration = testBin.Parent!.Name, framework = testBin.Name;
        var repository = Path.GetDirectoryName(TestData.Root)!;
        var sample = Path.Combine(repository, "samples", "ManagedClip.Sample", "bin", configuration, framework, "ManagedClip.Sample.dll");
        Assert.True(File.Exists(sample), $"the sample app is not built: {sample}");

        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[] { sample, "--model", TestData.Tiny, "--image", TestData.PathOf("images", "ihc.png"), "--labels", string.Join(", ", labels) })
            start.ArgumentList.Add(arg);
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(3));
        string stdout = await output;
        Assert.True(process.ExitCode == 0, $"exit code {process.ExitCode}\n{stdout}\n{await error}");
        Assert.Contains("vectors: identical to ClipModel's", stdout);

        // "  0.2607  adenocarcinoma histopathology": printed with 4 decimals (±5e-5), and within the 1e-4 the reference
        // tests allow float32 against PyTorch: 2e-4 in all.
        var printed = stdout.Split('\n').Select(line => line.Trim()).Where(line => line.Length > 0 && char.IsDigit(line[0]))
            .Select(line => line.Split("  ", 2)).ToDictionary(parts => parts[1], parts => float.Parse(parts[0], CultureInfo.InvariantCulture));
        Assert.Equal(labels.Length, printed.Count);
        for (int i = 0; i < labels.Length; i++) Assert.InRange(printed[labels[i]], reference["ihc"][i] - 2e-4f, reference["ihc"][i] + 2e-4f);
    }
}
