using System.Runtime.InteropServices;
using ManagedClip.IO.Formats;

namespace ManagedClip.Tests.IO;

/// <summary>The tiny reference checkpoint read from its two formats, checked against state_dict_keys.tsv.</summary>
public class TinyCheckpointTests
{
    private static string BinPath => Path.Combine(TestData.Tiny, "open_clip_pytorch_model.bin");
    private static string SafeTensorsPath => Path.Combine(TestData.Tiny, "model.safetensors");

    /// <summary>name → (dtype, shape) as the generator wrote them, in state-dict order.</summary>
    internal static List<(string Name, TensorDType DType, long[] Shape)> ExpectedKeys()
    {
        var lines = File.ReadAllLines(Path.Combine(TestData.Tiny, "state_dict_keys.tsv"));
        Assert.Equal("name\tdtype\tshape\tused_in_forward", lines[0]);
        return lines.Skip(1).Select(line =>
        {
            var fields = line.Split('\t');
            var dtype = fields[1] switch { "float32" => TensorDType.F32, "int64" => TensorDType.I64, var d => throw new FormatException(d) };
            var shape = fields[2].Trim('[', ']').Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Select(long.Parse).ToArray();
            return (fields[0], dtype, shape);
        }).ToList();
    }

    [Fact]
    public void TorchCheckpointMatchesTheKeyListExactlyInOrder()
    {
        using var store = TorchCheckpoint.Open(BinPath);
        var expected = ExpectedKeys();
        Assert.Equal(expected.Select(e => e.Name), store.Names);
        foreach (var (name, dtype, shape) in expected)
        {
            var info = store.Info(name);
            Assert.Equal(dtype, info.DType);
            Assert.Equal(shape, info.Shape);
        }
    }

    [Fact]
    public void SafeTensorsHoldsTheSameKeysDtypesAndShapes()
    {
        using var store = SafeTensorsFile.Open(SafeTensorsPath);
        var expected = ExpectedKeys();
        Assert.Equal(expected.Select(e => e.Name).Order(StringComparer.Ordinal), store.Names.Order(StringComparer.Ordinal));
        foreach (var (name, dtype, shape) in expected)
        {
            var info = store.Info(name);
            Assert.Equal(dtype, info.DType);
            // The fixture's safetensors writer stored the 0-D logit_scale as [1]; every other shape is identical.
            Assert.Equal(name == "logit_scale" ? [1] : shape, info.Shape);
        }
        Assert.Equal("pt", store.Metadata["format"]);
    }

    [Fact]
    public void BothFormatsHoldBitwiseIdenticalTensors()
    {
        using var bin = TorchCheckpoint.Open(BinPath);
        using var safe = SafeTensorsFile.Open(SafeTensorsPath);
        foreach (var name in bin.Names)
        {
            if (bin.Info(name).DType == TensorDType.I64)
            {
                Assert.Equal(safe.GetInt64(name), bin.GetInt64(name));
                continue;
            }
            var a = MemoryMarshal.AsBytes(bin.GetFloat32(name));
            var b = MemoryMarshal.AsBytes(safe.GetFloat32(name));
            Assert.True(a.SequenceEqual(b), $"tensor '{name}' differs between .bin and .safetensors");
        }
    }

    [Fact]
    public void PositionIdsAreZeroToFiveHundredEleven()
    {
        using var bin = TorchCheckpoint.Open(BinPath);
        Assert.Equal(Enumerable.Range(0, 512).Select(i => (long)i), bin.GetInt64("text.transformer.embeddings.position_ids"));
    }

    [Fact]
    public void LogitScaleIsLnHundred()
    {
        // README: logit_scale = ln(100) stored in float32.
        using var bin = TorchCheckpoint.Open(BinPath);
        Assert.Equal((float)Math.Log(100), bin.GetFloat32("logit_scale")[0]);
    }

    [Fact]
    public void OpenWeightsPicksTheReaderByMagic()
    {
        using (var store = TensorFiles.OpenWeights(BinPath)) Assert.IsType<TorchCheckpoint>(store);
        using (var store = TensorFiles.OpenWeights(SafeTensorsPath)) Assert.IsType<SafeTensorsFile>(store);
    }
}
