using Microsoft.ML.OnnxRuntime;

namespace ManagedClip.Benchmarks.Onnx;

/// <summary>
/// The two exported towers in ONNX Runtime (CPU), set up the way a tuned deployment would run them: all cores
/// for intra-op parallelism, every graph optimisation on, sequential node execution. Benchmark-only.
/// </summary>
internal sealed class OrtTowers : IDisposable
{
    private readonly SessionOptions options;
    private readonly InferenceSession vision;
    private readonly InferenceSession text;
    private readonly RunOptions runOptions = new();

    /// <summary>Loads <c>vision.onnx</c> and <c>text.onnx</c> from <paramref name="directory"/>.</summary>
    public OrtTowers(string directory)
    {
        options = new SessionOptions
        {
            IntraOpNumThreads = Environment.ProcessorCount,
            InterOpNumThreads = 1,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
        };
        vision = new InferenceSession(Path.Combine(directory, OnnxExport.VisionFileName), options);
        text = new InferenceSession(Path.Combine(directory, OnnxExport.TextFileName), options);
        var pixelDims = vision.InputMetadata[VisionGraph.InputName].Dimensions; // [-1, 3, S, S]
        ImageSize = pixelDims[2];
        EmbedDim = vision.OutputMetadata[VisionGraph.OutputName].Dimensions[1];
    }

    /// <summary>Image side S the vision graph takes (224).</summary>
    public int ImageSize { get; }

    /// <summary>Width E of the shared embedding space (512).</summary>
    public int EmbedDim { get; }

    /// <summary>Image features [count, E] (unnormalised) of normalised pixels [count, 3, S, S].</summary>
    public float[] EmbedImages(float[] pixels, int count)
    {
        long expected = (long)count * 3 * ImageSize * ImageSize;
        if (count < 1 || pixels.Length != expected)
            throw new ArgumentException(
                $"Expected {count} images of 3×{ImageSize}×{ImageSize} floats ({expected}), got {pixels.Length}.", nameof(pixels));
        using var input = OrtValue.CreateTensorValueFromMemory(pixels, [count, 3, ImageSize, ImageSize]);
        using var outputs = vision.Run(runOptions, [VisionGraph.InputName], [input], [VisionGraph.OutputName]);
        return outputs[0].GetTensorDataAsSpan<float>().ToArray();
    }

    /// <summary>
    /// Text features [count, E] (unnormalised) of token ids and mask [count, length]; open_clip's mask is
    /// <c>id != 0</c>.
    /// </summary>
    public float[] EmbedTexts(long[] inputIds, long[] attentionMask, int count, int length)
    {
        long expected = (long)count * length;
        if (count < 1 || length < 1 || inputIds.Length != expected || attentionMask.Length != expected)
            throw new ArgumentException($"Expected {count}×{length} ids and mask values, got {inputIds.Length} and {attentionMask.Length}.");
        using var ids = OrtValue.CreateTensorValueFromMemory(inputIds, [count, length]);
        using var mask = OrtValue.CreateTensorValueFromMemory(attentionMask, [count, length]);
        using var outputs = text.Run(runOptions, [TextGraph.InputIdsName, TextGraph.AttentionMaskName], [ids, mask], [TextGraph.OutputName]);
        return outputs[0].GetTensorDataAsSpan<float>().ToArray();
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        vision.Dispose();
        text.Dispose();
        runOptions.Dispose();
        options.Dispose();
    }
}
