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
/// Inside a task the loops run k-block → panel → strip. One panel's slice of the k-block (256 × 32 floats,
/// 32 KB), packed from the row-major weight into a per-thread buffer just before use, stays in L1 while every
/// strip of X meets it; the strips (the task's rows × 256 floats, ≤ 256 KB) stay in L2 while every panel meets them. So W is read from memory once per task and X once per k-block.
/// (The other order, strip → panel, streams W from L2 for every strip: tried, slower.) A task of one
/// strip (a prompt) with the weight packed whole walks panel → k instead: see RunOneStripAlongPanels.
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

/// <summary>One GEMM call's operands (pinned pointers), its tiling plan, and the code that runs one task.</summary>
internal readonly unsafe struct GemmProduct : Parallelism.IParallelBody
{
    private readonly float* x;        // X [M, K], row stride xStride
    private readonly nint xStride;
    private readonly int rowCount;    // M
    private readonly float** weightRows; // W [N, K] row-major, read in place: row n at weightRows[n]; or null
    private readonly float* panels;   // or W already packed, [⌈N/32⌉, K, 32] (attention packs its keys and values)
    private readonly int columnCount; // N
    private readonly int depth;       // K
    private readonly float* bias;     // b [N], or null
    private readonly float* y;        // Y [M, N], row stride yStride
    private readonly nint yStride;
    private readonly GemmEpilogue epilogue;
    private readonly KernelPath path;
    private readonly bool tallTiles;  // at most 12 rows on the AVX-512 path: one 12-row strip (MicroKernel512Tall)
    public readonly GemmPlan Plan;

    // A product with a WeightMatrix: its panels when it is packed whole, else its rows, packed slice by slice as the
    // tasks reach them.
    // degree: the worker count to plan for; 0 = Parallelism.MaxDegree.
    public GemmProduct(float* x, nint xStride, int rowCount, WeightMatrix weight, float* bias, float* y, nint yStride,
        GemmEpilogue epilogue, KernelPath path, int degree = 0)
        : this(x, xStride, rowCount, weight.Panels == null ? weight.Rows : null, weight.Panels, weight.RowCount, weight.ColumnCount,
            bias, y, yStride, epilogue, path, degree)
    {
    }

    // A product with a weight the caller has packed whole (attention: keys and values of one head).
    // panels: W laid out as PanelPacking lays out slices, but whole: [⌈N/32⌉, K, 32], padding zero.
    public GemmProduct(float* x, nint xStride, int rowCount, float* panels, int columnCount, int depth, float* bias,
        float* y, nint yStride, GemmEpilogue epilogue, KernelPath path, int degree = 0)
        : this(x, xStride, rowCount, null, panels, columnCount, depth, bias, y, yStride, epilogue, path, degree)
    {
    }

    private GemmProduct(float* x, nint xStride, int rowCount, float** weightRows, float* panels, int columnCount, int depth,
        float* bias, float* y, nint yStride, GemmEpilogue epilogue, KernelPath path, int degree)
    {
        this.x = x;
        this.weightRows = weightRows;
        this.panels = panels;
        this.bias = bias;
        this.y = y;
        (this.xStride, this.rowCount, this.columnCount, this.depth, this.yStride, this.epilogue, this.path) =
            (xStride, rowCount, columnCount, depth, yStride, epilogue, path);
        tallTiles = path == KernelPath.Vector512 && rowCount <= MicroKernel512Tall.Rows;
        int rowsPerStrip = path switch
        {
            KernelPath.Vector512 => tallTiles ? MicroKernel512Tall.Rows : MicroKernel512.Rows,
            KernelPath.Vector256 => MicroKernel256.Rows,
            KernelPath.Vector128 => MicroKernel128.Rows,
            _ => MicroKernelScalar.Rows,
        };
        int panelCount = (columnCount + PanelPacking.PanelWidth - 1) / PanelPacking.PanelWidth;
        Plan = new GemmPlan(rowCount, panelCount, rowsPerStrip, degree > 0 ? degree : Parallelism.MaxDegree);
    }

    public long MultiplyAddCount => (long)rowCount * columnCount * depth;

    /// <summary>Independent tasks; any order, any thread.</summary>
    public int TaskCount => Plan.TaskCount;

    void Parallelism.IParallelBody.Run(int task) => RunTask(task);

    public void RunTask(int task)
    {
        switch (path)
        {
            case KernelPath.Vector512 when tallTiles: RunTask<MicroKernel512Tall>(task); break;
            case KernelPath.Vector512: RunTask<MicroKernel512>(task); break;
            case KernelPath.Vector256: RunTask<MicroKernel256>(task); break;
            case KernelPath.Vector128: RunTask<MicroKernel128>(task); break;
            default: RunTask<MicroKernelScalar>(task); break;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // optimised on first call: see KernelPaths
    private void RunTask<TKernel>(int task) where TKernel : struct, IGemmMicroKernel
    {
        int rows = TKernel.Rows, columns = TKernel.Columns;
        int rowStart = task / Plan.PanelTaskCount * Plan.StripsPerTask * rows;
        int rowEnd = Math.Min(rowCount, rowStart + Plan.StripsPerTask * rows);
        var (panelStart, panelCount) = Plan.PanelsOfTask(task % Plan.PanelTaskCount);
        int columnStart = panelStart * PanelPacking.PanelWidth;
        int columnEnd = Math.Min(columnCount, (panelStart + panelCount) * PanelPacking.PanelWidth);

        // Tiles that hang over the last row or column run on copies, so the micro-kernel only ever sees full tiles.
        float* edgeX = stackalloc float[rows * GemmPlan.DepthBlock]; // [rows, depthBlock]
        float* edgeY = stackalloc float[rows * columns];             // [rows, columns]

        if (panels != null && rowEnd - rowStart <= rows && columns == PanelPacking.PanelWidth)
        {
            RunOneStripAlongPanels<TKernel>(rowStart, rowEnd, panelStart, columnEnd, edgeX, edgeY);
            return;
        }

        float* packed = weightRows != null ? PanelPacking.BufferForThisThread() : null; // [blockDepth, 32]
        for (int k0 = 0; k0 < depth; k0 += GemmPlan.DepthBlock)
        {
            int blockDepth = Math.Min(GemmPlan.DepthBlock, depth - k0);
            for (int column = columnStart; column < columnEnd; column += columns)
            {
                // P[k0.., column..]: the slice of panel column / 32 for this k-block, from lane column % 32
                if (packed != null && column % PanelPacking.PanelWidth == 0)
                    PanelPacking.Pack(weightRows + column, Math.Min(PanelPacking.PanelWidth, columnCount - column), k0, blockDepth, packed, path);
                float* panel = packed != null ? packed + column % PanelPacking.PanelWidth : PanelSlice(column, k0);
                var prefetch = NextSliceToPrefetch(column, columns, columnEnd, panelStart, k0, blockDepth, rowStart, rowEnd, rows);

                for (int row = rowStart; row < rowEnd; row += rows)
                {
                    prefetch.Step();
                    RunTile<TKernel>(row, rowEnd, column, columnEnd, k0, blockDepth, panel, edgeX, edgeY);
                }
            }
        }
    }

    /// <summary>
    /// One strip (a prompt) against a weight packed whole, where the time goes into streaming the weight from DRAM.
    /// Nothing of X is worth keeping in cache between panels, so each panel is walked from k = 0 to K and the task's
    /// panels form one contiguous run of memory, which the 12-row micro-kernel prefetches ahead of itself as it goes
    /// (see <see cref="MicroKernel512Tall"/>); only the run's start is fetched here. The sums are cut into the same
    /// 256-step blocks as in the other order, so a prompt alone and in a batch give the same bits.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // optimised on first call: see KernelPaths
    private void RunOneStripAlongPanels<TKernel>(int rowStart, int rowEnd, int panelStart, int columnEnd,
        float* edgeX, float* edgeY) where TKernel : struct, IGemmMicroKernel
    {
        if (Sse.IsSupported)
            for (byte* line = (byte*)PanelSlice(panelStart * PanelPacking.PanelWidth, 0), end = line + MicroKernel512Tall.PrefetchBytesAhead;
                 line < end; line += 64)
                Sse.Prefetch1(line);
        for (int column = panelStart * PanelPacking.PanelWidth; column < columnEnd; column += PanelPacking.PanelWidth)
        for (int k0 = 0; k0 < depth; k0 += GemmPlan.DepthBlock)
            RunTile<TKernel>(rowStart, rowEnd, column, columnEnd, k0, Math.Min(GemmPlan.DepthBlock, depth - k0), PanelSlice(column, k0), edgeX, edgeY);
    }

    /// <summary>
    /// Y[row.., column..] (+)= X[row.., k0 .. k0 + blockDepth] · P, one micro-kernel tile; the epilogue after the last
    /// k-block. A tile cut short by <paramref name="rowEnd"/> or <paramref name="columnEnd"/> runs on the edge copies.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void RunTile<TKernel>(int row, int rowEnd, int column, int columnEnd, int k0, int blockDepth, float* panel,
        float* edgeX, float* edgeY) where TKernel : struct, IGemmMicroKernel
    {
        int rows = TKernel.Rows, columns = TKernel.Columns;
        int tileRows = Math.Min(rows, rowEnd - row), tileColumns = Math.Min(columns, columnEnd - column);
        bool accumulate = k0 > 0 || epilogue == GemmEpilogue.AddToOutput;
        float* strip = x + row * xStride + k0; // X[row.., k0..]
        nint stripStride = xStride;
        if (tileRows < rows)
        {
            for (int r = 0; r < tileRows; r++)
                new ReadOnlySpan<float>(strip + r * xStride, blockDepth).CopyTo(new Span<float>(edgeX + r * blockDepth, blockDepth));
            strip = edgeX;
            stripStride = blockDepth;
        }
        float* tile = y + row * yStride + column; // Y[row.., column..]

        if (tileRows == rows && tileColumns == columns)
        {
            TKernel.Run(strip, stripStride, panel, blockDepth, tile, yStride, accumulate);
        }
        else
        {
            if (accumulate) CopyTile(tile, yStride, edgeY, columns, tileRows, tileColumns);
            TKernel.Run(strip, stripStride, panel, blockDepth, edgeY, columns, accumulate);
            CopyTile(edgeY, columns, tile, yStride, tileRows, tileColumns);
        }
        if (k0 + blockDepth == depth) ApplyEpilogue(tile, tileRows, column, tileColumns);
    }

    /// <summary>P[k0.., column..] of a weight packed whole: panel column / 32, row k0, lane column % 32.</summary>
    private float* PanelSlice(int column, int k0) =>
        panels + (nint)(column / PanelPacking.PanelWidth) * depth * PanelPacking.PanelWidth
        + k0 * PanelPacking.PanelWidth + column % PanelPacking.PanelWidth;

    /// <summary>
    /// The panel slice this task needs after the current one (the next panel, or the first panel of the next
    /// k-block), to be pulled towards the cache in pieces while the current slice meets the strips. Weights come
    /// from DRAM in a real forward pass; without this the first strip to meet each slice stalls on it.
    /// </summary>
    private PanelPrefetch NextSliceToPrefetch(int column, int columns, int columnEnd, int panelStart, int k0,
        int blockDepth, int rowStart, int rowEnd, int rows)
    {
        int nextColumn = column + columns, nextK0 = k0;
        if (nextColumn % PanelPacking.PanelWidth != 0) return default; // same panel, other half: already cached
        if (nextColumn >= columnEnd)
        {
            nextColumn = panelStart * PanelPacking.PanelWidth;
            nextK0 = k0 + GemmPlan.DepthBlock;
            if (nextK0 >= depth) return default;
            blockDepth = Math.Min(GemmPlan.DepthBlock, depth - nextK0);
        }
        int strips = (rowEnd - rowStart + rows - 1) / rows;
        return weightRows != null
            ? new PanelPrefetch(weightRows + nextColumn, Math.Min(PanelPacking.PanelWidth, columnCount - nextColumn),
                nextK0, blockDepth, strips)
            : new PanelPrefetch(PanelSlice(nextColumn, nextK0), blockDepth * PanelPacking.PanelWidth, strips);
    }

    /// <summary>Bias and GELU on a finished tile, while it is still in L1.</summary>
    private void ApplyEpilogue(float* tile, int tileRows, int column, int tileColumns)
    {
        if (bias == null && epilogue != GemmEpilogue.StoreGelu) return;
        if (path == KernelPath.Vector512 && tileColumns == PanelPacking.PanelWidth)
        {
            // A whole 32-wide tile on AVX-512 (almost every tile): two vectors a row, no per-row calls; the same
            // arithmetic as below.
            var left = bias == null ? Vector512<float>.Zero : Vector512.Load(bias + column);
            var right = bias == null ? Vector512<float>.Zero : Vector512.Load(bias + column + 16);
            bool gelu = epilogue == GemmEpilogue.StoreGelu;
            for (int r = 0; r < tileRows; r++)
            {
                float* row = tile + r * yStride;
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
            var values = new Span<float>(tile + r * yStride, tileColumns);
            if (!tileBias.IsEmpty) TensorPrimitives.Add(values, tileBias, values);
            if (epilogue == GemmEpilogue.StoreGelu) Activations.Gelu(values, path);
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

    /// <summary>One block of <paramref name="floatCount"/> floats.</summary>
    public PanelPrefetch(float* start, int floatCount, int steps)
        : this(null, start, 1, 0, floatCount, steps)
    {
    }

    /// <summary>Floats [k0, k0 + depth) of each of <paramref name="rowCount"/> rows.</summary>
    public PanelPrefetch(float** rows, int rowCount, int k0, int depth, int steps)
        : this(rows, rows[0] + k0, rowCount, k0, depth, steps)
    {
    }

    private PanelPrefetch(float** rows, float* start, int rowCount, int firstColumn, int floatsPerRow, int steps)
    {
        this.rows = rows;
        this.rowCount = rowCount;
        this.firstColumn = firstColumn;
        next = (byte*)start;
        linesPerRow = (floatsPerRow * sizeof(float) + CacheLine - 1) / CacheLine;
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
