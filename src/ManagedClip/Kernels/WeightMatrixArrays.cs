using System.Runtime.InteropServices;

namespace ManagedClip.Kernels;

/// <summary>The element type of one array a packed weight holds (a section of a packed-weights file).</summary>
internal enum WeightArrayType : uint
{
    Float32 = 1,
    BFloat16 = 2,
    Int8 = 3,
    Int32 = 4,
}

/// <summary>One array a packed weight of some shape holds: its name, element type and element count.</summary>
internal sealed record WeightArrayShape(string Name, WeightArrayType Type, long Count)
{
    /// <summary>Bytes of the array.</summary>
    public long ByteLength => Count * ElementBytes(Type);

    /// <summary>Bytes of one element of <paramref name="type"/>; 0 for a type this version does not know.</summary>
    public static int ElementBytes(WeightArrayType type) => type switch
    {
        WeightArrayType.Float32 or WeightArrayType.Int32 => 4,
        WeightArrayType.BFloat16 => 2,
        WeightArrayType.Int8 => 1,
        _ => 0,
    };
}

/// <summary>An array of a packed weight stored elsewhere (a mapped packed-weights file), at <paramref name="Start"/>.</summary>
internal sealed record StoredWeightArray(string Name, WeightArrayType Type, long Count, nint Start);

/// <summary>Receives one array of a packed weight, as its bytes (see <see cref="WeightMatrix.VisitArrays"/>).</summary>
internal delegate void WeightArrayVisitor(WeightArrayShape array, ReadOnlySpan<byte> bytes);

/// <summary>
/// A packed weight as a list of named arrays, and back: what a packed-weights file stores of each matrix
/// (<see cref="IO.Formats.PackedWeightsFile"/>). Every array a packed weight holds is listed here, in three places kept
/// together: <see cref="ArrayShapes"/> (what a weight of a shape holds), <see cref="VisitArrays"/> (its bytes) and
/// <see cref="FromArrays"/> (a weight over stored arrays). A new per-matrix array (say, per-channel smoothing factors)
/// is one line in each, and <see cref="LowPrecisionPacking.LayoutVersion"/> bumped.
/// <code>
///   element   array    type      count
///   float32   panels   float32   ⌈N/32⌉·K·32          [⌈N/32⌉, K, 32]
///   bf16      panels   bfloat16  ⌈N/32⌉·K·32          [⌈N/32⌉, K, 32]
///   int8      panels   int8      ⌈N/16⌉·⌈K/4⌉·16·4    [⌈N/16⌉, ⌈K/4⌉, 16, 4]
///             scales   float32   N                    s [N]
///             sums     int32     N                    Σₖ q[n, k] [N]
///             levels   int32     1                    the largest |q| the weight was quantized with
/// </code>
/// </summary>
internal sealed unsafe partial class WeightMatrix
{
    /// <summary>The arrays a packed weight [<paramref name="n"/>, <paramref name="k"/>] of <paramref name="elementType"/> holds, in order.</summary>
    internal static IReadOnlyList<WeightArrayShape> ArrayShapes(PanelElement elementType, int n, int k) => elementType switch
    {
        PanelElement.Float32 => [new("panels", WeightArrayType.Float32, PanelLength(n, k))],
        PanelElement.BFloat16 => [new("panels", WeightArrayType.BFloat16, LowPrecisionPacking.BFloat16Length(n, k))],
        PanelElement.Int8 =>
        [
            new("panels", WeightArrayType.Int8, LowPrecisionPacking.Int8Length(n, k)),
            new("scales", WeightArrayType.Float32, n),
            new("sums", WeightArrayType.Int32, n),
            new("levels", WeightArrayType.Int32, 1),
        ],
        _ => throw new ArgumentOutOfRangeException(nameof(elementType), elementType, null),
    };

    /// <summary>Hands every array of this packed weight to <paramref name="visit"/>, in the order of <see cref="ArrayShapes"/>.</summary>
    internal void VisitArrays(WeightArrayVisitor visit)
    {
        if (!IsPacked) throw new InvalidOperationException("only a packed weight is made of panel arrays");
        var shapes = ArrayShapes(ElementType, RowCount, ColumnCount);
        var start = ElementType == PanelElement.Float32 ? (byte*)Panels : (byte*)lowPrecisionPanels.Start;
        visit(shapes[0], new ReadOnlySpan<byte>(start, checked((int)shapes[0].ByteLength)));
        if (ElementType != PanelElement.Int8) return;
        visit(shapes[1], MemoryMarshal.AsBytes(ChannelScales));
        visit(shapes[2], MemoryMarshal.AsBytes(ChannelSums));
        int levels = Int8Levels;
        visit(shapes[3], MemoryMarshal.AsBytes(new ReadOnlySpan<int>(ref levels)));
    }

    /// <summary>
    /// A packed weight over arrays stored elsewhere (<paramref name="arrays"/>: addresses in memory that does not move
    /// and stays valid while <paramref name="owner"/> is alive and undisposed, e.g. a read-only mapping). The panels are
    /// read where they lie; the small per-channel arrays are copied.
    /// </summary>
    /// <exception cref="InvalidDataException">The arrays are not exactly those of <see cref="ArrayShapes"/>, or hold impossible values.</exception>
    internal static WeightMatrix FromArrays(PanelElement elementType, int n, int k, IReadOnlyList<StoredWeightArray> arrays, object owner)
    {
        CheckShape((long)n * k, n, k);
        var shapes = ArrayShapes(elementType, n, k);
        foreach (var array in arrays)
            if (!shapes.Any(s => s.Name == array.Name))
                throw new InvalidDataException($"it holds an array '{array.Name}' that a {elementType} weight does not have");
        var starts = new nint[shapes.Count];
        for (int i = 0; i < shapes.Count; i++)
        {
            var shape = shapes[i];
            var a = arrays.FirstOrDefault(a => a.Name == shape.Name) ?? throw new InvalidDataException($"it lacks the array '{shape.Name}' of a {elementType} weight");
            if (a.Type != shape.Type || a.Count != shape.Count)
                throw new InvalidDataException($"its array '{shape.Name}' is {a.Count:N0} × {a.Type}; a [{n}, {k}] {elementType} weight has {shape.Count:N0} × {shape.Type}");
            starts[i] = a.Start;
        }
        if (elementType == PanelElement.Float32)
            return MappedPanels((float*)starts[0], n, k, owner);
        if (elementType == PanelElement.BFloat16)
            return new WeightMatrix(n, k, elementType, AlignedBuffer.Over((void*)starts[0]), owner: owner);
        int levels = *(int*)starts[3];
        if (levels is < 1 or > Quantization.WeightLevels)
            throw new InvalidDataException($"it says its int8 values reach ±{levels}; int8 weights use at most ±{Quantization.WeightLevels}");
        return new WeightMatrix(n, k, elementType, AlignedBuffer.Over((void*)starts[0]),
            new ReadOnlySpan<float>((void*)starts[1], n).ToArray(), new ReadOnlySpan<int>((void*)starts[2], n).ToArray(), levels, owner);
    }
}
