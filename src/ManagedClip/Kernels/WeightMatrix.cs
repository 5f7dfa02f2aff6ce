using System.Buffers;
using System.Runtime.CompilerServices;

namespace ManagedClip.Kernels;

/// <summary>
/// A GEMM weight W [N, K] (PyTorch Linear layout), either read in place or packed whole into the GEMM's panels.
/// Read in place, row n is K consecutive floats at an address of its own; the rows need not be one block of memory,
/// so separately stored matrices with the same K (BERT's query, key and value) can be used as one taller matrix
/// without copying them together.
/// </summary>
/// <remarks>
/// The GEMM rearranges a weight read in place piece by piece as it goes (see <see cref="PanelPacking"/>), so it
/// needs no second copy to be used, and creating one costs nothing. A weight used again and again on many rows
/// (every block of both towers) is better packed whole once (<see cref="Packed"/>, <see cref="PackOnce"/>): then no
/// product packs it again. Row memory read in place must stay where it is (pinned or mapped) for as long as this
/// object is used; the object keeps a reference to its owner so the owner is not collected first.
/// </remarks>
public sealed unsafe class WeightMatrix
{
    private readonly nint[]? rows;  // pinned, [N]: the address of W[n, 0]; null for a weight made packed
    private readonly object? owner; // keeps the memory the rows point into alive
    private readonly object packing = new(); // taken while PackOnce packs

    /// <summary>Output features N.</summary>
    public int RowCount { get; }

    /// <summary>Input features K.</summary>
    public int ColumnCount { get; }

    /// <summary>The row addresses, [N], or null for a weight made packed. Valid for the lifetime of this object (the array is pinned).</summary>
    internal float** Rows => rows == null ? null : (float**)Unsafe.AsPointer(ref rows[0]);

    /// <summary>
    /// W packed whole, [⌈N/32⌉, K, 32] (see <see cref="PanelPacking"/>), once <see cref="PackOnce"/> has run;
    /// null before. The GEMM then reads it instead of <see cref="Rows"/>.
    /// </summary>
    internal float* Panels => (float*)Volatile.Read(ref panelsAddress);

    private nint panelsAddress;          // 0 until packed: panelStorage.Start
    private AlignedBuffer panelStorage;  // the panels, once packed

    /// <summary>
    /// Packs W whole into the panel layout, the first time only; later products then skip packing altogether.
    /// <paramref name="readRowMajor"/> fills a buffer with W [N, K] row-major: the towers read it from the file
    /// rather than through <see cref="Rows"/>, so the mapped pages are not kept resident beside the packed copy.
    /// </summary>
    internal void PackOnce(Action<Span<float>> readRowMajor)
    {
        if (Panels != null) return;
        lock (packing)
        {
            if (Panels != null) return;
            int n = RowCount, k = ColumnCount, panelCount = (n + PanelPacking.PanelWidth - 1) / PanelPacking.PanelWidth;
            long rowMajorLength = (long)n * k, packedLength = (long)panelCount * k * PanelPacking.PanelWidth;
            if (packedLength > Array.MaxLength - 64)
                throw new InvalidOperationException($"a {n}×{k} weight is too large to pack");
            var storage = new AlignedBuffer();
            storage.EnsureLength((int)packedLength); // every float is written below (padding lanes as zeros)
            nint panels = (nint)storage.Start;
            // The row-major staging buffer comes from the shared pool: one model's weights reuse the same memory
            // (fresh memory costs a page fault per 4 KB on first touch).
            var rowMajor = ArrayPool<float>.Shared.Rent((int)rowMajorLength); // [N, K]
            try
            {
                readRowMajor(rowMajor.AsSpan(0, (int)rowMajorLength));
                fixed (float* source = rowMajor)
                {
                    nint sourceAddress = (nint)source;
                    Parallelism.For(panelCount, panel => PackPanel((float*)sourceAddress, n, k, panel, (float*)panels));
                }
            }
            finally
            {
                ArrayPool<float>.Shared.Return(rowMajor);
            }
            panelStorage = storage;
            Volatile.Write(ref panelsAddress, panels);
        }
    }

    /// <summary>W[n, k], wherever it is stored (the reference GEMM reads W one element at a time).</summary>
    internal float Element(int n, int k)
    {
        if ((uint)n >= (uint)RowCount || (uint)k >= (uint)ColumnCount)
            throw new ArgumentOutOfRangeException(nameof(n), $"W[{n}, {k}] is outside [{RowCount}, {ColumnCount}]");
        return rows != null
            ? ((float*)rows[n])[k]
            : Panels[(long)(n / PanelPacking.PanelWidth) * ColumnCount * PanelPacking.PanelWidth + (long)k * PanelPacking.PanelWidth + n % PanelPacking.PanelWidth];
    }

    private WeightMatrix(nint[]? rows, int rowCount, int columnCount, object? owner)
    {
        this.rows = rows;
        RowCount = rowCount;
        ColumnCount = columnCount;
        this.owner = owner;
    }

    /// <summary>
    /// A weight W [rowCount, columnCount] held only packed: <paramref name="readRowMajor"/> fills a buffer with W
    /// row-major (the towers read it from the file, converting F16/BF16 on the way), and nothing of it is kept but
    /// the panels.
    /// </summary>
    internal static WeightMatrix Packed(int rowCount, int columnCount, Action<Span<float>> readRowMajor)
    {
        CheckShape((long)rowCount * columnCount, rowCount, columnCount);
        var weight = new WeightMatrix(rows: null, rowCount, columnCount, owner: null);
        weight.PackOnce(readRowMajor);
        return weight;
    }

    /// <summary>A weight holding its own copy of W [rowCount, columnCount], row-major.</summary>
    /// <param name="weight">W [rowCount, columnCount]</param>
    /// <param name="rowCount">N, output features (at least 1).</param>
    /// <param name="columnCount">K, input features (at least 1).</param>
    public static WeightMatrix Create(ReadOnlySpan<float> weight, int rowCount, int columnCount)
    {
        CheckShape(weight.Length, rowCount, columnCount);
        // Pinned-heap arrays never move, so the row addresses taken now stay valid.
        var copy = GC.AllocateUninitializedArray<float>(weight.Length, pinned: true);
        weight.CopyTo(copy);
        return View((float*)Unsafe.AsPointer(ref copy[0]), rowCount, columnCount, owner: copy);
    }

    /// <summary>
    /// A view of W [rowCount, columnCount] stored row-major at <paramref name="weight"/>, memory that does not move
    /// (a mapped file or a pinned array) and stays valid as long as <paramref name="owner"/> is alive and undisposed.
    /// </summary>
    internal static WeightMatrix View(float* weight, int rowCount, int columnCount, object owner)
    {
        CheckShape((long)rowCount * columnCount, rowCount, columnCount);
        var rows = GC.AllocateUninitializedArray<nint>(rowCount, pinned: true);
        for (int n = 0; n < rowCount; n++) rows[n] = (nint)(weight + (long)n * columnCount);
        return new WeightMatrix(rows, rowCount, columnCount, owner);
    }

    /// <summary>Panel <paramref name="panel"/> of W [n, k] (row-major at <paramref name="source"/>) into its place in <paramref name="panels"/>.</summary>
    private static void PackPanel(float* source, int n, int k, int panel, float* panels)
    {
        float** panelRows = stackalloc float*[PanelPacking.PanelWidth];
        int count = Math.Min(PanelPacking.PanelWidth, n - panel * PanelPacking.PanelWidth);
        for (int j = 0; j < count; j++) panelRows[j] = source + (long)(panel * PanelPacking.PanelWidth + j) * k;
        float* destination = panels + (long)panel * k * PanelPacking.PanelWidth; // [K, 32]
        for (int k0 = 0; k0 < k; k0 += GemmPlan.DepthBlock)
            PanelPacking.Pack(panelRows, count, k0, Math.Min(GemmPlan.DepthBlock, k - k0),
                destination + (long)k0 * PanelPacking.PanelWidth, KernelPaths.Best);
    }

    /// <summary>The rows of every part, one part after another: [ΣN, K]. All parts must have the same K.</summary>
    internal static WeightMatrix Stack(params WeightMatrix[] parts)
    {
        if (parts.Length == 0) throw new ArgumentException("no parts to stack", nameof(parts));
        int columnCount = parts[0].ColumnCount;
        if (parts.Any(p => p.ColumnCount != columnCount))
            throw new ArgumentException($"stacked weights must have the same input width; got {string.Join(", ", parts.Select(p => p.ColumnCount))}", nameof(parts));
        if (parts.Any(p => p.rows == null))
            throw new ArgumentException("only weights read in place can be stacked", nameof(parts));
        var rows = GC.AllocateUninitializedArray<nint>(parts.Sum(p => p.RowCount), pinned: true);
        for (int i = 0, start = 0; i < parts.Length; start += parts[i++].RowCount)
            parts[i].rows!.CopyTo(rows, start);
        return new WeightMatrix(rows, rows.Length, columnCount, parts.Select(p => p.owner).ToArray());
    }

    private static void CheckShape(long length, int rowCount, int columnCount)
    {
        if (rowCount < 1 || columnCount < 1)
            throw new ArgumentException($"weight shape {rowCount}×{columnCount}: both dimensions must be at least 1");
        if (length != (long)rowCount * columnCount)
            throw new ArgumentException($"weight has {length} elements, expected {rowCount}×{columnCount}");
    }
}
