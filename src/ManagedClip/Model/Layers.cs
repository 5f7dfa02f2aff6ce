using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using ManagedClip.IO.Formats;
using ManagedClip.Kernels;

namespace ManagedClip.Model;

/// <summary>
/// A PyTorch <c>nn.Linear</c>: y = x·Wᵀ + b, with W read in place from the tensor store (no copy).
/// Both towers are built from these and <see cref="LayerNormWeights"/>; the kernels do the arithmetic.
/// </summary>
internal sealed class Linear
{
    private readonly WeightMatrix weight; // [outputs, inputs]: a view of the store's memory, or its own packed panels
    private readonly float[] bias;        // [outputs], or empty when the layer has none

    private Linear(WeightMatrix weight, float[] bias)
    {
        this.weight = weight;
        this.bias = bias;
    }

    /// <summary>Output features.</summary>
    public int OutputCount => weight.RowCount;

    /// <summary>True when the weight is held in the GEMM's panel layout (see <see cref="Load"/>).</summary>
    public bool IsPacked => weight.IsPacked;

    /// <summary>
    /// Loads <c>{name}.weight</c> [outputs, inputs] and, if <paramref name="hasBias"/>, <c>{name}.bias</c> [outputs].
    /// The weight stays in <paramref name="store"/>, which must stay open while the layer is used.
    /// <paramref name="storedShape"/> is the weight's shape in the file when it is not [outputs, inputs] but holds
    /// the same values row-major (a convolution kernel [D, 3, P, P] is the Linear weight [D, 3·P·P]).
    /// With <paramref name="packed"/> the weight is instead read from the file now and rearranged, once, into the
    /// GEMM's panel layout (a private copy; an F16/BF16 weight is converted on the way and not kept as float32
    /// too), so no product packs it again: worth it for layers used on every pass (the towers' blocks), not for the
    /// small heads.
    /// </summary>
    public static Linear Load(TensorStore store, string name, int outputCount, int inputCount, bool hasBias,
        long[]? storedShape = null, bool packed = false)
    {
        string weightName = name + ".weight";
        storedShape ??= [outputCount, inputCount];
        WeightMatrix weight;
        if (packed)
        {
            store.CheckShape(weightName, storedShape);
            weight = WeightMatrix.Packed(outputCount, inputCount, values => store.CopyFloat32(weightName, values));
        }
        else
        {
            weight = View(store, weightName, outputCount, inputCount, storedShape);
        }
        return new(weight, hasBias ? store.GetFloat32(name + ".bias", outputCount).ToArray() : []);
    }

    /// <summary>
    /// Stacks several Linear layers with the same input into one (their weights row after row), so a single GEMM
    /// computes all their outputs side by side in each row: BERT's query, key and value become one [3H, H] product.
    /// The weights stay where they are in the store; only the list of row addresses is joined (or, with
    /// <paramref name="packed"/>, they are read one after another and packed together now, as in <see cref="Load"/>).
    /// </summary>
    public static Linear LoadStacked(TensorStore store, string[] names, int outputCount, int inputCount, bool packed = false)
    {
        WeightMatrix weight;
        if (packed)
        {
            foreach (string name in names) store.CheckShape(name + ".weight", outputCount, inputCount);
            int partLength = outputCount * inputCount;
            weight = WeightMatrix.Packed(names.Length * outputCount, inputCount, values =>
            {
                for (int i = 0; i < names.Length; i++)
                    store.CopyFloat32(names[i] + ".weight", values.Slice(i * partLength, partLength));
            });
        }
        else
        {
            weight = WeightMatrix.Stack(names.Select(n => View(store, n + ".weight", outputCount, inputCount, [outputCount, inputCount])).ToArray());
        }
        var biases = new float[names.Length * outputCount]; // [parts·outputs]
        for (int i = 0; i < names.Length; i++)
            store.GetFloat32(names[i] + ".bias", outputCount).CopyTo(biases.AsSpan(i * outputCount));
        return new(weight, biases);
    }

    /// <summary>A weight read in place: F32 tensors are views of the mapped file, others the store's converted copies.</summary>
    private static unsafe WeightMatrix View(TensorStore store, string name, int outputCount, int inputCount, long[] storedShape)
    {
        var values = store.GetFloat32(name, storedShape);
        // Neither the mapping nor the store's pinned converted arrays move, so the address stays valid until the
        // store is disposed; the weight keeps the store referenced so it is not collected (and unmapped) first.
        float* start = (float*)Unsafe.AsPointer(ref MemoryMarshal.GetReference(values));
        return WeightMatrix.View(start, outputCount, inputCount, owner: store);
    }

    /// <summary>Applies the layer to <paramref name="rowCount"/> rows: output [rows, outputs] from input [rows, inputs].</summary>
    public void Apply(ReadOnlySpan<float> input, int rowCount, Span<float> output, GemmEpilogue epilogue = GemmEpilogue.Store) =>
        Gemm.Multiply(input.Slice(0, rowCount * weight.ColumnCount), rowCount, weight, bias,
            output.Slice(0, rowCount * weight.RowCount), epilogue);
}

/// <summary>A PyTorch <c>nn.LayerNorm</c> over the last dimension.</summary>
internal sealed class LayerNormWeights
{
    private readonly float[] gamma; // [width]
    private readonly float[] beta;  // [width]
    private readonly float eps;

    private LayerNormWeights(float[] gamma, float[] beta, float eps)
    {
        this.gamma = gamma;
        this.beta = beta;
        this.eps = eps;
    }

    /// <summary>Loads <c>{name}.weight</c> and <c>{name}.bias</c>, both [width].</summary>
    public static LayerNormWeights Load(TensorStore store, string name, int width, float eps) =>
        new(store.GetFloat32(name + ".weight", width).ToArray(), store.GetFloat32(name + ".bias", width).ToArray(), eps);

    /// <summary>Normalises <paramref name="rowCount"/> rows; <paramref name="output"/> may be the input itself.</summary>
    public void Apply(ReadOnlySpan<float> input, int rowCount, Span<float> output)
    {
        int width = gamma.Length;
        LayerNorm.Apply(input.Slice(0, rowCount * width), gamma, beta, eps, output.Slice(0, rowCount * width), width);
    }
}
