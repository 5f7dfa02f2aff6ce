using ManagedClip.IO.Formats;
using System.Text;
using ManagedClip.IO;

namespace ManagedClip.Tests.IO;

/// <summary>
/// Checkpoints open_clip 2.23's <c>load_state_dict</c> accepts: a training checkpoint that keeps the weights under
/// "state_dict" beside epoch and optimizer state, and keys saved under DataParallel ("module." + name, decided by
/// the first key, the first 7 characters of every key dropped).
/// </summary>
public sealed class CheckpointWrapperTests : IDisposable
{
    private static readonly float[] Six = [1, 2, 3, 4, 5, 6];
    private readonly TempFolder folder = new();

    public void Dispose() => folder.Dispose();

    /// <summary>{"epoch": 3, "name": "run", "state_dict": {w, b}, "optimizer": {"state": {}, "param_groups": [{"lr": 5e-4, "params": [0, 1]}]}}.</summary>
    private static byte[] TrainingCheckpoint(string prefix)
    {
        var pickle = new PickleBuilder().Proto().EmptyDict().Mark()
            .Unicode("epoch").Int(3)
            .Unicode("name").Unicode("run")
            .Unicode("state_dict").EmptyDict().Mark()
                .Unicode(prefix + "w").Tensor("FloatStorage", "0", 6, 0, [2, 3], [3, 1])
                .Unicode(prefix + "b").Tensor("FloatStorage", "0", 6, 4, [2], [1])
                .SetItems()
            .Unicode("optimizer").EmptyDict().Mark()
                .Unicode("state").EmptyDict()
                .Unicode("param_groups").Op(']').EmptyDict().Mark()
                    .Unicode("lr").Op('G').Raw(BitConverter.GetBytes(5e-4).Reverse().ToArray())
                    .Unicode("amsgrad").False()
                    .Unicode("params").Op(']').Mark().Int(0).Int(1).Op('e')
                    .SetItems().Op('a')
                .SetItems()
            .SetItems().Stop().ToArray();
        return ZipBuilder.Checkpoint(pickle, ("0", ZipBuilder.Floats(Six)));
    }

    [Fact]
    public void StateDictWrapperIsUnwrapped()
    {
        using var store = TorchCheckpoint.Open(folder.Write("train.pt", TrainingCheckpoint("")));
        Assert.Equal(["w", "b"], store.Names);
        Assert.Equal(Six, store.GetFloat32("w").ToArray());
        Assert.Equal([5f, 6f], store.GetFloat32("b").ToArray());
    }

    [Fact]
    public void DataParallelPrefixIsDroppedFromTorchCheckpoints()
    {
        using var store = TorchCheckpoint.Open(folder.Write("dp.pt", TrainingCheckpoint("module.")));
        Assert.Equal(["w", "b"], store.Names);
        Assert.Equal(Six, store.GetFloat32("w").ToArray());
    }

    /// <summary>safetensors' load_file lists names sorted: the smallest name decides, as in open_clip.</summary>
    [Fact]
    public void DataParallelPrefixIsDroppedFromSafetensors()
    {
        var path = folder.File("dp.safetensors");
        SafeTensorsWriter.Write(path,
        [
            SafeTensorsWriter.Float32("module.z", [2], new float[] { 1, 2 }),
            SafeTensorsWriter.Float32("module.a", [2], new float[] { 3, 4 }),
        ], new Dictionary<string, string>(), overwrite: false);
        using var store = SafeTensorsFile.Open(path);
        Assert.Equal(["a", "z"], store.Names.Order());
        Assert.Equal([3f, 4f], store.GetFloat32("a").ToArray());
    }

    /// <summary>The tiny model saved under DataParallel inside a training checkpoint gives the same features as the original.</summary>
    [Fact]
    public void WrappedTinyModelLoadsAndComputesTheSameFeatures()
    {
        using var original = SafeTensorsFile.Open(Path.Combine(TestData.Tiny, "model.safetensors"));
        var path = folder.File("wrapped.safetensors");
        SafeTensorsWriter.Write(path, original.Names.Select(n => new SafeTensorsWriter.Entry(original.Info(n) with { Name = "module." + n },
            s => s.Write(((IRawTensorSource)original).RawBytes(n)))), new Dictionary<string, string>(), overwrite: false);
        using var wrapped = ClipModel.Load(TestData.Tiny, path);
        var image = Path.Combine(TestData.Images, "ihc.png");
        Assert.Equal(EndToEnd.TestModels.Tiny.EmbedImage(image), wrapped.EmbedImage(image));
        Assert.Equal(EndToEnd.TestModels.Tiny.EmbedText("tumor"), wrapped.EmbedText("tumor"));
    }
}
