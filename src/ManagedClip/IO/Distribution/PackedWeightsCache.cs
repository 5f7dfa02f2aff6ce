using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using ManagedClip.IO.Formats;
using ManagedClip.Kernels;
using ManagedClip.Model;

namespace ManagedClip.IO.Distribution;

/// <summary>What <see cref="PackedWeightsCache.Prepare"/> did.</summary>
/// <param name="Precision">The precision its weights are for.</param>
/// <param name="Path">The packed-weights file.</param>
/// <param name="Bytes">Its size.</param>
/// <param name="Built">True if it was (re)built now, false if a sound one was there (its panels verified).</param>
/// <param name="Seconds">Time taken.</param>
/// <param name="SourceSha256">SHA-256 of the weights file the panels came from, as recorded in the file.</param>
internal sealed record PreparedWeights(ClipPrecision Precision, string Path, long Bytes, bool Built, double Seconds, string SourceSha256);

/// <summary>
/// Where a model's packed-weights file (<see cref="PackedWeightsFile"/>) lives, and finding, checking or building it
/// when a model loads. One file per precision (<c>model.safetensors.mcpanels-v2-w32-f32</c>, <c>…-bf16</c>,
/// <c>…-int8</c>), so the three sit side by side. Places, in order: <see cref="ClipModelOptions.PackedWeightsDirectory"/>
/// if set (only there); else next to the weights file, then the user cache
/// (<see cref="CachePaths.PackedWeightsDirectory"/>, file names prefixed with a hash of the weights path). The first
/// sound file is mapped; if none is, one is built in the first place that can be written.
/// </summary>
internal static class PackedWeightsCache
{
    /// <summary>
    /// File-name suffix for a model loaded in <paramref name="precision"/>: format version, panel width and precision,
    /// so files for other layouts or precisions sit side by side.
    /// </summary>
    public static string Suffix(ClipPrecision precision = ClipPrecision.Float32) =>
        $".mcpanels-v{PackedWeightsHeader.LayoutVersion}-w{PanelPacking.PanelWidth}-" + precision switch
        {
            ClipPrecision.BFloat16 => "bf16",
            ClipPrecision.Int8 => "int8",
            _ => "f32",
        };

    /// <summary>
    /// The weights the towers of <paramref name="config"/> ask packed, in the order they ask, each in the element type
    /// a model loaded in <paramref name="precision"/> holds it in: what the file holds.
    /// </summary>
    public static IReadOnlyList<PackedRequest> PackedWeights(ClipConfig config, ClipPrecision precision = ClipPrecision.Float32)
    {
        var layout = new CheckpointLayout(precision);
        VisionTransformer.Load(layout, config.Vision, config.EmbedDim);
        BertTextEncoder.Load(layout, config.Text, config.EmbedDim);
        return layout.PackedWeights;
    }

    /// <summary>
    /// Where the packed-weights file of <paramref name="directory"/>'s weights may be, in the order they are tried:
    /// <paramref name="packedDirectory"/> alone if given; else the model folder (for a <c>--weights</c> file, the folder
    /// that path names, links not followed), then the user cache.
    /// </summary>
    public static IReadOnlyList<string> Locations(ModelDirectory directory, string? weightsOverride, string? packedDirectory,
        ClipPrecision precision = ClipPrecision.Float32)
    {
        string weights = Path.GetFullPath(directory.WeightsPath); // links resolved: the file whose panels these are
        string name = Path.GetFileName(weights) + Suffix(precision);
        // In a shared folder, files of different models with the same file name must not collide.
        string keyed = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(weights)))[..16] + "-" + name;
        if (packedDirectory is not null) return [Path.Combine(Path.GetFullPath(packedDirectory), keyed)];
        string nextTo = weightsOverride is null ? directory.Root : Path.GetDirectoryName(Path.GetFullPath(weightsOverride))!;
        return [Path.Combine(nextTo, name), Path.Combine(CachePaths.PackedWeightsDirectory, keyed)];
    }

    /// <summary>
    /// The packed-weights file to load <paramref name="store"/>'s block weights from, mapped; built first if needed.
    /// Null when <paramref name="options"/> turn the file off, the model is small, or no file could be written (then
    /// <paramref name="note"/> has said why, and the caller packs in memory).
    /// </summary>
    public static PackedWeightsFile? OpenOrBuild(ModelDirectory directory, TensorStore store, ClipModelOptions options, Action<string> note)
    {
        if (!options.UsePackedWeightsFile) return null;
        var expected = PackedWeights(directory.Config, options.Precision);
        if (expected.Sum(m => WeightMatrix.ArrayShapes(m.ElementType, m.Rows, m.Columns).Sum(a => a.ByteLength)) < options.PackedWeightsMinimumBytes) return null;
        var locations = Locations(directory, options.WeightsFile, options.PackedWeightsDirectory, options.Precision);
        var identity = WeightsIdentity.Of(directory.WeightsPath);
        var rejected = new List<string>();
        foreach (var path in locations)
        {
            if (TryOpen(path, expected, identity, options.VerifyPackedWeights, rejected) is { } found) return found;
        }

        var failures = new List<string>();
        foreach (var path in locations)
        {
            try
            {
                var clock = Stopwatch.StartNew();
                note($"packing the weights into {UserText.Quote(path)}{Because(rejected)} (once: later loads map it)");
                PackedWeightsWriter.Write(path, store, expected, identity);
                var built = PackedWeightsFile.Open(path, expected, identity, verifyPanels: false);
                note($"packed the weights in {clock.Elapsed.TotalSeconds:0.0} s ({built.Length / 1e6:0} MB)");
                return built;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or PackedWeightsRejectedException)
            {
                failures.Add($"{UserText.Quote(path)}: {Describe(e)}");
            }
        }
        note($"warning: no packed-weights file could be written ({string.Join("; ", failures)}); packing the weights in memory instead, as every load will until one can be");
        return null;
    }

    /// <summary>
    /// <c>managedclip prepare</c>: makes sure a sound packed-weights file exists for the model, whatever its size,
    /// checking every panel of an existing one, and building it otherwise.
    /// </summary>
    /// <exception cref="IOException">No place to write it; says where and why.</exception>
    public static PreparedWeights Prepare(ModelDirectory directory, ClipModelOptions options, Action<string> note)
    {
        var clock = Stopwatch.StartNew();
        using var store = directory.OpenWeights();
        var expected = PackedWeights(directory.Config, options.Precision);
        var locations = Locations(directory, options.WeightsFile, options.PackedWeightsDirectory, options.Precision);
        var identity = WeightsIdentity.Of(directory.WeightsPath);
        var rejected = new List<string>();
        foreach (var path in locations)
        {
            using var found = TryOpen(path, expected, identity, verifyPanels: true, rejected);
            if (found is not null) return Result(found, built: false);
        }
        var failures = new List<string>();
        foreach (var path in locations)
        {
            try
            {
                note($"packing the weights into {UserText.Quote(path)}{Because(rejected)}");
                PackedWeightsWriter.Write(path, store, expected, identity);
                using var built = PackedWeightsFile.Open(path, expected, identity, verifyPanels: true);
                return Result(built, built: true);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or PackedWeightsRejectedException)
            {
                failures.Add($"{UserText.Quote(path)}: {Describe(e)}");
            }
        }
        throw new IOException($"no packed-weights file could be written: {string.Join("; ", failures)} (choose a writable folder with --packed-dir)");

        PreparedWeights Result(PackedWeightsFile file, bool built) =>
            new(options.Precision, file.Path, file.Length, built, clock.Elapsed.TotalSeconds, Convert.ToHexStringLower(file.Header.SourceContentHash));
    }

    /// <summary>The file at <paramref name="path"/> if it is sound; otherwise null, with the reason added to <paramref name="rejected"/> (a missing file has none).</summary>
    private static PackedWeightsFile? TryOpen(string path, IReadOnlyList<PackedRequest> expected, WeightsIdentity identity, bool verifyPanels, List<string> rejected)
    {
        try
        {
            return PackedWeightsFile.Open(path, expected, identity, verifyPanels);
        }
        catch (FileNotFoundException)
        {
            return null;
        }
        catch (Exception e) when (e is PackedWeightsRejectedException or IOException or UnauthorizedAccessException or InvalidDataException)
        {
            rejected.Add($"{UserText.Quote(path)}: {Describe(e)}");
            return null;
        }
    }

    private static string Because(List<string> rejected) => rejected.Count == 0 ? "" : $" (not using {string.Join("; ", rejected)})";

    /// <summary>An I/O failure in the user's terms (errno-based on Linux, where .NET puts the errno in HResult).</summary>
    private static string Describe(Exception e) => e switch
    {
        UnauthorizedAccessException => "permission denied",
        IOException { HResult: 28 } => "the disk is full",
        IOException { HResult: 30 } => "the file system is read-only",
        IOException { HResult: 122 } => "the disk quota is exceeded",
        IOException { HResult: 1 } => "the operation is not permitted (an immutable or read-only folder)",
        IOException { HResult: 17 or 20 } => "a part of the path is a file, not a folder",
        DirectoryNotFoundException => "a folder on the path does not exist",
        PackedWeightsRejectedException => e.Message,
        _ => UserText.OneLine(e.Message),
    };
}
