using ManagedClip.IO.Formats;
using ManagedClip.Model;
using ManagedClip.Tests.IO;

namespace ManagedClip.Tests.Model;

/// <summary>
/// A half-precision checkpoint: packed weights and small tensors are converted straight into the towers' own copies,
/// with no float32 copy kept beside them, and compute exactly what a float32 file holding the same (rounded) values
/// computes.
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
        // Packed weights are converted into their panels and small tensors into their arrays, nothing cached; only the
        // tensors read in place (the heads and the word embedding table) are converted once and kept by the store.
        Assert.Equal(["text.proj.0.weight", "text.proj.2.weight", "text.transformer.embeddings.word_embeddings.weight", "visual.head.proj.weight"],
            half.ConvertedTensorNames.Order());

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
