using System.Runtime.CompilerServices;

namespace ManagedClip.Kernels;

/// <summary>
/// A weight matrix W [N, K] (PyTorch Linear layout) rearranged once at load time into the order the GEMM
/// micro-kernel reads it.
/// </summary>
/// <remarks>
/// The N output features are cut into panels of <see cref="PanelWidth"/> (the last one zero-padded). Inside a
/// panel the 32 weights that meet input feature k are adjacent: panel p, element (n, k) sits at
/// p·K·32 + k·32 + (n − 32p). The micro-kernel can then load "row k of the panel" as two 512-bit vectors and
/// walk k with a single pointer. The storage is pinned and 64-byte aligned so those loads never straddle a
/// cache line.
/// </remarks>
public sealed class PackedMatrix
{
    /// <summary>Output features per panel: two 512-bit vectors, four 256-bit ones.</summary>
    internal const int PanelWidth = 32;

    private const int AlignmentInFloats = 64 / sizeof(float);

    private readonly float[] storage; // pinned; panels start at storage[alignedStart]
    private readonly int alignedStart;

    /// <summary>Output features N.</summary>
    public int RowCount { get; }

    /// <summary>Input features K.</summary>
    public int ColumnCount { get; }

    /// <summary>Panels ⌈N / 32⌉.</summary>
    internal int PanelCount => (RowCount + PanelWidth - 1) / PanelWidth;

    /// <summary>The panels, [PanelCount, K, 32]. Valid for the lifetime of this object (the array is pinned).</summary>
    internal unsafe float* Panels => (float*)Unsafe.AsPointer(ref storage[alignedStart]);

    private PackedMatrix(int rowCount, int columnCount)
    {
        RowCount = rowCount;
        ColumnCount = columnCount;
        long length = (long)PanelCount * PanelWidth * columnCount;
        if (length + AlignmentInFloats > Array.MaxLength)
            throw new ArgumentException($"a {rowCount}×{columnCount} weight is too large to pack");
        // Pinned-heap arrays never move, so the aligned offset computed now stays valid.
        storage = GC.AllocateArray<float>((int)length + AlignmentInFloats, pinned: true);
        unsafe
        {
            nint address = (nint)Unsafe.AsPointer(ref storage[0]);
            alignedStart = (int)((64 - address % 64) % 64 / sizeof(float));
        }
    }

    /// <summary>Packs W [rowCount, columnCount], row-major as stored in the checkpoint.</summary>
    /// <param name="weight">W [rowCount, columnCount]</param>
    /// <param name="rowCount">N, output features (at least 1).</param>
    /// <param name="columnCount">K, input features (at least 1).</param>
    public static PackedMatrix Pack(ReadOnlySpan<float> weight, int rowCount, int columnCount)
    {
        if (rowCount < 1 || columnCount < 1)
            throw new ArgumentException($"weight shape {rowCount}×{columnCount}: both dimensions must be at least 1");
        if (weight.Length != (long)rowCount * columnCount)
            throw new ArgumentException($"weight has {weight.Length} elements, expected {rowCount}×{columnCount}");

        var packed = new PackedMatrix(rowCount, columnCount);
        var panels = packed.storage.AsSpan(packed.alignedStart); // [PanelCount, K, 32], padding stays zero
        for (int n = 0; n < rowCount; n++)
        {
            var row = weight.Slice(n * columnCount, columnCount); // W[n, :]
            int panelStart = n / PanelWidth * columnCount * PanelWidth, lane = n % PanelWidth;
            for (int k = 0; k < columnCount; k++)
                panels[panelStart + k * PanelWidth + lane] = row[k];
        }
        return packed;
    }
}
