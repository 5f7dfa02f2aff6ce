using System.Buffers;
using System.Runtime.CompilerServices;

namespace ManagedClip.Kernels;

/// <summary>
/// A GEMM weight W [N, K] (PyTorch Linear layout), held one of two ways:
/// <list type="bullet">
/// <item><b>Packed</b> (<see cref="Packed"/>, <see cref="MappedPanels"/>): the GEMM's panel layout [⌈N/32⌉, K, 32],
/// either a private copy made when the weight is created or panels in a mapped packed-weights file (see
/// <see cref="ManagedClip.IO.Formats.PackedWeightsFile"/>). Every block weight of both towers is held so: each is used on
/// every pass, on hundreds of rows, so no product should have to rearrange it again.</item>
/// <item><b>In place</b> (<see cref="View"/>, <see cref="Create"/>): the address of each row, in memory that does not
/// move (the mapped checkpoint or a pinned array); the GEMM packs each 256×32 slice just before use (see
/// <see cref="PanelPacking"/>). The small heads, run once per pass on a few rows, are read so. The rows need not be one
/// block of memory, so separately stored matrices with the same K can be used as one taller matrix without copying.</item>
/// </list>
/// A packed weight's <see cref="ElementType"/> is float32 unless the model was loaded in bf16 or int8
/// (<see cref="ClipPrecision"/>): then its panels are in that type's layout (<see cref="LowPrecisionPacking"/>) and
/// <see cref="Gemm"/> hands it to <see cref="GemmBFloat16"/> or <see cref="GemmInt8"/>.
/// </summary>
/// <remarks>
/// Naming key (local to the GEMM files): N output features (rows of W), K input features. Memory read in place must
/// stay where it is for as long as this object is used; the object keeps a reference to its owner so the owner is not
/// collected first.
/// </remarks>
internal sealed unsafe partial class WeightMatrix
{
    private readonly nint[]? rows;         // pinned, [N]: the address of W[n, 0]; null for a packed weight
    private readonly object? owner;        // keeps the memory the rows or panels point into alive
    private readonly float* panels;        // [⌈N/32⌉, K, 32] for a packed weight (a private buffer or a mapping); null otherwise
    private readonly AlignedBuffer lowPrecisionPanels; // a bf16 or int8 weight's panels (see PanelElement); empty otherwise
    private readonly float[]? channelScales; // int8: s [N], W[n, k] ≈ s[n]·q[n, k]
    private readonly int[]? channelSums;     // int8: Σₖ q[n, k] [N], for the activations' zero-point correction

    /// <summary>Output features N.</summary>
    public int RowCount { get; }

    /// <summary>Input features K.</summary>
    public int ColumnCount { get; }

    /// <summary>The row addresses, [N], or null for a packed weight. Valid for the lifetime of this object (the array is pinned).</summary>
    internal float** Rows => rows == null ? null : (float**)Unsafe.AsPointer(ref rows[0]);

    /// <summary>W packed whole, [⌈N/32⌉, K, 32], 32 output features side by side at every k; null for a weight read in place.</summary>
    internal float* Panels => panels;

    /// <summary>True for a weight held in the panel layout (see <see cref="Packed"/>), in any element type.</summary>
    internal bool IsPacked => Panels != null || lowPrecisionPanels.Start != null;

    /// <summary>False only for a <see cref="LayoutOnly"/> weight.</summary>
    internal bool HasValues => rows != null || IsPacked;

    /// <summary>How the packed values are stored: float32 unless <see cref="Packed"/> was asked for bf16 or int8.</summary>
    internal PanelElement ElementType { get; }

    /// <summary>A bf16 weight's panels, [⌈N/32⌉, K, 32] as float32's (see <see cref="LowPrecisionPacking"/>); null otherwise.</summary>
    internal ushort* BFloat16Panels => ElementType == PanelElement.BFloat16 ? (ushort*)lowPrecisionPanels.Start : null;

    /// <summary>An int8 weight's panels, [⌈N/16⌉, ⌈K/4⌉, 16, 4] (see <see cref="LowPrecisionPacking"/>); null otherwise.</summary>
    internal sbyte* Int8Panels => ElementType == PanelElement.Int8 ? (sbyte*)lowPrecisionPanels.Start : null;

    /// <summary>An int8 weight's per-output-channel scales s [N]; empty otherwise.</summary>
    internal ReadOnlySpan<float> ChannelScales => channelScales;

    /// <summary>An int8 weight's Σₖ q[n, k] [N]; empty otherwise.</summary>
    internal ReadOnlySpan<int> ChannelSums => channelSums;

    /// <summary>An int8 weight's largest |q| (127; 63 when packed for the vpmaddubsw kernel: see <see cref="GemmInt8"/>); 0 otherwise.</summary>
    internal int Int8Levels { get; }

    /// <summary>
    /// Which activation values an int8 product with this weight takes out of the quantization and computes in float32
    /// (<see cref="Kernels.Int8Outliers"/>; by default <see cref="Int8Outliers.For"/> its K).
    /// </summary>
    internal Int8Outliers Int8Outliers { get; }

    /// <summary>
    /// This int8 weight with another activation outlier rule (<see cref="Int8Outliers"/>; <c>new(0, 0)</c> turns it
    /// off): the same panels and scales, shared, not copied. Any other weight is returned as it is.
    /// </summary>
    internal WeightMatrix WithInt8Outliers(Int8Outliers outliers) => ElementType != PanelElement.Int8 ? this
        : new WeightMatrix(RowCount, ColumnCount, ElementType, lowPrecisionPanels, channelScales, channelSums, Int8Levels, owner ?? this, outliers);

    /// <summary>A shape without values: what a tower built from a checkpoint layout holds (it is never run).</summary>
    internal static WeightMatrix LayoutOnly(int rowCount, int columnCount)
    {
        CheckShape((long)rowCount * columnCount, rowCount, columnCount);
        return new WeightMatrix(rows: null, rowCount, columnCount, owner: null);
    }

    /// <summary>
    /// W[n, k], wherever it is stored (the reference GEMM reads W one element at a time): for a bf16 weight the
    /// widened bf16 value, for an int8 weight s[n]·q[n, k].
    /// </summary>
    internal float Element(int n, int k)
    {
        if ((uint)n >= (uint)RowCount || (uint)k >= (uint)ColumnCount)
            throw new ArgumentOutOfRangeException(nameof(n), $"W[{n}, {k}] is outside [{RowCount}, {ColumnCount}]");
        if (ElementType == PanelElement.BFloat16)
            return Quantization.FromBFloat16(BFloat16Panels[LowPrecisionPacking.BFloat16Index(n, k, ColumnCount)]);
        if (ElementType == PanelElement.Int8)
            return channelScales![n] * QuantizedElement(n, k);
        return rows != null
            ? ((float*)rows[n])[k]
            : Panels[(long)(n / PanelPacking.PanelWidth) * ColumnCount * PanelPacking.PanelWidth + (long)k * PanelPacking.PanelWidth + n % PanelPacking.PanelWidth];
    }

    /// <summary>q[n, k] of an int8 weight.</summary>
    internal int QuantizedElement(int n, int k) => Int8Panels[LowPrecisionPacking.Int8Index(n, k, ColumnCount)];

    private WeightMatrix(nint[]? rows, int rowCount, int columnCount, object? owner, float* panels = null)
    {
        this.rows = rows;
        RowCount = rowCount;
        ColumnCount = columnCount;
        this.owner = owner;
        this.panels = panels;
    }

    /// <summary>Floats in the panel layout of a [<paramref name="rowCount"/>, <paramref name="columnCount"/>] weight: ⌈N/32⌉·K·32 (the last panel's missing rows are zeros).</summary>
    internal static long PanelLength(int rowCount, int columnCount) =>
        (long)((rowCount + PanelPacking.PanelWidth - 1) / PanelPacking.PanelWidth) * columnCount * PanelPacking.PanelWidth;

    /// <summary>
    /// A packed weight whose panels [⌈N/32⌉, K, 32] already lie at <paramref name="panels"/>, memory that does not move
    /// (a read-only mapping of a packed-weights file) and stays valid while <paramref name="owner"/> is alive and
    /// undisposed. Nothing is copied: the GEMM reads the mapping.
    /// </summary>
    internal static WeightMatrix MappedPanels(float* panels, int rowCount, int columnCount, object owner)
    {
        CheckShape((long)rowCount * columnCount, rowCount, columnCount);
        ArgumentNullException.ThrowIfNull(owner);
        if (panels == null) throw new ArgumentNullException(nameof(panels));
        return new WeightMatrix(rows: null, rowCount, columnCount, owner, panels);
    }

    /// <summary>
    /// Rearranges W [n, k], row-major at <paramref name="rowMajor"/>, into the panel layout at <paramref name="panels"/>
    /// (<see cref="PanelLength"/> floats, every one written): what <see cref="Packed"/> does in memory and the
    /// packed-weights file builder does into its write buffer.
    /// </summary>
    internal static void PackRowMajor(float* rowMajor, int n, int k, float* panels)
    {
        int panelCount = (n + PanelPacking.PanelWidth - 1) / PanelPacking.PanelWidth;
        nint source = (nint)rowMajor, destination = (nint)panels;
        Parallelism.For(panelCount, panel => PackPanel((float*)source, n, k, panel, (float*)destination));
    }

    private WeightMatrix(int rowCount, int columnCount, PanelElement elementType, AlignedBuffer lowPrecisionPanels,
        float[]? channelScales = null, int[]? channelSums = null, int int8Levels = 0, object? owner = null,
        Int8Outliers? int8Outliers = null)
    {
        this.owner = owner;
        Int8Levels = int8Levels;
        Int8Outliers = int8Outliers ?? Int8Outliers.For(columnCount);
        RowCount = rowCount;
        ColumnCount = columnCount;
        ElementType = elementType;
        this.lowPrecisionPanels = lowPrecisionPanels;
        this.channelScales = channelScales;
        this.channelSums = channelSums;
    }

    /// <summary>
    /// A weight W [rowCount, columnCount] held only packed: <paramref name="readRowMajor"/> fills a buffer with W
    /// row-major (the towers read it from the file, converting F16/BF16 on the way), which is rearranged into the
    /// panels and given back; nothing of it is kept but the panels. For int8, <paramref name="int8Levels"/> is the
    /// largest |q|; 0 means the default, <see cref="GemmInt8.WeightLevels"/>; <paramref name="int8Outliers"/> the
    /// activations' outlier rule (null: the default for K, <see cref="Int8Outliers.For"/>).
    /// </summary>
    internal static WeightMatrix Packed(int rowCount, int columnCount, Action<Span<float>> readRowMajor,
        PanelElement elementType = PanelElement.Float32, int int8Levels = 0, Int8Outliers? int8Outliers = null)
    {
        if (elementType != PanelElement.Float32)
            return PackedLowPrecision(rowCount, columnCount, readRowMajor, elementType, int8Levels > 0 ? int8Levels : GemmInt8.WeightLevels, int8Outliers);
        CheckShape((long)rowCount * columnCount, rowCount, columnCount);
        int n = rowCount, k = columnCount;
        long rowMajorLength = (long)n * k, packedLength = PanelLength(n, k);
        if (packedLength > Array.MaxLength - 64)
            throw new InvalidOperationException($"a {n}×{k} weight is too large to pack");
        var storage = new AlignedBuffer();
        storage.EnsureLength((int)packedLength); // every float is written below (padding lanes as zeros)
        // The row-major staging buffer comes from the shared pool: one model's weights reuse the same memory
        // (fresh memory costs a page fault per 4 KB on first touch).
        var rowMajor = ArrayPool<float>.Shared.Rent((int)rowMajorLength); // [N, K]
        try
        {
            readRowMajor(rowMajor.AsSpan(0, (int)rowMajorLength));
            fixed (float* source = rowMajor) PackRowMajor(source, n, k, storage.Start);
        }
        finally
        {
            ArrayPool<float>.Shared.Return(rowMajor);
        }
        return new WeightMatrix(rows: null, rowCount, columnCount, owner: storage, storage.Start); // the boxed buffer keeps its pinned array alive
    }

    /// <summary>
    /// As <see cref="Packed"/>, into bf16 or int8 panels (<see cref="LowPrecisionPacking"/>), rounded from the float32
    /// values <paramref name="readRowMajor"/> gives.
    /// </summary>
    private static WeightMatrix PackedLowPrecision(int rowCount, int columnCount, Action<Span<float>> readRowMajor,
        PanelElement elementType, int int8Levels, Int8Outliers? int8Outliers)
    {
        CheckShape((long)rowCount * columnCount, rowCount, columnCount);
        int n = rowCount, k = columnCount;
        long bytes = elementType == PanelElement.BFloat16
            ? LowPrecisionPacking.BFloat16Length(n, k) * sizeof(ushort)
            : LowPrecisionPacking.Int8Length(n, k);
        if (bytes / sizeof(float) > Array.MaxLength - 64 || (long)n * k > Array.MaxLength)
            throw new InvalidOperationException($"a {n}×{k} weight is too large to pack");
        var storage = new AlignedBuffer();
        storage.EnsureLength((int)((bytes + sizeof(float) - 1) / sizeof(float))); // every byte is written below
        var rowMajor = ArrayPool<float>.Shared.Rent(n * k); // [N, K], as in Packed
        try
        {
            var values = rowMajor.AsSpan(0, n * k);
            readRowMajor(values);
            if (elementType == PanelElement.BFloat16)
            {
                var destination = new Span<ushort>(storage.Start, (int)(bytes / sizeof(ushort)));
                LowPrecisionPacking.PackBFloat16(values, n, k, destination);
                return new WeightMatrix(n, k, elementType, storage);
            }
            var scales = new float[n];
            var sums = new int[n];
            LowPrecisionPacking.PackInt8(values, n, k, new Span<sbyte>(storage.Start, (int)bytes), scales, sums, int8Levels);
            return new WeightMatrix(n, k, elementType, storage, scales, sums, int8Levels, int8Outliers: int8Outliers);
        }
        finally
        {
            ArrayPool<float>.Shared.Return(rowMajor);
        }
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
        if (parts.Any(p => p.rows == null || p.ElementType != PanelElement.Float32))
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
