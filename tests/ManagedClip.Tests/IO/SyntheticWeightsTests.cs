using System.Security.Cryptography;
using ManagedClip.IO;
using ManagedClip.IO.Distribution;
using ManagedClip.IO.Formats;
using static ManagedClip.IO.SyntheticWeights;

namespace ManagedClip.Tests.IO;

/// <summary>The synthetic-weight generator against SYNTHETIC_WEIGHTS.md and full/tensors.tsv.</summary>
public class SyntheticWeightsTests
{
    private static List<string[]> TensorsTsv()
    {
        var lines = File.ReadAllLines(Path.Combine(TestData.Full, "tensors.tsv"));
        Assert.Equal("name\tdtype\tshape\trule\tsha256_le", lines[0]);
        return lines.Skip(1).Select(l => l.Split('\t')).ToList();
    }

    [Theory]
    [InlineData("", 0xCBF29CE484222325)]
    [InlineData("a", 0xAF63DC4C8601EC8C)]
    [InlineData("logit_scale", 0xCCDA59A2223EA645)]
    [InlineData("visual.trunk.cls_token", 0x80529E6FB4668C85)]
    [InlineData("text.proj.2.weight", 0x78913746F66947FF)]
    public void Fnv1aMatchesTheTestVectors(string text, ulong expected) => Assert.Equal(expected, Fnv1a64(text));

    /// <summary>The first three draws and values of the four tensors SYNTHETIC_WEIGHTS.md lists (bits compared exactly).</summary>
    [Theory]
    [InlineData("visual.trunk.cls_token", 0x3FD25A5080000000, 0x3BBBEEBD, 0x3FCE9F8700000000, 0x3B9CCA61, 0x3FE1FE5F00000000, 0x3C38413D)]
    [InlineData("visual.trunk.blocks.0.norm1.weight", 0x3FDDD9EF00000000, 0x3F85F863, 0x3FE80DAB80000000, 0x3F899F11, 0x3FE4CDA640000000, 0x3F885242)]
    [InlineData("text.proj.2.weight", 0xBFDF8C3100000000, 0xBC9F9EA8, 0x3FE522E040000000, 0x3CD5E237, 0x3FC4F69600000000, 0x3BD42208)]
    [InlineData("text.transformer.embeddings.LayerNorm.bias", 0x3FEC385C80000000, 0x3C907CBB, 0x3FDCD7D680000000, 0x3C13AD40, 0xBFDEBFB980000000, 0xBC1D6F3B)]
    public void FirstValuesMatchTheTestVectors(string name, ulong r0, uint v0, ulong r1, uint v1, ulong r2, uint v2)
    {
        var tensor = Tensors().Single(t => t.Name == name);
        long fanIn = tensor.Shape.Length >= 2 ? tensor.Shape.Aggregate(1L, (a, b) => a * b) / tensor.Shape[0] : 1;
        var draws = new Generator(name, RuleFor(tensor), fanIn);
        Assert.Equal([r0, r1, r2], Enumerable.Range(0, 3).Select(_ => (ulong)BitConverter.DoubleToInt64Bits(draws.NextR())));

        var values = new float[3];
        new Generator(name, RuleFor(tensor), fanIn).Fill(values);
        Assert.Equal([v0, v1, v2], values.Select(BitConverter.SingleToUInt32Bits));
    }

    [Fact]
    public void NamesShapesDtypesAndRulesMatchTensorsTsvInStateDictOrder()
    {
        var expected = TensorsTsv().Select(f => $"{f[0]}\t{f[1]}\t{f[2]}\t{f[3]}");
        var actual = Tensors().Select(t =>
            $"{t.Name}\t{(t.DType == TensorDType.I64 ? "int64" : "float32")}\t[{string.Join(", ", t.Shape)}]\t{RuleName(RuleFor(t))}");
        Assert.Equal(expected, actual);
        Assert.Equal(352, Tensors().Count);
    }

    private static string RuleName(Rule rule) => rule switch
    {
        Rule.NormWeight => "norm_weight", Rule.Bias => "bias", Rule.Embedding => "embedding", Rule.FanIn => "fan_in",
        Rule.LogitScale => "logit_scale", Rule.IntBuffer => "int_buffer", _ => rule.ToString(),
    };

    /// <summary>
    /// Writes the whole synthetic model folder, reopens it as a model directory (config parsed, weights validated
    /// against it), and checks the SHA-256 of every tensor's bytes against tensors.tsv: generator, writer and reader
    /// together. Hashing reads the memory-mapped file tensor by tensor, so the test never holds 784 MB in the heap.
    /// </summary>
    [Fact]
    public void WrittenModelFolderReproducesEveryTensorHash()
    {
        using var folder = new TempFolder();
        var vocabulary = Path.Combine(TestData.Reference, "vocab.txt");
        WriteModelDirectory(folder.Path, vocabulary);

        Assert.Equal(File.ReadAllBytes(Path.Combine(TestData.Full, "open_clip_config.json")), File.ReadAllBytes(folder.File("open_clip_config.json")));
        Assert.Equal(File.ReadAllBytes(vocabulary), File.ReadAllBytes(folder.File("vocab.txt")));
        Assert.Empty(Directory.GetFiles(folder.Path, "*.tmp"));

        var model = ModelDirectory.Open(folder.Path);
        Assert.Equal(folder.File("model.safetensors"), model.WeightsPath);
        using var store = model.OpenWeights();
        var raw = (IRawTensorSource)store;
        var rows = TensorsTsv();
        Assert.Equal(rows.Count, store.Names.Count);
        var mismatches = rows.AsParallel()
            .Where(row => Convert.ToHexStringLower(SHA256.HashData(raw.RawBytes(row[0]))) != row[4])
            .Select(row => row[0]).ToList();
        Assert.True(mismatches.Count == 0, "hash differs for: " + string.Join(", ", mismatches.Take(10)));
        Assert.Empty(store.Info("logit_scale").Shape); // written as a true 0-D scalar
    }

    [Fact]
    public void RefusesToOverwriteAndWritesNothingThen()
    {
        using var folder = new TempFolder();
        var config = folder.Write("open_clip_config.json", [1, 2]);
        var error = Assert.Throws<IOException>(() => WriteModelDirectory(folder.Path, null));
        Assert.Contains(config, error.Message);
        Assert.Equal([1, 2], File.ReadAllBytes(config));
        Assert.False(File.Exists(folder.File("model.safetensors")));
    }

    [Fact]
    public void RefusesAMissingVocabularySource()
    {
        using var folder = new TempFolder();
        Assert.Throws<FileNotFoundException>(() => WriteModelDirectory(folder.Path, folder.File("nope.txt")));
        Assert.Empty(Directory.GetFileSystemEntries(folder.Path));
    }
}
