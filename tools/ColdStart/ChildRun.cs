using System.Globalization;
using System.Numerics.Tensors;
using ManagedClip.Imaging;
using ManagedClip.Model;
using ManagedClip.Tokenization;
using Microsoft.ML.OnnxRuntime;

namespace ManagedClip.ColdStart;

/// <summary>
/// What one measured child process does: load a model, classify one image against the five labels, print the
/// probabilities (the moment the parent stops the clock), classify it again three times (the last one timed: the steady
/// state, the floor a cold start could reach), then print where the time went and its own peak memory, and exit.
/// </summary>
internal static class ChildRun
{
    public const string ManagedClipMode = "--child-managedclip";
    public const string OnnxRuntimeMode = "--child-onnxruntime";

    private const string ResultPrefix = "RESULT ";

    /// <summary>Child argument: map the packed-weights file (the default), or pack the weights in memory as before it existed.</summary>
    public const string PackedFile = "packed-file", InMemory = "in-memory";

    /// <summary>Child argument: after the result, wait for a line on stdin (the parent measures resident memory meanwhile).</summary>
    public const string Hold = "hold";

    /// <summary>Printed by a holding child when its result is out and it waits.</summary>
    public const string HoldingLine = "HOLDING";

    /// <summary>
    /// <c>--child-managedclip MODEL_DIR IMAGE packed-file|in-memory fp32|bf16|int8 [hold]</c>: the library's public
    /// API, as an application uses it.
    /// </summary>
    public static int ManagedClip(string[] args)
    {
        var clock = new ChildPhases.Clock();
        clock.Started();
        var (modelDirectory, image) = (args[0], args[1]);
        var precision = args[3] switch { "bf16" => ClipPrecision.BFloat16, "int8" => ClipPrecision.Int8, _ => ClipPrecision.Float32 };
        using var model = ClipModel.Load(new ClipModelOptions { ModelDirectory = modelDirectory, UsePackedWeightsFile = args[2] != InMemory, Precision = precision });
        clock.Mark();
        int exit = Finish(clock, () => model.Classify(image, ZeroShotTask.Labels, ZeroShotTask.Template).Probabilities);
        if (args.Length > 4 && args[4] == Hold)
        {
            Console.WriteLine(HoldingLine);
            Console.In.ReadLine();
        }
        return exit;
    }

    /// <summary>
    /// <c>--child-onnxruntime ONNX_DIR VOCAB IMAGE LOGIT_SCALE_LOG</c>: both sessions created from the exported
    /// graphs (all cores in one shared pool, every graph optimisation, as in the benchmarks), the same preprocessing and tokenizer as
    /// ManagedClip, the prompts padded to the longest with a mask (cheaper for ONNX Runtime than open_clip's 256),
    /// and the same score math.
    /// </summary>
    public static int OnnxRuntime(string[] args)
    {
        var clock = new ChildPhases.Clock();
        clock.Started();
        var (onnxDirectory, vocabulary, image) = (args[0], args[1], args[2]);
        float logitScaleLog = float.Parse(args[3], CultureInfo.InvariantCulture);
        // One intra-op pool of all cores shared by both sessions: with a pool each, the image session's spinning
        // threads slow the text session that runs right after it.
        var environment = new EnvironmentCreationOptions
        {
            threadOptions = new OrtThreadingOptions { GlobalIntraOpNumThreads = Environment.ProcessorCount, GlobalInterOpNumThreads = 1 },
        };
        OrtEnv.CreateInstanceWithOptions(ref environment);
        using var options = new SessionOptions
        {
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
        };
        options.DisablePerSessionThreads();
        using var vision = new InferenceSession(Path.Combine(onnxDirectory, "vision.onnx"), options);
        using var text = new InferenceSession(Path.Combine(onnxDirectory, "text.onnx"), options);
        clock.Mark();
        return Finish(clock, () => Classify(vision, text, vocabulary, image, logitScaleLog));
    }

    /// <summary>One zero-shot result from the two sessions: preprocessing, tokenizing, both graphs, scores.</summary>
    private static float[] Classify(InferenceSession vision, InferenceSession text, string vocabulary, string image, float logitScaleLog)
    {
        var config = ClipConfig.BiomedClip;
        var pixels = ImagePreprocessor.For(config).Preprocess(image); // [1, 3, 224, 224]
        var tokenizer = new OpenClipBertTokenizer(vocabulary, config.Text.ContextLength);
        var prompts = ZeroShotTask.Prompts().Select(tokenizer.Encode).ToArray();
        int count = prompts.Length, length = prompts.Max(p => p.Length);
        var ids = new long[count * length];  // [count, length], [PAD] = 0 after each prompt
        var mask = new long[count * length]; // [count, length], 1 on real tokens
        for (int row = 0; row < count; row++)
            for (int t = 0; t < prompts[row].Length; t++) (ids[row * length + t], mask[row * length + t]) = (prompts[row][t], 1);

        // Input and output names as the benchmarks' ONNX exporter writes them.
        using var pixelValue = OrtValue.CreateTensorValueFromMemory(pixels, [1, 3, config.Vision.ImageSize, config.Vision.ImageSize]);
        using var imageOutputs = vision.Run(new RunOptions(), ["pixel_values"], [pixelValue], ["image_features"]);
        using var idValue = OrtValue.CreateTensorValueFromMemory(ids, [count, length]);
        using var maskValue = OrtValue.CreateTensorValueFromMemory(mask, [count, length]);
        using var textOutputs = text.Run(new RunOptions(), ["input_ids", "attention_mask"], [idValue, maskValue], ["text_features"]);
        var imageFeatures = imageOutputs[0].GetTensorDataAsSpan<float>().ToArray(); // [1, E]
        var textFeatures = textOutputs[0].GetTensorDataAsSpan<float>().ToArray();   // [count, E]
        return Probabilities(imageFeatures, textFeatures, logitScaleLog);
    }

    /// <summary>Reads the probabilities a child printed, or null for any other line.</summary>
    public static float[]? ParseResult(string line) => line.StartsWith(ResultPrefix, StringComparison.Ordinal)
        ? line[ResultPrefix.Length..].Split(' ').Select(p => float.Parse(p, CultureInfo.InvariantCulture)).ToArray()
        : null;

    /// <summary>softmax over labels of exp(logit_scale) · cosine(image, prompt), as ClipModel.Classify.</summary>
    private static float[] Probabilities(float[] image, float[] texts, float logitScaleLog)
    {
        int width = image.Length, count = texts.Length / width;
        var logits = new float[count];
        float imageNorm = TensorPrimitives.Norm(image);
        for (int j = 0; j < count; j++)
        {
            var row = texts.AsSpan(j * width, width);
            logits[j] = MathF.Exp(logitScaleLog) * TensorPrimitives.Dot(image, row) / (imageNorm * TensorPrimitives.Norm(row));
        }
        var probabilities = new float[count];
        TensorPrimitives.SoftMax(logits, probabilities);
        return probabilities;
    }

    /// <summary>Number of untimed passes between the first and the timed steady one: by then tiered compilation has
    /// recompiled the hot loops (its background tier-1 compiles still ran during the second pass).</summary>
    private const int WarmPasses = 2;

    // The result line is what the parent times; the phase and memory lines follow it, the latter just before exit.
    private static int Finish(ChildPhases.Clock clock, Func<float[]> classify)
    {
        var probabilities = classify();
        clock.Mark();
        Console.WriteLine(ResultPrefix + string.Join(' ', probabilities.Select(p => p.ToString("R", CultureInfo.InvariantCulture))));
        Console.Out.Flush();
        for (int pass = 0; pass < WarmPasses; pass++) classify();
        clock.Skip();
        classify();
        clock.Mark();
        Console.WriteLine(clock.Phases.ToLine());
        Console.WriteLine(PeakMemory.OfThisProcess().ToLine());
        return 0;
    }
}
