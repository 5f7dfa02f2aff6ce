using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace ManagedClip.Kernels;

/// <summary>
/// How one product is cut into independent tasks. A task is a block of whole strips (micro-kernel rows) by a
/// block of whole panels (32 output features), so tasks never share an output element.
/// </summary>
/// <remarks>
/// Inside a task the loops run k-block → panel → strip (<see cref="GemmDriver"/>). One panel's slice of the k-block
/// (256 × 32 floats, 32 KB), packed from the row-major weight into a per-thread buffer just before use, stays in L1
/// while every strip of X meets it; the strips (the task's rows × 256 floats, ≤ 256 KB) stay in L2 while every panel
/// meets them. So W is read from memory once per task and X once per k-block.
/// (The other order, strip → panel, streams W from L2 for every strip: tried, slower.) A task of one
/// strip (a prompt) with the weight packed whole walks panel → k instead: see GemmDriver.RunOneStripAlongPanels.
/// Splitting over panels as well as strips gives every core work even when M is small (197 image tokens,
/// 12 text tokens).
/// </remarks>
internal readonly struct GemmPlan
{
    /// <summary>Steps of k per pass over a tile; one panel slice is then 256 × 32 floats = 32 KB.</summary>
    public const int DepthBlock = 256;

    /// <summary>Most strips per task: bounds how much of X a task touches per k-block.</summary>
    private const int MaxStripsPerTask = 32;

    /// <summary>Most panels per task.</summary>
    private const int PanelsPerTaskDefault = 4;

    /// <summary>Below this many multiply-adds (some microseconds of one core's work) waking workers costs more than it saves.</summary>
    public const long ParallelThreshold = 1L << 20;

    public readonly int StripsPerTask, PanelTaskCount, TaskCount;
    private readonly int panelCount, panelsPerTask, degree;
    private readonly bool shrinking;

    public GemmPlan(int rowCount, int panelCount, int rowsPerStrip, int degree)
    {
        int strips = (rowCount + rowsPerStrip - 1) / rowsPerStrip;
        int rowTaskCount = (strips + MaxStripsPerTask - 1) / MaxStripsPerTask;
        StripsPerTask = (strips + rowTaskCount - 1) / rowTaskCount; // balanced: all row blocks nearly equal
        this.panelCount = panelCount;
        this.degree = degree;

        // With a single block of rows (one image, a few prompts) the tasks are few and long, and the last ones decide
        // when the loop ends: so the panels go out in shrinking groups (4, 4, …, 2, 1, 1), and whichever worker
        // finishes first waits at most for one panel's work on the other. A single strip (one prompt) does too little
        // per panel for the extra tasks to pay.
        shrinking = degree > 1 && rowTaskCount == 1 && strips > 1;
        if (shrinking)
        {
            int groups = 0;
            for (int first = 0; first < panelCount; first += ShrinkingGroup(panelCount - first)) groups++;
            PanelTaskCount = groups;
        }
        else
        {
            int panelTaskCount = (panelCount + PanelsPerTaskDefault - 1) / PanelsPerTaskDefault;
            // Aim for at least two tasks per worker so a late-waking worker does not leave the others idle.
            if (degree > 1 && rowTaskCount * panelTaskCount < 2 * degree)
                panelTaskCount = Math.Min(panelCount, (2 * degree + rowTaskCount - 1) / rowTaskCount);
            panelsPerTask = (panelCount + panelTaskCount - 1) / panelTaskCount;
            PanelTaskCount = (panelCount + panelsPerTask - 1) / panelsPerTask;
        }
        TaskCount = rowTaskCount * PanelTaskCount;
    }

    /// <summary>The panels of the <paramref name="panelTask"/>-th group: [first, first + count).</summary>
    public (int First, int Count) PanelsOfTask(int panelTask)
    {
        if (!shrinking)
            return (panelTask * panelsPerTask, Math.Min(panelsPerTask, panelCount - panelTask * panelsPerTask));
        int first = 0;
        for (int group = 0; group < panelTask; group++) first += ShrinkingGroup(panelCount - first);
        return (first, ShrinkingGroup(panelCount - first));
    }

    /// <summary>A share of what is left for each of two rounds of the workers, between 1 and 4 panels.</summary>
    private int ShrinkingGroup(int remaining) =>
        Math.Clamp((remaining + 2 * degree - 1) / (2 * degree), 1, Math.Min(PanelsPerTaskDefault, remaining));
}

/// <summary>
/// A float32 GEMM call: its operands (<see cref="FloatOperands{TPanel}"/>), its tiling plan, and the micro-kernel of its
/// code path; each task runs on <see cref="GemmDriver"/>.
/// </summary>
internal readonly unsafe struct GemmProduct : Parallelism.IParallelBody
{
    private readonly FloatOperands<float> operands;
    private readonly KernelPath path;
    private readonly bool tallTiles;  // at most 12 rows on the AVX-512 path: one 12-row strip (MicroKernel512Tall)
    private readonly bool streaming;  // at most two strips on the AVX2 path, weight packed whole (MicroKernel256Streaming)
    public readonly GemmPlan Plan;

    // A product with a WeightMatrix: its panels when it is packed whole, else its rows, packed slice by slice as the
    // tasks reach them.
    // degree: the worker count to plan for; 0 = Parallelism.MaxDegree.
    public GemmProduct(float* x, nint xStride, int rowCount, WeightMatrix weight, float* bias, float* y, nint yStride,
        GemmEpilogue epilogue, KernelPath path, int degree = 0)
        : this(new FloatOperands<float>(x, xStride, rowCount, weight.Panels == null ? weight.Rows : null, weight.Panels,
            weight.RowCount, weight.ColumnCount, bias, y, yStride, epilogue, path), path, degree)
    {
    }

    // A product with a weight the caller has packed whole (attention: keys and values of one head).
    // panels: W laid out as PanelPacking lays out slices, but whole: [⌈N/32⌉, K, 32], padding zero.
    public GemmProduct(float* x, nint xStride, int rowCount, float* panels, int columnCount, int depth, float* bias,
        float* y, nint yStride, GemmEpilogue epilogue, KernelPath path, int degree = 0)
        : this(new FloatOperands<float>(x, xStride, rowCount, null, panels, columnCount, depth, bias, y, yStride, epilogue, path),
            path, degree)
    {
    }

    private GemmProduct(FloatOperands<float> operands, KernelPath path, int degree)
    {
        this.operands = operands;
        this.path = path;
        tallTiles = path == KernelPath.Vector512 && operands.RowCount <= MicroKernel512Tall.Rows;
        streaming = path == KernelPath.Vector256 && operands.Panels != null && operands.RowCount <= 2 * MicroKernel256.Rows;
        int rowsPerStrip = path switch
        {
            KernelPath.Vector512 => tallTiles ? MicroKernel512Tall.Rows : MicroKernel512.Rows,
            KernelPath.Vector256 => MicroKernel256.Rows,
            KernelPath.Vector128 => MicroKernel128.Rows,
            _ => MicroKernelScalar.Rows,
        };
        int panelCount = (operands.ColumnCount + PanelPacking.PanelWidth - 1) / PanelPacking.PanelWidth;
        Plan = new GemmPlan(operands.RowCount, panelCount, rowsPerStrip, degree > 0 ? degree : Parallelism.MaxDegree);
    }

    public long MultiplyAddCount => (long)operands.RowCount * operands.ColumnCount * operands.Depth;

    /// <summary>Independent tasks; any order, any thread.</summary>
    public int TaskCount => Plan.TaskCount;

    void Parallelism.IParallelBody.Run(int task) => RunTask(task);

    public void RunTask(int task)
    {
        switch (path)
        {
            case KernelPath.Vector512 when tallTiles: GemmDriver.RunTask(new FloatTiles<MicroKernel512Tall, float>(operands), Plan, task); break;
            case KernelPath.Vector512: GemmDriver.RunTask(new FloatTiles<MicroKernel512, float>(operands), Plan, task); break;
            case KernelPath.Vector256 when streaming: GemmDriver.RunTask(new FloatTiles<MicroKernel256Streaming, float>(operands), Plan, task); break;
            case KernelPath.Vector256: GemmDriver.RunTask(new FloatTiles<MicroKernel256, float>(operands), Plan, task); break;
            case KernelPath.Vector128: GemmDriver.RunTask(new FloatTiles<MicroKernel128, float>(operands), Plan, task); break;
            default: GemmDriver.RunTask(new FloatTiles<MicroKernelScalar, float>(operands), Plan, task); break;
        }
    }
}

/// <summary>
/// The operands of a GEMM with float32 activations and output and a float32 or bf16 (<typeparamref name="TPanel"/> =
/// <see cref="ushort"/>) weight in the panel layout [⌈N/32⌉, K, 32].
/// </summary>
internal readonly unsafe struct FloatOperands<TPanel>(float* x, nint xStride, int rowCount, float** weightRows, TPanel* panels,
    int columnCount, int depth, float* bias, float* y, nint yStride, GemmEpilogue epilogue, KernelPath path)
    where TPanel : unmanaged
{
    public readonly float* X = x;                   // X [M, K], row stride XStride
    public readonly nint XStride = xStride;
    public readonly int RowCount = rowCount;        // M
    public readonly float** WeightRows = weightRows; // float32 W [N, K] read in place: row n at WeightRows[n]; or null
    public readonly TPanel* Panels = panels;        // or W packed whole, [⌈N/32⌉, K, 32]
    public readonly int ColumnCount = columnCount;  // N
    public readonly int Depth = depth;              // K
    public readonly float* Bias = bias;             // b [N], or null
    public readonly float* Y = y;                   // Y [M, N], row stride YStride
    public readonly nint YStride = yStride;
    public readonly GemmEpilogue Epilogue = epilogue;
    public readonly KernelPath Path = path;
}

/// <summary>
/// Tiles of a float32-output GEMM for <see cref="GemmDriver"/>: <typeparamref name="TKernel"/> on panels of
/// <typeparamref name="TPanel"/> (float32, or bf16 widened in registers), k-blocks of 256, the epilogue (bias, GELU)
/// on each finished tile while it is in L1.
/// </summary>
internal readonly unsafe struct FloatTiles<TKernel, TPanel>(FloatOperands<TPanel> operands) : IGemmTiles
    where TKernel : struct, IGemmMicroKernel<TPanel>
    where TPanel : unmanaged
{
    private readonly FloatOperands<TPanel> o = operands;

    public static int Rows => TKernel.Rows;
    public static int Columns => TKernel.Columns;
    public static int PanelWidth => PanelPacking.PanelWidth;
    public static bool PrefetchesAhead => TKernel.PrefetchesAhead;
    public int RowCount => o.RowCount;
    public int ColumnCount => o.ColumnCount;
    public int Depth => o.Depth;
    public int DepthBlock => GemmPlan.DepthBlock;
    public bool PackedWhole => o.Panels != null;

    /// <summary>P[k0.., column..]: from the panels packed whole, or packed now into this thread's buffer [blockDepth, 32].</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public byte* Slice(int column, int k0, int blockDepth)
    {
        if (o.Panels != null) return (byte*)PanelSlice(column, k0);
        float* packed = PanelPacking.BufferForThisThread(); // only float32 weights are read in place
        if (column % PanelPacking.PanelWidth == 0)
            PanelPacking.Pack(o.WeightRows + column, Math.Min(PanelPacking.PanelWidth, o.ColumnCount - column), k0, blockDepth, packed, o.Path);
        return (byte*)(packed + column % PanelPacking.PanelWidth);
    }

    public PanelPrefetch Prefetch(int column, int k0, int blockDepth, int steps) =>
        o.Panels != null
            ? new PanelPrefetch((byte*)PanelSlice(column, k0), blockDepth * PanelPacking.PanelWidth * sizeof(TPanel), steps)
            : new PanelPrefetch(o.WeightRows + column, Math.Min(PanelPacking.PanelWidth, o.ColumnCount - column), k0, blockDepth, steps);

    /// <summary>P[k0.., column..] of a weight packed whole: panel column / 32, row k0, lane column % 32.</summary>
    private TPanel* PanelSlice(int column, int k0) =>
        o.Panels + (nint)(column / PanelPacking.PanelWidth) * o.Depth * PanelPacking.PanelWidth
        + k0 * PanelPacking.PanelWidth + column % PanelPacking.PanelWidth;

    /// <summary>
    /// Y[row.., column..] (+)= X[row.., k0 .. k0 + blockDepth] · P, one micro-kernel tile; the epilogue after the last
    /// k-block. A tile cut short by M or N runs on the edge copies.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Tile(int row, int tileRows, int column, int tileColumns, int k0, int blockDepth, byte* slice, float* edgeX, float* edgeY)
    {
        int rows = TKernel.Rows, columns = TKernel.Columns;
        bool accumulate = k0 > 0 || o.Epilogue == GemmEpilogue.AddToOutput;
        float* strip = o.X + row * o.XStride + k0; // X[row.., k0..]
        nint stripStride = o.XStride;
        if (tileRows < rows)
        {
            for (int r = 0; r < tileRows; r++)
                new ReadOnlySpan<float>(strip + r * o.XStride, blockDepth).CopyTo(new Span<float>(edgeX + r * blockDepth, blockDepth));
            strip = edgeX;
            stripStride = blockDepth;
        }
        float* tile = o.Y + row * o.YStride + column; // Y[row.., column..]
        var panel = (TPanel*)slice;

        if (tileRows == rows && tileColumns == columns)
        {
            TKernel.Run(strip, stripStride, panel, blockDepth, tile, o.YStride, accumulate);
        }
        else
        {
            if (accumulate) CopyTile(tile, o.YStride, edgeY, columns, tileRows, tileColumns);
            TKernel.Run(strip, stripStride, panel, blockDepth, edgeY, columns, accumulate);
            CopyTile(edgeY, columns, tile, o.YStride, tileRows, tileColumns);
        }
        if (k0 + blockDepth == o.Depth) ApplyEpilogue(tile, tileRows, column, tileColumns);
    }

    /// <summary>Bias and GELU on a finished tile, while it is still in L1.</summary>
    private void ApplyEpilogue(float* tile, int tileRows, int column, int tileColumns)
    {
        float* bias = o.Bias;
        if (bias == null && o.Epilogue != GemmEpilogue.StoreGelu) return;
        if (o.Path == KernelPath.Vector512 && tileColumns == PanelPacking.PanelWidth)
        {
            // A whole 32-wide tile on AVX-512 (almost every tile): two vectors a row, no per-row calls; the same
            // arithmetic as below.
            var left = bias == null ? Vector512<float>.Zero : Vector512.Load(bias + column);
            var right = bias == null ? Vector512<float>.Zero : Vector512.Load(bias + column + 16);
            bool gelu = o.Epilogue == GemmEpilogue.StoreGelu;
            for (int r = 0; r < tileRows; r++)
            {
                float* row = tile + r * o.YStride;
                var a = Vector512.Load(row);
                var b = Vector512.Load(row + 16);
                if (bias != null)
                {
                    a += left;
                    b += right;
                }
                if (gelu)
                {
                    a = Activations.Gelu(a);
                    b = Activations.Gelu(b);
                }
                Vector512.Store(a, row);
                Vector512.Store(b, row + 16);
            }
            return;
        }
        var tileBias = new ReadOnlySpan<float>(bias + column, bias == null ? 0 : tileColumns);
        for (int r = 0; r < tileRows; r++)
        {
            var values = new Span<float>(tile + r * o.YStride, tileColumns);
            if (!tileBias.IsEmpty) TensorPrimitives.Add(values, tileBias, values);
            if (o.Epilogue == GemmEpilogue.StoreGelu) Activations.Gelu(values, o.Path);
        }
    }

    private static void CopyTile(float* source, nint sourceStride, float* destination, nint destinationStride, int rows, int columns)
    {
        for (int r = 0; r < rows; r++)
            new ReadOnlySpan<float>(source + r * sourceStride, columns).CopyTo(new Span<float>(destination + r * destinationStride, columns));
    }
}

/// <summary>
/// Prefetches a weight slice into L2 in equal pieces, one piece per <see cref="Step"/>: a packed slice (one block)
/// or a row-major one (the same stretch of k in each of the panel's rows).
/// </summary>
internal unsafe struct PanelPrefetch
{
    private const int CacheLine = 64;
    private readonly float** rows;  // the rows' addresses, or null for one block
    private readonly int rowCount, firstColumn, linesPerRow, linesPerStep;
    private byte* next;             // the next line to fetch, in row `row`
    private int row, line;

    /// <summary>One block of <paramref name="byteCount"/> bytes.</summary>
    public PanelPrefetch(byte* start, int byteCount, int steps)
        : this(null, start, 1, 0, byteCount, steps)
    {
    }

    /// <summary>Floats [k0, k0 + depth) of each of <paramref name="rowCount"/> rows.</summary>
    public PanelPrefetch(float** rows, int rowCount, int k0, int depth, int steps)
        : this(rows, (byte*)(rows[0] + k0), rowCount, k0, depth * sizeof(float), steps)
    {
    }

    private PanelPrefetch(float** rows, byte* start, int rowCount, int firstColumn, int bytesPerRow, int steps)
    {
        this.rows = rows;
        this.rowCount = rowCount;
        this.firstColumn = firstColumn;
        next = start;
        linesPerRow = (bytesPerRow + CacheLine - 1) / CacheLine;
        linesPerStep = (rowCount * linesPerRow + steps - 1) / steps;
    }

    public void Step()
    {
        if (!Sse.IsSupported) return;
        for (int i = 0; i < linesPerStep && row < rowCount; i++)
        {
            Sse.Prefetch1(next);
            next += CacheLine;
            if (++line == linesPerRow && ++row < rowCount)
            {
                line = 0;
                next = (byte*)(rows[row] + firstColumn);
            }
        }
    }
}
