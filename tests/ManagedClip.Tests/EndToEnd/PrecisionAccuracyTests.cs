using System.Text.Json;
using ManagedClip.Model;
using Xunit.Abstractions;

namespace ManagedClip.Tests.EndToEnd;

/// <summary>
/// bf16 and int8 (<see cref="ClipPrecision"/>) against float32 on every reference image, text and zero-shot label set
/// in testdata/, for the tiny model and the full-size synthetic one. Each test logs a row of docs/PRECISION.md's table.
/// </summary>
/// <remarks>
/// Targets (issue #19): cosine to the float32 features ≥ 0.9999 for bf16 and ≥ 0.999 for int8, on every image and
/// text; zero-shot top-1 identical on every row. The synthetic weights are random (not trained), which can be harsher
/// than real weights: where a target does not hold there, the test asserts what does and docs/PRECISION.md says why.
/// </remarks>
public sealed class PrecisionAccuracyTests(ITestOutputHelper log)
{
    private static readonly Dictionary<(string, ClipPrecision), Lazy<ClipModel>> models = new()
    {
        [("tiny", ClipPrecision.BFloat16)] = new(() => Load(TestModels.TinyDirectory, ClipPrecision.BFloat16)),
        [("tiny", ClipPrecision.Int8)] = new(() => Load(TestModels.TinyDirectory, ClipPrecision.Int8)),
        [("full", ClipPrecision.BFloat16)] = new(() => Load(TestModels.FullDirectory, ClipPrecision.BFloat16)),
        [("full", ClipPrecision.Int8)] = new(() => Load(TestModels.FullDirectory, ClipPrecision.Int8)),
    };

    private static ClipModel Load(string directory, ClipPrecision precision) =>
        ClipModel.Load(new ClipModelOptions { ModelDirectory = directory, Precision = precision });

    private static ClipModel Float32(string model) => model == "tiny" ? TestModels.Tiny : TestModels.Full;

    private static string Folder(string model) => model == "tiny" ? TestData.Tiny : TestData.Full;

    public static TheoryData<string, int> ModelsAndModes() => new()
    {
        { "tiny", (int)ClipPrecision.BFloat16 }, { "tiny", (int)ClipPrecision.Int8 },
        { "full", (int)ClipPrecision.BFloat16 }, { "full", (int)ClipPrecision.Int8 },
    };

    private static double MinimumCosine(ClipPrecision precision) => precision == ClipPrecision.BFloat16 ? 0.9999 : 0.999;

    [Fact]
    public void Float32IsTheDefaultAndGivesTheSameBits()
    {
        // The float32 GEMM is the one it always was (a bf16 or int8 weight branches off before it), and the golden
        // tests hold it to PyTorch; here: asking for Float32 explicitly gives exactly what the default load gives.
        Assert.Equal(ClipPrecision.Float32, new ClipModelOptions().Precision);
        using var explicitFloat32 = Load(TestModels.TinyDirectory, ClipPrecision.Float32);
        var images = ReferenceImages("tiny").Select(i => i.Input).ToList();
        Assert.Equal(TestModels.Tiny.EmbedImages(images, normalize: false), explicitFloat32.EmbedImages(images, normalize: false));
        var texts = new[] { "chest X-ray", "this is a photo of adenocarcinoma histopathology" };
        Assert.Equal(TestModels.Tiny.EmbedTexts(texts, normalize: false), explicitFloat32.EmbedTexts(texts, normalize: false));
    }

    [Theory]
    [MemberData(nameof(ModelsAndModes))]
    public void FeaturesStayWithinTheTargetCosineOfFloat32(string model, int mode)
    {
        var precision = (ClipPrecision)mode;
        var reduced = models[(model, precision)].Value;
        var exact = Float32(model);
        var named = ReferenceImages(model);
        var images = named.Select(i => i.Input).ToList();
        var texts = JsonDocument.Parse(File.ReadAllText(Path.Combine(Folder(model), "texts.json"))).RootElement
            .EnumerateArray().Select(e => e.GetProperty("text").GetString()!).ToList();

        var exactImages = exact.EmbedImages(images, normalize: false);
        var reducedImages = reduced.EmbedImages(images, normalize: false);
        var exactTexts = exact.EmbedTexts(texts, normalize: false);
        var reducedTexts = reduced.EmbedTexts(texts, normalize: false);

        var imageStats = exactImages.Select((e, i) => Compare(e, reducedImages[i])).ToList();
        var textStats = exactTexts.Select((e, i) => Compare(e, reducedTexts[i])).ToList();
        log.WriteLine($"| {model} | {precision} | images ({images.Count}) | min cosine {imageStats.Min(s => s.Cosine):F6} | max |Δ| {imageStats.Max(s => s.MaxAbs):E2} (features up to {imageStats.Max(s => s.Magnitude):F2}) |");
        log.WriteLine($"| {model} | {precision} | texts ({texts.Count}) | min cosine {textStats.Min(s => s.Cosine):F6} | max |Δ| {textStats.Max(s => s.MaxAbs):E2} (features up to {textStats.Max(s => s.Magnitude):F2}) |");

        double minimum = MinimumCosine(precision);
        for (int i = 0; i < images.Count; i++)
            Assert.True(imageStats[i].Cosine >= minimum, $"{model} {precision}: image {named[i].Name} cosine {imageStats[i].Cosine:F6} < {minimum}");
        for (int i = 0; i < texts.Count; i++)
            Assert.True(textStats[i].Cosine >= minimum, $"{model} {precision}: text {i} cosine {textStats[i].Cosine:F6} < {minimum}");
    }

    [Theory]
    [MemberData(nameof(ModelsAndModes))]
    public void ZeroShotTopOneIsUnchanged(string model, int mode)
    {
        var precision = (ClipPrecision)mode;
        var reduced = models[(model, precision)].Value;
        var exact = Float32(model);
        var sets = JsonDocument.Parse(File.ReadAllText(Path.Combine(Folder(model), "zeroshot.json"))).RootElement.GetProperty("label_sets");
        var byName = ReferenceImages(model).ToDictionary(i => i.Name, i => i.Input);
        var failures = new List<string>();
        foreach (var set in sets.EnumerateObject())
        {
            var labels = set.Value.GetProperty("labels").EnumerateArray().Select(e => e.GetString()!).ToList();
            var rows = set.Value.GetProperty("rows").EnumerateArray().Select(e => byName[e.GetString()!]).ToList();
            var expected = exact.Classify(rows, labels);
            var actual = reduced.Classify(rows, labels);
            int agree = 0;
            double largestDifference = 0;
            for (int i = 0; i < rows.Count; i++)
            {
                int top = ArgMax(expected[i].Probabilities), reducedTop = ArgMax(actual[i].Probabilities);
                if (top == reducedTop) agree++;
                else failures.Add($"{set.Name} {Path.GetFileName(rows[i].Name)}: float32 says {labels[top]} ({expected[i].Probabilities[top]:F4}), {precision} says {labels[reducedTop]} ({actual[i].Probabilities[reducedTop]:F4})");
                for (int j = 0; j < labels.Count; j++)
                    largestDifference = Math.Max(largestDifference, Math.Abs(expected[i].Probabilities[j] - actual[i].Probabilities[j]));
            }
            log.WriteLine($"| {model} | {precision} | {set.Name} ({rows.Count} × {labels.Count}) | top-1 agree {agree}/{rows.Count} | max |Δp| {largestDifference:E2} |");
        }
        Assert.True(failures.Count == 0, string.Join("; ", failures));
    }

    [Theory]
    [InlineData((int)ClipPrecision.BFloat16)]
    [InlineData((int)ClipPrecision.Int8)]
    public void QuantizationErrorByLayerType(int mode)
    {
        // Relative error ‖y − y₃₂‖ / ‖y₃₂‖ of each step's output in the full-size model, against the float32 model's
        // same step on the same image and text, averaged over the 12 blocks by layer type. It includes what the
        // layers before passed on, so it shows where error enters and how it grows; logged for docs/PRECISION.md.
        var precision = (ClipPrecision)mode;
        var directory = ManagedClip.IO.Distribution.ModelDirectory.Resolve(TestModels.FullDirectory);
        var config = directory.Config;
        using var store = directory.OpenWeights();
        var pixels = ManagedClip.Tests.Model.TinyModel.Instance.Pixels("ihc"); // [3, 224, 224], as upstream preprocessed it
        var ids = TestModels.Full.Tokenize("this is a photo of adenocarcinoma histopathology");
        var exactTrace = new AllSteps();
        var reducedTrace = new AllSteps();
        foreach (var (trace, source) in new[] { (exactTrace, new StoreWeights(store)), (reducedTrace, new StoreWeights(store, precision: precision)) })
        {
            var vision = VisionTransformer.Load(source, config.Vision, config.EmbedDim, store);
            var text = BertTextEncoder.Load(source, config.Text, config.EmbedDim, store);
            vision.Forward(pixels, 1, new float[config.EmbedDim], trace);
            text.Forward(ids, [ids.Length], new float[config.EmbedDim], trace);
        }
        var byType = new SortedDictionary<string, List<double>>(StringComparer.Ordinal);
        foreach (var (name, expected) in exactTrace.Outputs)
        {
            string type = LayerType(name);
            if (type.Length == 0 || !reducedTrace.Outputs.TryGetValue(name, out var actual)) continue;
            double difference = 0, norm = 0;
            for (int i = 0; i < expected.Length; i++)
            {
                difference += Math.Pow(actual[i] - expected[i], 2);
                norm += Math.Pow(expected[i], 2);
            }
            if (!byType.TryGetValue(type, out var list)) byType[type] = list = [];
            list.Add(Math.Sqrt(difference / Math.Max(norm, 1e-30)));
        }
        Assert.NotEmpty(byType);
        foreach (var (type, errors) in byType)
            log.WriteLine($"| {precision} | {type} | mean {errors.Average():E2} | max {errors.Max():E2} | ({errors.Count} steps) |");
        // Every quantized layer type is seen, and no step's error is larger than the output itself.
        Assert.Contains("vision mlp.fc2", byType.Keys);
        Assert.Contains("text output.dense (FFN out)", byType.Keys);
        Assert.All(byType.Values.SelectMany(v => v), e => Assert.InRange(e, 0, 1));
    }

    private static string LayerType(string step)
    {
        string tower = step.StartsWith("visual.", StringComparison.Ordinal) ? "vision" : "text";
        if (!step.Contains(".blocks.", StringComparison.Ordinal) && !step.Contains(".encoder.layer.", StringComparison.Ordinal)) return "";
        foreach (var suffix in new[] { "attn.qkv", "attn.proj", "mlp.fc1", "mlp.fc2", "norm1", "norm2" })
            if (step.EndsWith("." + suffix, StringComparison.Ordinal)) return $"{tower} {suffix}";
        if (step.EndsWith(".attention.self", StringComparison.Ordinal)) return "text attention.self (qkv)";
        if (step.EndsWith(".attention.output.dense", StringComparison.Ordinal)) return "text attention.output.dense";
        if (step.EndsWith(".intermediate.dense", StringComparison.Ordinal)) return "text intermediate.dense";
        if (step.EndsWith(".output.dense", StringComparison.Ordinal)) return "text output.dense (FFN out)";
        if (step.EndsWith(".scaled_dot_product_attention", StringComparison.Ordinal)) return $"{tower} attention core";
        return "";
    }

    /// <summary>Every step's last output.</summary>
    private sealed class AllSteps : ForwardHook
    {
        public Dictionary<string, float[]> Outputs { get; } = new();

        protected override void OnStep(string name, ReadOnlySpan<float> output, int width, long multiplyAdds) =>
            Outputs[name] = output.ToArray();
    }

    private static List<(string Name, ImageInput Input)> ReferenceImages(string model)
    {
        var files = JsonDocument.Parse(File.ReadAllText(Path.Combine(TestData.Images, "images.json"))).RootElement
            .EnumerateArray().ToDictionary(e => e.GetProperty("name").GetString()!, e => e.GetProperty("file").GetString()!);
        var names = JsonDocument.Parse(File.ReadAllText(Path.Combine(Folder(model), "zeroshot.json"))).RootElement
            .GetProperty("label_sets").EnumerateObject()
            .SelectMany(s => s.Value.GetProperty("rows").EnumerateArray().Select(e => e.GetString()!)).Distinct();
        return names.Select(n => (n, ImageInput.FromFile(Path.Combine(TestData.Images, files[n])))).ToList();
    }

    private static int ArgMax(float[] values) => Array.IndexOf(values, values.Max());

    private static (double Cosine, double MaxAbs, double Magnitude) Compare(float[] expected, float[] actual)
    {
        double dot = 0, ee = 0, aa = 0, maxAbs = 0, magnitude = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            dot += (double)expected[i] * actual[i];
            ee += (double)expected[i] * expected[i];
            aa += (double)actual[i] * actual[i];
            maxAbs = Math.Max(maxAbs, Math.Abs(expected[i] - actual[i]));
            magnitude = Math.Max(magnitude, Math.Abs(expected[i]));
        }
        return (dot / Math.Sqrt(ee * aa), maxAbs, magnitude);
    }
}
