using System.Runtime.InteropServices;
using ManagedClip.IO;
using ManagedClip.IO.Distribution;
using ManagedClip.IO.Formats;

namespace ManagedClip.Tests.IO;

/// <summary>Converting the tiny torch checkpoint to safetensors keeps every tensor, bit for bit.</summary>
public sealed class CheckpointConverterTests : IDisposable
{
    private readonly TempFolder folder = new();
    private static string TinyBin => Path.Combine(TestData.Tiny, "open_clip_pytorch_model.bin");

    public void Dispose() => folder.Dispose();

    [Fact]
    public void RoundTripKeepsEveryTensorBitwise()
    {
        var output = folder.File("tiny.safetensors");
        Assert.Equal(72, CheckpointConverter.Convert(TinyBin, output));

        using var input = TorchCheckpoint.Open(TinyBin);
        using var converted = SafeTensorsFile.Open(output);
        Assert.Equal(input.Names.Order(StringComparer.Ordinal), converted.Names.Order(StringComparer.Ordinal));
        foreach (var name in input.Names)
        {
            Assert.Equal(input.Info(name).DType, converted.Info(name).DType);
            Assert.Equal(input.Info(name).Shape, converted.Info(name).Shape); // including the 0-D logit_scale
            var a = ((IRawTensorSource)input).RawBytes(name);
            var b = ((IRawTensorSource)converted).RawBytes(name);
            Assert.True(a.SequenceEqual(b), $"tensor '{name}' changed in conversion");
        }
        Assert.Equal(Enumerable.Range(0, 512).Select(i => (long)i), converted.GetInt64(ClipStateDict.PositionIdsName));
        Assert.Equal("pt", converted.Metadata["format"]);
        Assert.Empty(Directory.GetFiles(folder.Path, "*.tmp"));
    }

    [Fact]
    public void RefusesToOverwriteUnlessForced()
    {
        var output = folder.Write("exists.safetensors", [9]);
        Assert.Contains("already exists", Assert.Throws<IOException>(() => CheckpointConverter.Convert(TinyBin, output)).Message);
        Assert.Equal([9], File.ReadAllBytes(output));

        CheckpointConverter.Convert(TinyBin, output, force: true);
        using var converted = SafeTensorsFile.Open(output);
        Assert.Equal(72, converted.Names.Count);
    }

    [Fact]
    public void ConvertedFileIsAValidModelForTheTinyConfig()
    {
        var output = folder.File("tiny.safetensors");
        CheckpointConverter.Convert(TinyBin, output);
        var model = ModelDirectory.Open(TestData.Tiny, weightsOverride: output);
        using var store = model.OpenWeights();
        using var original = TorchCheckpoint.Open(TinyBin);
        Assert.Equal(
            MemoryMarshal.AsBytes(original.GetFloat32("visual.head.proj.weight")).ToArray(),
            MemoryMarshal.AsBytes(store.GetFloat32("visual.head.proj.weight")).ToArray());
    }
}
