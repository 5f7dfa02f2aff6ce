using Microsoft.ML.OnnxRuntime;

namespace ManagedClip.Benchmarks.Onnx;

/// <summary>
/// The two exported towers in ONNX Runtime (CPU), set up the way a tuned deployment would run them: all cores
/// for intra-op parallelism, every graph optimisation on, sequential node execution, and one thread pool shared
/// by both sessions. Benchmark-only.
/// </summary>
/// <remarks>
/// With a pool per session (ONNX Runtime's default), running the text session right after the image session
/// makes the two pools fight for the cores: the image pool's threads are still spinning for work. Measured on
/// 2 cores, image + 5 prompts took 205 ms with per-session pools and 158 ms with the shared pool (113 + 39 ms
/// when run apart), so zero-shot would flatter ManagedClip without it.
/// </remarks>
internal sealed class OrtTowers : IDisposable
{
    private readonly SessionOptions options;
    private readonly InferenceSession vision;
    private readonly InferenceSession text;
    private readonly RunOptions runOptions = new();

    // ONNX Runtime's environment is one per process and takes its thread pool options only when first created.
    private static readonly Lazy<OrtEnv> SharedThreadPool = new(() =>
    {
        if (OrtEnv.IsCreated)
            throw new InvalidOperationException("the ONNX Runtime environment was created before OrtTowers could give it a shared thread pool");
        var environment = new EnvironmentCreationOptions
        {
            threadOptions = new OrtThreadingOptions { GlobalIntraOpNumThreads = Environment.ProcessorCount, GlobalInterOpNumThreads = 1 },
        };
        return OrtEnv.CreateInstanceWithOptions(ref environment);
    });

    /// <summary>
    /// Loads <c>vision.onnx</c> and <c>text.onnx</c> from <paramref name="directory"/>, or with <paramref name="int8"/>
    /// the dynamically quantized <c>vision-int8.onnx</c> and <c>text-int8.onnx</c>.
    /// </summary>
    public OrtTowers(string directory, bool int8 = false)
    {
        _ = SharedThreadPool.Value; // the process-wide environment and its pool come first
        options = new SessionOptions
        {
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
        };
        options.DisablePerSessionThreads(); // both sessions run on the shared pool
        vision = new InferenceSession(Path.Combine(directory, int8 ? OnnxExport.VisionInt8FileName : OnnxExport.VisionFileName), options);
        text = new InferenceSession(Path.Combine(directory, int8 ? OnnxExport.TextInt8FileName : OnnxExport.TextFileName), options);
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
