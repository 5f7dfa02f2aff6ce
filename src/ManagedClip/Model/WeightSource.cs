using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using ManagedClip.IO.Formats;
using ManagedClip.Kernels;

namespace ManagedClip.Model;

/// <summary>
/// Where a tower's <c>Load</c> gets its tensors: by name under a module prefix, with the shape the config implies
/// (candle's <c>VarBuilder</c>: <c>vb.pp("trunk")</c>). The towers' <c>Load</c> methods are the one place the
/// checkpoint's names and shapes are written down. Over a checkpoint (<see cref="StoreWeights"/>) each request is
/// checked and read; over a <see cref="CheckpointLayout"/> it is only recorded, which is how the list of expected
/// tensors (validation, synthetic weights) and the module names (ONNX export, profiling) are derived from that code.
/// </summary>
internal abstract class WeightSource
{
    protected WeightSource(string prefix) => Prefix = prefix;

    /// <summary>The module this source stands for, as a state-dict prefix ("visual.trunk.blocks.0"); "" at the root.</summary>
    public string Prefix { get; }

    /// <summary>The tensors of a submodule: <c>At("attn")</c> under "visual.trunk.blocks.0" is "visual.trunk.blocks.0.attn".</summary>
    public abstract WeightSource At(string name);

    /// <summary>The full state-dict name of <paramref name="name"/> under this prefix.</summary>
    public string NameOf(string name) => Prefix.Length == 0 ? name : Prefix + "." + name;

    /// <summary>Asks for a tensor: checks (or records) that it exists with <paramref name="shape"/>, reading nothing yet.</summary>
    public abstract TensorRequest Request(string name, params long[] shape);

    /// <summary>A small tensor copied into an array of its own: norms, biases, class token, position embeddings.</summary>
    public abstract float[] Copy(string name, params long[] shape);

    /// <summary>A one-value tensor stored as [] or [1] (<c>logit_scale</c>).</summary>
    public abstract float Scalar(string name);

    /// <summary>
    /// A GEMM weight [Σ rows of the parts, <paramref name="inputs"/>], the parts stacked row after row (BERT's query,
    /// key and value), read now and packed into a private copy in the GEMM's panel layout (see <see cref="WeightMatrix.Packed"/>).
    /// </summary>
    public abstract WeightMatrix Packed(int inputs, params TensorRequest[] parts);

    /// <summary>
    /// As <see cref="Packed"/>, in the number format the model was loaded with (<see cref="ClipPrecision"/>): for the
    /// layers <see cref="ReducedPrecisionLayers"/> lists. Float32 unless the source was made with another precision.
    /// </summary>
    public virtual WeightMatrix PackedAtModelPrecision(int inputs, params TensorRequest[] parts) => Packed(inputs, parts);

    /// <summary>The panels' element type of <see cref="PackedAtModelPrecision"/> weights in a model loaded with <paramref name="precision"/>.</summary>
    public static PanelElement ElementOf(ClipPrecision precision) => precision switch
    {
        ClipPrecision.BFloat16 => PanelElement.BFloat16,
        ClipPrecision.Int8 => PanelElement.Int8,
        _ => PanelElement.Float32,
    };

    /// <summary>A GEMM weight read in place from the checkpoint, which must stay open while it is used (the small heads).</summary>
    public abstract WeightMatrix InPlace(TensorRequest weight);

    /// <summary>A table [rows, width] read in place, a row at a time (the word embeddings: only the ids present are read).</summary>
    public abstract EmbeddingTable Table(TensorRequest table);
}

/// <summary>A tensor a tower asked for: its full state-dict name and the shape the config implies.</summary>
internal sealed record TensorRequest(string Name, long[] Shape)
{
    /// <summary>Elements: the product of the shape (1 for a scalar).</summary>
    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);
}

/// <summary>
/// A weight a tower asked to have packed (<see cref="WeightSource.Packed"/>): its parts stacked row after row into
/// [<paramref name="Rows"/>, <paramref name="Columns"/>], in <paramref name="ElementType"/>. <paramref name="Name"/> is
/// the parts' state-dict names joined by " + " ("text.transformer.encoder.layer.0.attention.self.query.weight +
/// …key.weight + …value.weight"): the key a packed-weights file stores it under.
/// </summary>
internal sealed record PackedRequest(string Name, int Rows, int Columns, TensorRequest[] Parts, PanelElement ElementType = PanelElement.Float32)
{
    public static PackedRequest Of(int inputs, TensorRequest[] parts, PanelElement elementType = PanelElement.Float32) =>
        new(string.Join(" + ", parts.Select(p => p.Name)), checked((int)parts.Sum(p => p.Shape[0])), inputs, parts, elementType);
}

/// <summary>A tensor copied into an array at load, with the name it has in the checkpoint.</summary>
/// <param name="Name">Full state-dict name, e.g. <c>visual.trunk.pos_embed</c>.</param>
/// <param name="Values">Its elements, row-major.</param>
internal sealed record Parameter(string Name, float[] Values);

/// <summary>An embedding table [rows, width] read in place, one row per looked-up id.</summary>
internal sealed unsafe class EmbeddingTable
{
    private readonly float* start; // row 0, in memory that does not move (the mapped checkpoint); null for a layout
    private readonly object? owner; // keeps that memory alive

    public EmbeddingTable(string name, float* start, int rowCount, int width, object? owner)
    {
        Name = name;
        this.start = start;
        RowCount = rowCount;
        Width = width;
        this.owner = owner;
    }

    /// <summary>Full state-dict name.</summary>
    public string Name { get; }

    public int RowCount { get; }

    public int Width { get; }

    /// <summary>Row <paramref name="id"/> [width]; the caller has checked the id.</summary>
    public ReadOnlySpan<float> Row(int id)
    {
        if (start == null) throw new InvalidOperationException($"'{Name}' is a layout entry and holds no values");
        return new ReadOnlySpan<float>(start + (long)id * Width, Width);
    }
}

/// <summary>
/// Tensors read from a checkpoint: every request is checked against the file, then read or mapped; the weights of
/// <see cref="PackedAtModelPrecision"/> are converted to <c>precision</c>.
/// </summary>
internal sealed class StoreWeights(TensorStore store, string prefix = "", ClipPrecision precision = ClipPrecision.Float32)
    : WeightSource(prefix)
{
    public override WeightSource At(string name) => new StoreWeights(store, NameOf(name), precision);

    public override TensorRequest Request(string name, params long[] shape)
    {
        var request = new TensorRequest(NameOf(name), shape);
        store.CheckShape(request.Name, shape);
        return request;
    }

    public override float[] Copy(string name, params long[] shape) => store.ReadFloat32(Request(name, shape).Name, shape);

    public override float Scalar(string name)
    {
        string fullName = NameOf(name);
        if (!store.Contains(fullName)) throw new InvalidDataException($"{store.SourcePath}: tensor '{fullName}' is missing.");
        var values = store.GetFloat32(fullName);
        if (values.Length != 1)
            throw new InvalidDataException($"{store.SourcePath}: tensor '{fullName}' has {values.Length} values; one was expected.");
        return values[0];
    }

    public override WeightMatrix Packed(int inputs, params TensorRequest[] parts) => Pack(inputs, parts, PanelElement.Float32);

    public override WeightMatrix PackedAtModelPrecision(int inputs, params TensorRequest[] parts) => Pack(inputs, parts, ElementOf(precision));

    private WeightMatrix Pack(int inputs, TensorRequest[] parts, PanelElement elementType)
    {
        int outputs = checked((int)parts.Sum(p => p.Shape[0]));
        return WeightMatrix.Packed(outputs, inputs, rowMajor =>
        {
            // Read from the file rather than through the mapping, so its pages are not kept resident beside the copy;
            // an F16/BF16 tensor is converted on the way.
            long offset = 0;
            foreach (var part in parts)
            {
                int length = checked((int)part.ElementCount);
                store.CopyFloat32(part.Name, rowMajor.Slice((int)offset, length));
                offset += length;
            }
        }, elementType);
    }

    public override unsafe WeightMatrix InPlace(TensorRequest weight)
    {
        var values = store.GetFloat32(weight.Name, weight.Shape);
        // Neither the mapping nor the store's pinned converted arrays move, so the address stays valid until the store
        // is disposed; the weight keeps the store referenced so it is not collected (and unmapped) first.
        float* start = (float*)Unsafe.AsPointer(ref MemoryMarshal.GetReference(values));
        return WeightMatrix.View(start, checked((int)weight.Shape[0]), checked((int)(weight.ElementCount / weight.Shape[0])), owner: store);
    }

    public override unsafe EmbeddingTable Table(TensorRequest table)
    {
        var values = store.GetFloat32(table.Name, table.Shape);
        float* start = (float*)Unsafe.AsPointer(ref MemoryMarshal.GetReference(values));
        return new EmbeddingTable(table.Name, start, checked((int)table.Shape[0]), checked((int)table.Shape[1]), owner: store);
    }
}

/// <summary>
/// Another source's tensors, passed on as they are except for what a subclass overrides (usually how the GEMM weights
/// are packed): the one place the forwarding is written, for the sources that change one thing about another.
/// </summary>
internal abstract class ForwardingWeightSource(WeightSource inner) : WeightSource(inner.Prefix)
{
    /// <summary>The source this one changes.</summary>
    protected WeightSource Inner => inner;

    /// <summary>This kind of source over <paramref name="innerAt"/> (the inner source at a submodule): what <see cref="At"/> returns.</summary>
    protected abstract WeightSource Over(WeightSource innerAt);

    public sealed override WeightSource At(string name) => Over(inner.At(name));

    public override TensorRequest Request(string name, params long[] shape) => inner.Request(name, shape);

    public override float[] Copy(string name, params long[] shape) => inner.Copy(name, shape);

    public override float Scalar(string name) => inner.Scalar(name);

    public override WeightMatrix Packed(int inputs, params TensorRequest[] parts) => inner.Packed(inputs, parts);

    public override WeightMatrix PackedAtModelPrecision(int inputs, params TensorRequest[] parts) => inner.PackedAtModelPrecision(inputs, parts);

    public override WeightMatrix InPlace(TensorRequest weight) => inner.InPlace(weight);

    public override EmbeddingTable Table(TensorRequest table) => inner.Table(table);
}

/// <summary>
/// Tensors read from a checkpoint (<paramref name="checkpoint"/>), except that the weights the towers want packed come
/// from a mapped packed-weights file: the GEMM reads their panels where they lie, and nothing is read or rearranged.
/// The file holds the weights of <see cref="WeightSource.PackedAtModelPrecision"/> in the model's precision.
/// </summary>
internal sealed class MappedPanelWeights(WeightSource checkpoint, PackedWeightsFile panels, ClipPrecision precision = ClipPrecision.Float32)
    : ForwardingWeightSource(checkpoint)
{
    protected override WeightSource Over(WeightSource innerAt) => new MappedPanelWeights(innerAt, panels, precision);

    public override WeightMatrix Packed(int inputs, params TensorRequest[] parts) => panels.Matrix(PackedRequest.Of(inputs, parts));

    public override WeightMatrix PackedAtModelPrecision(int inputs, params TensorRequest[] parts) =>
        panels.Matrix(PackedRequest.Of(inputs, parts, ElementOf(precision)));
}

/// <summary>
/// Another source's weights, with the int8 ones given another activation outlier rule (<see cref="Int8Outliers"/>):
/// how <see cref="ClipModelOptions.Int8OutlierDecomposition"/> = false turns the rule off, whatever the weights came from.
/// </summary>
internal sealed class WithInt8Outliers(WeightSource inner, Int8Outliers outliers) : ForwardingWeightSource(inner)
{
    protected override WeightSource Over(WeightSource innerAt) => new WithInt8Outliers(innerAt, outliers);

    public override WeightMatrix PackedAtModelPrecision(int inputs, params TensorRequest[] parts) =>
        Inner.PackedAtModelPrecision(inputs, parts).WithInt8Outliers(outliers);
}

/// <summary>
/// Records what a tower's <c>Load</c> asks for, in the order it asks, and reads nothing: the checkpoint layout a
/// config implies. The tower it builds holds names and shapes but no weights (running it is refused). Made with a
/// precision, it records the element type each packed weight would have in a model loaded with it.
/// </summary>
internal sealed class CheckpointLayout : WeightSource
{
    private readonly List<TensorRequest> requests;
    private readonly List<PackedRequest> packed;
    private readonly ClipPrecision precision;

    public CheckpointLayout(ClipPrecision precision = ClipPrecision.Float32) : this([], [], "", precision)
    {
    }

    private CheckpointLayout(List<TensorRequest> requests, List<PackedRequest> packed, string prefix, ClipPrecision precision) : base(prefix)
    {
        this.requests = requests;
        this.packed = packed;
        this.precision = precision;
    }

    /// <summary>Every tensor asked for so far, in order.</summary>
    public IReadOnlyList<TensorRequest> Requests => requests;

    /// <summary>Every weight asked for packed so far, in order: what a packed-weights file holds.</summary>
    public IReadOnlyList<PackedRequest> PackedWeights => packed;

    public override WeightSource At(string name) => new CheckpointLayout(requests, packed, NameOf(name), precision);

    public override TensorRequest Request(string name, params long[] shape)
    {
        var request = new TensorRequest(NameOf(name), shape);
        requests.Add(request);
        return request;
    }

    public override float[] Copy(string name, params long[] shape) => new float[Request(name, shape).ElementCount];

    public override float Scalar(string name)
    {
        Request(name);
        return 0;
    }

    public override WeightMatrix Packed(int inputs, params TensorRequest[] parts) => Record(PackedRequest.Of(inputs, parts));

    public override WeightMatrix PackedAtModelPrecision(int inputs, params TensorRequest[] parts) =>
        Record(PackedRequest.Of(inputs, parts, ElementOf(precision)));

    private WeightMatrix Record(PackedRequest request)
    {
        packed.Add(request);
        return WeightMatrix.LayoutOnly(request.Rows, request.Columns);
    }

    public override WeightMatrix InPlace(TensorRequest weight) =>
        WeightMatrix.LayoutOnly(checked((int)weight.Shape[0]), checked((int)(weight.ElementCount / weight.Shape[0])));

    public override unsafe EmbeddingTable Table(TensorRequest table) =>
        new(table.Name, null, checked((int)table.Shape[0]), checked((int)table.Shape[1]), owner: null);
}
