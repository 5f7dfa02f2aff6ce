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
        using var store = SafeTensorsFile.Open(Path.Combine(TestData.Tiny, "model.safetensors"));
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
