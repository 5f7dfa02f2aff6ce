using ManagedClip.IO.Formats;
using ManagedClip.Model;

namespace ManagedClip.Tests.Model;

/// <summary>A layer asked to pack its weight does so while loading, and computes the same bits as one read in place.</summary>
public sealed class LinearTests
{
    [Fact]
    public void PackedLayersArePackedByLoadAndAgreeBitwiseWithInPlaceOnes()
    {
        using var store = SafeTensorsFile.Open(Path.Combine(TestData.Tiny, "model.safetensors"));
        var fc1 = new StoreWeights(store).At("visual.trunk.blocks.0.mlp.fc1");
        var shape = store.Info(fc1.NameOf("weight")).Shape; // [outputs, inputs]
        int outputs = (int)shape[0], inputs = (int)shape[1];
        var inPlace = Linear.Load(fc1, outputs, inputs, hasBias: true, packed: false);
        var packed = Linear.Load(fc1, outputs, inputs, hasBias: true, packed: true);
        Assert.False(inPlace.IsPacked);
        Assert.True(packed.IsPacked); // before any product ran

        const int rows = 17;
        var random = new Random(5);
        var x = Enumerable.Range(0, rows * inputs).Select(_ => random.NextSingle() * 2 - 1).ToArray();
        var expected = new float[rows * outputs];
        var actual = new float[rows * outputs];
        inPlace.Apply(x, expected);
        packed.Apply(x, actual);
        Assert.Equal(expected, actual); // same k-blocks, same order: tolerance 0
    }

    [Fact]
    public void StackedLayersComputeTheirPartsSideBySide()
    {
        // Each output of the stacked [3D, D] product is the same dot product, in the same k-blocks, as that of its own
        // layer: q | k | v side by side in every row, bit for bit.
        using var store = SafeTensorsFile.Open(Path.Combine(TestData.Tiny, "model.safetensors"));
        var self = new StoreWeights(store).At("text.transformer.encoder.layer.0.attention.self");
        string[] parts = ["query", "key", "value"];
        int width = (int)store.Info(self.NameOf("query.weight")).Shape[0];
        var stacked = Linear.LoadStacked(self, parts, width, width);
        Assert.True(stacked.IsPacked);
        Assert.Equal(parts.Select(self.NameOf), stacked.Parts);

        const int rows = 3;
        var random = new Random(6);
        var x = Enumerable.Range(0, rows * width).Select(_ => random.NextSingle() * 2 - 1).ToArray();
        var together = new float[rows * 3 * width];
        stacked.Apply(x, together);
        for (int p = 0; p < parts.Length; p++)
        {
            var alone = new float[rows * width];
            Linear.Load(self.At(parts[p]), width, width, hasBias: true, packed: false).Apply(x, alone);
            for (int r = 0; r < rows; r++)
                Assert.Equal(alone.AsSpan(r * width, width), together.AsSpan((r * 3 + p) * width, width));
        }
    }
}
