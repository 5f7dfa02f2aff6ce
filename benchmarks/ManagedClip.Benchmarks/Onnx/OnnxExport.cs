using System.Text.Json;
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
        var (visionHeads, textHeads) = HeadCounts(weightsPath);
        using var store = SafeTensorsFile.Open(weightsPath);
        Directory.CreateDirectory(outputDirectory);
        // One tower at a time: each graph holds its weights in memory until written (≈ 350 / 440 MB full-size).
        WriteAtomically(Path.Combine(outputDirectory, VisionFileName), VisionGraph.Build(store, visionHeads));
        WriteAtomically(Path.Combine(outputDirectory, TextFileName), TextGraph.Build(store, textHeads));
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
    /// Attention heads are the one size a checkpoint does not store. They are read from
    /// <c>open_clip_config.json</c> beside the weights where it says (<c>timm_model_args.num_heads</c>; the
    /// <c>config.json</c> of a local <c>text_cfg.hf_model_name</c> folder), else BiomedCLIP's 12 and 12.
    /// </summary>
    public static (int Vision, int Text) HeadCounts(string weightsPath)
    {
        int vision = ClipConfig.BiomedClip.Vision.HeadCount, text = ClipConfig.BiomedClip.Text.HeadCount;
        string directory = Path.GetDirectoryName(Path.GetFullPath(weightsPath))!;
        string configPath = Path.Combine(directory, "open_clip_config.json");
        if (!File.Exists(configPath)) return (vision, text);
        try
        {
            using var config = JsonDocument.Parse(File.ReadAllText(configPath));
            var root = config.RootElement;
            if (root.TryGetProperty("timm_model_args", out var timmArgs) && timmArgs.TryGetProperty("num_heads", out var heads))
                vision = heads.GetInt32();
            if (root.TryGetProperty("model_cfg", out var modelCfg) && modelCfg.TryGetProperty("text_cfg", out var textCfg)
                && textCfg.TryGetProperty("hf_model_name", out var hfName)
                && File.Exists(Path.Combine(directory, hfName.GetString()!, "config.json")))
            {
                using var bertConfig = JsonDocument.Parse(File.ReadAllText(Path.Combine(directory, hfName.GetString()!, "config.json")));
                text = bertConfig.RootElement.GetProperty("num_attention_heads").GetInt32();
            }
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or KeyNotFoundException or FormatException)
        {
            throw new InvalidDataException($"{configPath}: cannot read the attention head counts ({e.Message}).", e);
        }
        return (vision, text);
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
