using BenchmarkDotNet.Attributes;
using ManagedClip.Model;

namespace ManagedClip.Benchmarks;

/// <summary>
/// The full-size image tower (ViT-B/16) on synthetic weights: one forward pass of BatchSize images.
/// Run: dotnet run -c Release --project benchmarks/ManagedClip.Benchmarks -- --filter '*ImageTowerBenchmarks*'
/// </summary>
[MemoryDiagnoser]
public class ImageTowerBenchmarks
{
    private VisionTransformer vision = null!;
    private float[] pixels = null!;   // [B, 3, 224, 224]
    private float[] features = null!; // [B, 512]

    /// <summary>Images per call.</summary>
    [Params(1, 8)]
    public int BatchSize { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var config = ClipConfig.BiomedClip;
        var store = new SyntheticTensorStore(config); // kept: the tower reads its head in place
        vision = VisionTransformer.Load(store, config.Vision, config.EmbedDim);
        var random = new Random(1);
        pixels = Enumerable.Range(0, BatchSize * 3 * 224 * 224).Select(_ => (float)random.NextDouble() * 4 - 2).ToArray();
        features = new float[BatchSize * config.EmbedDim];
    }

    [Benchmark]
    public void EncodeImages() => vision.Forward(pixels, BatchSize, features);
}

/// <summary>
/// The full-size text tower (BERT-base) on synthetic weights: six zero-shot-sized prompts in one call, and one
/// text of the full 256-token context.
/// Run: dotnet run -c Release --project benchmarks/ManagedClip.Benchmarks -- --filter '*TextTowerBenchmarks*'
/// </summary>
[MemoryDiagnoser]
public class TextTowerBenchmarks
{
    private BertTextEncoder text = null!;
    private int[] promptIds = null!;     // [Σ lengths] six prompts of 9..14 tokens, stacked
    private int[] promptLengths = null!; // [6]
    private int[] longIds = null!;       // [256]
    private float[] features = null!;    // [6, 512]

    [GlobalSetup]
    public void Setup()
    {
        var config = ClipConfig.BiomedClip;
        var store = new SyntheticTensorStore(config); // kept: the tower reads its head in place
        text = BertTextEncoder.Load(store, config.Text, config.EmbedDim);
        promptLengths = [9, 11, 11, 12, 10, 14];
        promptIds = promptLengths.SelectMany(Sequence).ToArray();
        longIds = Sequence(256);
        features = new float[promptLengths.Length * config.EmbedDim];
    }

    // [CLS] some ordinary ids [SEP]
    private static int[] Sequence(int length) =>
        Enumerable.Range(0, length).Select(i => i == 0 ? 2 : i == length - 1 ? 3 : 1000 + i).ToArray();

    [Benchmark]
    public void EncodeSixPrompts() => text.Forward(promptIds, promptLengths, features);

    [Benchmark]
    public void EncodeOneLongText() => text.Forward(longIds, [longIds.Length], features.AsSpan(0, 512));
}
