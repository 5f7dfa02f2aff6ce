using ManagedClip.IO.Distribution;
using ManagedClip.IO.Formats;
using ManagedClip.Model;

namespace ManagedClip.Benchmarks.Onnx;

/// <summary>
/// Writes <c>vision.onnx</c> and <c>text.onnx</c> from a BiomedCLIP safetensors checkpoint, so ONNX Runtime runs
/// exactly the weights ManagedClip runs.
/// </summary>
internal static class OnnxExport
{
    public const string VisionFileName = "vision.onnx";
    public const string TextFileName = "text.onnx";
    public const string VisionInt8FileName = "vision-int8.onnx";
    public const string TextInt8FileName = "text-int8.onnx";

    /// <summary>Every graph an export writes: float32, then ONNX Runtime's dynamic int8 (<see cref="OnnxGraph.QuantizeLinears"/>).</summary>
    public static readonly string[] FileNames = [VisionFileName, TextFileName, VisionInt8FileName, TextInt8FileName];

    /// <summary>Exports both towers (float32 and int8) of <paramref name="weightsPath"/> into <paramref name="outputDirectory"/>.</summary>
    public static void Export(string weightsPath, string outputDirectory)
    {
        var config = ConfigFor(weightsPath);
        using var store = SafeTensorsFile.Open(weightsPath);
        // The towers as they declare themselves (names, shapes, modules), without loading a weight.
        var layout = new CheckpointLayout();
        var vision = VisionTransformer.Load(layout, config.Vision, config.EmbedDim);
        var text = BertTextEncoder.Load(layout, config.Text, config.EmbedDim);
        Directory.CreateDirectory(outputDirectory);
        // One tower at a time: each graph holds its weights in memory until written (≈ 350 / 440 MB full-size).
        WriteAtomically(Path.Combine(outputDirectory, VisionFileName), VisionGraph.Build(store, vision), int8: false);
        WriteAtomically(Path.Combine(outputDirectory, TextFileName), TextGraph.Build(store, text), int8: false);
        WriteAtomically(Path.Combine(outputDirectory, VisionInt8FileName), VisionGraph.Build(store, vision, int8: true), int8: true);
        WriteAtomically(Path.Combine(outputDirectory, TextInt8FileName), TextGraph.Build(store, text, int8: true), int8: true);
    }

    /// <summary>
    /// A directory holding every graph for <paramref name="weightsPath"/>: the weights' own directory if they were
    /// exported there, else a temp-directory cache keyed by the file's size and time, exported on first use.
    /// </summary>
    public static string EnsureExported(string weightsPath)
    {
        string weightsDirectory = Path.GetDirectoryName(Path.GetFullPath(weightsPath))!;
        if (HasAllGraphs(weightsDirectory)) return weightsDirectory;
        var file = new FileInfo(weightsPath);
        if (!file.Exists) throw new FileNotFoundException($"Model weights '{weightsPath}' do not exist.", weightsPath);
        string cache = Path.Combine(Path.GetTempPath(), $"managedclip-onnx-{file.Length:x}-{file.LastWriteTimeUtc.Ticks:x}");
        if (!HasAllGraphs(cache)) Export(weightsPath, cache);
        return cache;
    }

    /// <summary>
    /// The configuration of the weights: the <c>open_clip_config.json</c> beside them (and the BERT <c>config.json</c>
    /// it names), as the library reads a model folder; without one, BiomedCLIP's.
    /// </summary>
    private static ClipConfig ConfigFor(string weightsPath)
    {
        string directory = Path.GetDirectoryName(Path.GetFullPath(weightsPath))!;
        string configPath = Path.Combine(directory, ModelDirectory.ConfigFileName);
        return File.Exists(configPath) ? OpenClipConfigReader.Read(configPath, directory).Config : ClipConfig.BiomedClip;
    }

    private static bool HasAllGraphs(string directory) => FileNames.All(f => File.Exists(Path.Combine(directory, f)));

    // Written under a temporary name and renamed, so an interrupted export never leaves a truncated graph.
    private static void WriteAtomically(string path, ProtoMessage graph, bool int8)
    {
        string partial = path + ".partial";
        OnnxWriter.WriteModel(partial, graph, usesMicrosoftDomain: int8);
        File.Move(partial, path, overwrite: true);
    }
}
