using ManagedClip.IO.Formats;
using ManagedClip.Model;
using ManagedClip.Tests.IO;

namespace ManagedClip.Tests.Model;

/// <summary>
/// A half-precision checkpoint: packed weights are converted straight into their panels, with no float32 copy kept
/// beside them, and compute exactly what a float32 file holding the same (rounded) values computes.
/// </summary>
public sealed class HalfPrecisionWeightTests : IDisposable
{
    private readonly TempFolder folder = new();

    public void Dispose() => folder.Dispose();

    [Fact]
    public void F16TowersKeepNoFloat32CopyOfPackedWeightsAndMatchAnF32FileOfTheSameValues()
    {
        string halfPath = folder.File("half.safetensors"), singlePath = folder.File("rounded.safetensors");
        using (var tiny = SafeTensorsFile.Open(Path.Combine(TestData.Tiny, "model.safetensors")))
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
