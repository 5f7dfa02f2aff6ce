using System.Text.Json;
using ManagedClip.IO.Formats;
using ManagedClip.Model;

namespace ManagedClip.Tests.Model;

/// <summary>
/// The tiny reference model (real BiomedCLIP architecture, width 64, 2 blocks/layers, 2 heads, embed 32), loaded
/// once per test run, with the reference outputs PyTorch produced for it (testdata/reference/tiny/).
/// </summary>
internal sealed class TinyModel
{
    private static readonly Lazy<TinyModel> instance = new(() => new TinyModel());

    public static TinyModel Instance => instance.Value;

    // tiny/open_clip_config.json timm_model_args: patch 16, embed_dim 64, depth 2, 2 heads, mlp_ratio 4, img 224.
    public static VisionConfig VisionConfig { get; } = new(224, 16, 64, 2, 2, 256);

    // tiny/text_config/config.json: vocab 30522, hidden 64, 2 layers, 2 heads, intermediate 256, 512 positions,
    // 2 token types, eps 1e-12; open_clip context length 256.
    public static TextConfig TextConfig { get; } = new(30522, 64, 2, 2, 256, 512, 2, 1e-12f, 256);

    public const int EmbedDim = 32;

    /// <summary>Image names in images.json order (the rows of the zero-shot tables).</summary>
    public static string[] ImageNames => imageNames.Value;

    private static readonly Lazy<string[]> imageNames = new(() => JsonDocument.Parse(File.ReadAllText(TestData.File("reference", "images", "images.json")))
        .RootElement.EnumerateArray().Select(e => e.GetProperty("name").GetString()!).ToArray());

    public static IEnumerable<object[]> ImageNameData => ImageNames.Select(n => new object[] { n });

    /// <summary>text.00 … text.11 as in tiny/texts.json.</summary>
    public static string[] TextKeys => textKeys.Value;

    private static readonly Lazy<string[]> textKeys = new(() => JsonDocument.Parse(File.ReadAllText(TestData.File("reference", "tiny", "texts.json")))
        .RootElement.EnumerateArray().Select(e => e.GetProperty("key").GetString()!).ToArray());

    public static IEnumerable<object[]> TextKeyData => TextKeys.Select(k => new object[] { k });

    public VisionTransformer Vision { get; }
    public BertTextEncoder Text { get; }

    /// <summary>tiny/model.safetensors, kept open for the test run: the towers' weights.</summary>
    public SafeTensorsFile Weights { get; }

    /// <summary>tiny/outputs.safetensors, kept open for the test run.</summary>
    public SafeTensorsFile Outputs { get; }

    private readonly string preprocessPath = TestData.PathOf("preprocess.safetensors");

    private TinyModel()
    {
        // The towers read their heads and the word embeddings in place, so the file stays open (mapped) for the test run.
        Weights = SafeTensorsFile.Open(Path.Combine(TestData.Tiny, "model.safetensors"));
        Vision = VisionTransformer.Load(Weights, VisionConfig, EmbedDim);
        Text = BertTextEncoder.Load(Weights, TextConfig, EmbedDim);
        Outputs = SafeTensorsFile.Open(Path.Combine(TestData.Tiny, "outputs.safetensors"));
    }

    /// <summary>A reference output tensor.</summary>
    public float[] Reference(string name) => Outputs.GetFloat32(name).ToArray();

    /// <summary>The reference pixel_values [3, 224, 224] of an image.</summary>
    public float[] Pixels(string image) => ReadFloat32(preprocessPath, image + ".pixel_values");

    /// <summary>
    /// One F32 tensor of a safetensors file, read directly: preprocess.safetensors also holds U8/I32 tensors,
    /// which the minimal SafeTensorsFile on this branch rejects when it opens the file. (Once the hardened
    /// reader from the IO work is merged, SafeTensorsFile.Open(...).GetFloat32 can replace this.)
    /// </summary>
    private static float[] ReadFloat32(string path, string name)
    {
        using var file = File.OpenRead(path);
        using var reader = new BinaryReader(file);
        long headerLength = reader.ReadInt64();
        var header = JsonDocument.Parse(reader.ReadBytes(checked((int)headerLength))).RootElement;
        var entry = header.GetProperty(name);
        Assert.Equal("F32", entry.GetProperty("dtype").GetString());
        var offsets = entry.GetProperty("data_offsets").EnumerateArray().Select(e => e.GetInt64()).ToArray();
        file.Position = 8 + headerLength + offsets[0];
        var values = new float[(offsets[1] - offsets[0]) / sizeof(float)];
        file.ReadExactly(System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()));
        return values;
    }

    /// <summary>The padded ids [256] of text.NN as the tokenizer produced them.</summary>
    public int[] PaddedIds(string textKey) => ToInt(Outputs.GetInt64(textKey + ".input_ids"));

    /// <summary>The ids of text.NN without the trailing padding.</summary>
    public int[] RealIds(string textKey)
    {
        var ids = PaddedIds(textKey);
        return ids[..BertTextEncoder.UnpaddedLength(ids)];
    }

    public static int[] ToInt(long[] ids) => ids.Select(id => checked((int)id)).ToArray();

    /// <summary>Features of several images, computed as one batch.</summary>
    public float[] ImageFeatures(IReadOnlyList<string> images)
    {
        var pixels = images.SelectMany(Pixels).ToArray();
        var features = new float[images.Count * EmbedDim];
        Vision.Forward(pixels, images.Count, features);
        return features;
    }

    /// <summary>Features of several id sequences, computed as one batch.</summary>
    public float[] TextFeatures(IReadOnlyList<int[]> sequences)
    {
        var features = new float[sequences.Count * EmbedDim];
        Text.Forward(sequences.SelectMany(s => s).ToArray(), sequences.Select(s => s.Length).ToArray(), features);
        return features;
    }
}
