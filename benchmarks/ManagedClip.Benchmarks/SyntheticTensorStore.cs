using ManagedClip.IO;
using ManagedClip.IO.Formats;
using ManagedClip.Model;

namespace ManagedClip.Benchmarks;

/// <summary>
/// An in-memory checkpoint for a <see cref="ClipConfig"/>: the tensors <see cref="ClipStateDict.Expected"/> lists (the
/// towers' own declaration of names and shapes), filled with the values <c>managedclip synth</c> writes
/// (<see cref="SyntheticWeights"/>). Enough to time the towers at full size without a file.
/// </summary>
internal sealed class SyntheticTensorStore : TensorStore
{
    private readonly Dictionary<string, (TensorInfo Info, float[] Values)> tensors = new();
    private readonly List<string> names = new();

    public SyntheticTensorStore(ClipConfig config)
    {
        foreach (var tensor in ClipStateDict.Expected(config).Where(t => t.UsedInForward)) // not the int64 position_ids
        {
            var info = new TensorInfo(tensor.Name, TensorDType.F32, tensor.Shape);
            var values = GC.AllocateArray<float>((int)info.ElementCount, pinned: true); // towers read the heads in place
            SyntheticWeights.Fill(tensor, values);
            tensors[tensor.Name] = (info, values);
            names.Add(tensor.Name);
        }
    }

    public override string SourcePath => "(synthetic)";
    public override IReadOnlyList<string> Names => names;
    public override TensorInfo Info(string name) => tensors[name].Info;
    public override bool Contains(string name) => tensors.ContainsKey(name);
    public override ReadOnlySpan<float> GetFloat32(string name) => tensors[name].Values;
    public override long[] GetInt64(string name) => throw new InvalidDataException($"{name} is not an integer tensor");
    protected override void Dispose(bool disposing) { }
}
