using ManagedClip.IO;
using ManagedClip.Model;

namespace ManagedClip.Tests.Model;

/// <summary>A layer asked to pack its weight does so while loading, and computes the same bits as one read in place.</summary>
public sealed class LinearTests
{
    [Fact]
    public void PackedLayersArePackedByLoadAndAgreeBitwiseWithInPlaceOnes()
    {
        using var store = SafeTensorsFile.Open(Path.Combine(SharedData.Tiny, "model.safetensors"));
        const string name = "visual.trunk.blocks.0.mlp.fc1";
        var shape = store.Info(name + ".weight").Shape; // [outputs, inputs]
        int outputs = (int)shape[0], inputs = (int)shape[1];
        var inPlace = Linear.Load(store, name, outputs, inputs, hasBias: true);
        var packed = Linear.Load(store, name, outputs, inputs, hasBias: true, packed: true);
        Assert.False(inPlace.IsPacked);
        Assert.True(packed.IsPacked); // before any product ran

        const int rows = 17;
        var random = new Random(5);
        var x = Enumerable.Range(0, rows * inputs).Select(_ => random.NextSingle() * 2 - 1).ToArray();
        var expected = new float[rows * outputs];
        var actual = new float[rows * outputs];
        inPlace.Apply(x, rows, expected);
        packed.Apply(x, rows, actual);
        Assert.Equal(expected, actual); // same k-blocks, same order: tolerance 0
    }

    [Fact]
    public void StackedLayersPackTheirPartsInOrder()
    {
        using var store = SafeTensorsFile.Open(Path.Combine(SharedData.Tiny, "model.safetensors"));
        const string self = "text.transformer.encoder.layer.0.attention.self.";
        string[] names = [self + "query", self + "key", self + "value"];
        int width = (int)store.Info(names[0] + ".weight").Shape[0];
        var inPlace = Linear.LoadStacked(store, names, width, width);
        var packed = Linear.LoadStacked(store, names, width, width, packed: true);
        Assert.True(packed.IsPacked);

        const int rows = 3;
        var random = new Random(6);
        var x = Enumerable.Range(0, rows * width).Select(_ => random.NextSingle() * 2 - 1).ToArray();
        var expected = new float[rows * 3 * width];
        var actual = new float[rows * 3 * width];
        inPlace.Apply(x, rows, expected);
        packed.Apply(x, rows, actual);
        Assert.Equal(expected, actual);
    }
}

/// <summary>
/// A half-precision checkpoint: packed weights are converted straight into their panels, with no float32 copy kept
/// beside them, and compute exactly what a float32 file holding the same (rounded) values computes.
/// </summary>
public sealed class HalfPrecisionWeightTests : IDisposable
{
    private readonly ManagedClip.Tests.IO.TempFolder folder = new();

    public void Dispose() => folder.Dispose();

    [Fact]
    public void F16TowersKeepNoFloat32CopyOfPackedWeightsAndMatchAnF32FileOfTheSameValues()
    {
        string halfPath = folder.File("half.safetensors"), singlePath = folder.File("rounded.safetensors");
        using (var tiny = SafeTensorsFile.Open(Path.Combine(SharedData.Tiny, "model.safetensors")))
        {
            var names = tiny.Names.Where(n => tiny.Info(n).DType == TensorDType.F32).ToArray();
            var halves = names.ToDictionary(n => n, n => tiny.ReadFloat32(n, tiny.Info(n).Shape).Select(v => (Half)v).ToArray());
            SafeTensorsWriter.Write(halfPath, names.Select(n => SafeTensorsWriter.Float16(n, tiny.Info(n).Shape, halves[n])));
            SafeTensorsWriter.Write(singlePath, names.Select(n => SafeTensorsWriter.Float32(n, tiny.Info(n).Shape, halves[n].Select(h => (float)h).ToArray())));
        }

        using var half = SafeTensorsFile.Open(halfPath);
        using var single = SafeTensorsFile.Open(singlePath);
        var halfVision = VisionTransformer.Load(half, TinyModel.VisionConfig, TinyModel.EmbedDim);
        var halfText = BertTextEncoder.Load(half, TinyModel.TextConfig, TinyModel.EmbedDim);
        string[] packedSuffixes = ["patch_embed.proj.weight", "attn.qkv.weight", "attn.proj.weight", "mlp.fc1.weight", "mlp.fc2.weight",
            "attention.self.query.weight", "attention.self.key.weight", "attention.self.value.weight",
            "attention.output.dense.weight", "intermediate.dense.weight", "output.dense.weight"];
        Assert.DoesNotContain(half.ConvertedTensorNames, n => packedSuffixes.Any(n.EndsWith));
        Assert.Contains("visual.trunk.pos_embed", half.ConvertedTensorNames); // small tensors are still converted and cached

        var singleVision = VisionTransformer.Load(single, TinyModel.VisionConfig, TinyModel.EmbedDim);
        var singleText = BertTextEncoder.Load(single, TinyModel.TextConfig, TinyModel.EmbedDim);
        var random = new Random(7);
        var pixels = Enumerable.Range(0, 3 * 224 * 224).Select(_ => random.NextSingle() * 4 - 2).ToArray();
        var fromHalf = new float[TinyModel.EmbedDim];
        var fromSingle = new float[TinyModel.EmbedDim];
        halfVision.Forward(pixels, 1, fromHalf);
        singleVision.Forward(pixels, 1, fromSingle);
        Assert.Equal(fromSingle, fromHalf); // F16 → F32 is exact: the same floats, the same sums, tolerance 0
        int[] ids = [2, 1805, 1744, 42, 7745, 3];
        halfText.Forward(ids, [ids.Length], fromHalf);
        singleText.Forward(ids, [ids.Length], fromSingle);
        Assert.Equal(fromSingle, fromHalf);
    }
}
