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

    /// <summary>Exports both towers of <paramref name="weightsPath"/> into <paramref name="outputDirectory"/>.</summary>
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
        WriteAtomically(Path.Combine(outputDirectory, VisionFileName), VisionGraph.Build(store, vision));
        WriteAtomically(Path.Combine(outputDirectory, TextFileName), TextGraph.Build(store, text));
    }

    /// <summary>
    /// A directory holding both graphs for <paramref name="weightsPath"/>: the weights' own directory if they were
    /// exported there, else a temp-directory cache keyed by the file's size and time, exported on first use.
    /// </summary>
    public static string EnsureExported(string weightsPath)
    {
        string weightsDirectory = Path.GetDirectoryName(Path.GetFullPath(weightsPath))!;
        if (HasBothGraphs(weightsDirectory)) return weightsDirectory;
        var file = new FileInfo(weightsPath);
        if (!file.Exists) throw new FileNotFoundException($"Model weights '{weightsPath}' do not exist.", weightsPath);
        string cache = Path.Combine(Path.GetTempPath(), $"managedclip-onnx-{file.Length:x}-{file.LastWriteTimeUtc.Ticks:x}");
        if (!HasBothGraphs(cache)) Export(weightsPath, cache);
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

    private static bool HasBothGraphs(string directory) =>
        File.Exists(Path.Combine(directory, VisionFileName)) && File.Exists(Path.Combine(directory, TextFileName));

    // Written under a temporary name and renamed, so an interrupted export never leaves a truncated graph.
    private static void WriteAtomically(string path, ProtoMessage graph)
    {
        string partial = path + ".partial";
        OnnxWriter.WriteModel(partial, graph);
        File.Move(partial, path, overwrite: true);
    }
}
