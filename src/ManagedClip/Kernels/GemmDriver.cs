using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics.X86;

namespace ManagedClip.Kernels;

/// <summary>
/// What one number format supplies to <see cref="GemmDriver"/>: its tile size, its panel width, how deep a pass over a
/// tile goes, where a weight slice is, and the product of one tile (micro-kernel, edges, epilogue).
/// </summary>
/// <remarks>
/// Implemented by structs (<see cref="FloatTiles{TKernel, TPanel}"/> for float32 and bf16 panels,
/// <see cref="Int8Tiles{TKernel}"/> for int8), so the JIT compiles the driver once per format and kernel with every
/// call below inlined: no virtual call reaches the inner loops.
/// </remarks>
internal unsafe interface IGemmTiles
{
    /// <summary>Rows of a micro-kernel tile (a strip).</summary>
    static abstract int Rows { get; }

    /// <summary>Columns of a micro-kernel tile; divides <see cref="PanelWidth"/>.</summary>
    static abstract int Columns { get; }

    /// <summary>Output features per packed panel.</summary>
    static abstract int PanelWidth { get; }

    /// <summary>M, N and K of the product.</summary>
    int RowCount { get; }
    int ColumnCount { get; }
    int Depth { get; }

    /// <summary>Steps of k per pass over a tile: <see cref="GemmPlan.DepthBlock"/>, or all of K for int32 sums.</summary>
    int DepthBlock { get; }

    /// <summary>True if the weight is packed whole (panels contiguous); false if slices are packed as tasks reach them.</summary>
    bool PackedWhole { get; }

    /// <summary>
    /// The weight slice P[k0 .. k0 + blockDepth, column ..] for the tiles at <paramref name="column"/>; a weight read in
    /// place is packed here, when <paramref name="column"/> starts a panel.
    /// </summary>
    byte* Slice(int column, int k0, int blockDepth);

    /// <summary>True if the micro-kernel prefetches the weight run ahead of itself (then the driver does not).</summary>
    static virtual bool PrefetchesAhead => false;

    /// <summary>A prefetcher for the slice at (<paramref name="column"/>, <paramref name="k0"/>), spread over <paramref name="steps"/> steps.</summary>
    PanelPrefetch Prefetch(int column, int k0, int blockDepth, int steps);

    /// <summary>
    /// Y[row .. row + tileRows, column .. column + tileColumns] (+)= X[.., k0 .. k0 + blockDepth] · P, with the
    /// epilogue after the last k-block. A tile cut short by M or N is this method's to handle (edgeX [Rows, DepthBlock]
    /// and edgeY [Rows, Columns] are scratch for it).
    /// </summary>
    void Tile(int row, int tileRows, int column, int tileColumns, int k0, int blockDepth, byte* slice, float* edgeX, float* edgeY);
}

/// <summary>
/// The one GEMM task driver: runs task <c>t</c> of a <see cref="GemmPlan"/> (a block of strips by a group of panels)
/// for any number format, by walking k-blocks → panels → strips and handing each tile to the format's
/// <see cref="IGemmTiles.Tile"/>.
/// </summary>
/// <remarks>
/// One panel's slice of a k-block (256 × 32 floats, 32 KB; half that in bf16; a whole int8 panel is K × 16 bytes)
/// stays in L1 while every strip of X meets it; the strips stay in L2 while every panel meets them. So W is read from
/// memory once per task and X once per k-block. While a slice meets the strips, the next one is prefetched in equal
/// pieces, one per strip: weights come from DRAM in a real forward pass. A task of one or two strips (a prompt) against
/// a weight packed whole walks panel → k instead (<see cref="RunOneStripAlongPanels"/> for one full-panel-wide tile,
/// <see cref="RunFewStripsAlongPanels"/> otherwise).
/// </remarks>
internal static unsafe class GemmDriver
{
    /// <summary>Runs task <paramref name="task"/> of <paramref name="plan"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // optimised on first call: see KernelPaths
    public static void RunTask<TTiles>(in TTiles tiles, in GemmPlan plan, int task) where TTiles : struct, IGemmTiles
    {
        int rows = TTiles.Rows, columns = TTiles.Columns, width = TTiles.PanelWidth;
        int rowCount = tiles.RowCount, columnCount = tiles.ColumnCount, depth = tiles.Depth, depthBlock = tiles.DepthBlock;
        int rowStart = task / plan.PanelTaskCount * plan.StripsPerTask * rows;
        int rowEnd = Math.Min(rowCount, rowStart + plan.StripsPerTask * rows);
        var (panelStart, panelCount) = plan.PanelsOfTask(task % plan.PanelTaskCount);
        int columnStart = panelStart * width;
        int columnEnd = Math.Min(columnCount, (panelStart + panelCount) * width);

        // Scratch for tiles that hang over the last row or column: the micro-kernel only ever sees full tiles.
        float* edgeX = stackalloc float[rows * GemmPlan.DepthBlock]; // [rows, depthBlock] (float tiles only)
        float* edgeY = stackalloc float[rows * columns];             // [rows, columns]

        if (tiles.PackedWhole && rowEnd - rowStart <= rows && columns == width)
        {
            RunOneStripAlongPanels(tiles, rowStart, rowEnd, panelStart, columnEnd, edgeX, edgeY);
            return;
        }
        // (An int8 tile sums all of K in one pass, so its panels are already walked in order.)
        if (tiles.PackedWhole && rowEnd - rowStart <= AlongPanelsMaxStrips * rows && depthBlock < depth)
        {
            RunFewStripsAlongPanels(tiles, rowStart, rowEnd, panelStart, columnEnd, edgeX, edgeY);
            return;
        }

        for (int k0 = 0; k0 < depth; k0 += depthBlock)
        {
            int blockDepth = Math.Min(depthBlock, depth - k0);
            for (int column = columnStart; column < columnEnd; column += columns)
            {
                byte* slice = tiles.Slice(column, k0, blockDepth);
                var prefetch = NextSliceToPrefetch(tiles, column, columnEnd, panelStart, k0, (rowEnd - rowStart + rows - 1) / rows);
                int tileColumns = Math.Min(columns, columnEnd - column);
                for (int row = rowStart; row < rowEnd; row += rows)
                {
                    prefetch.Step();
                    tiles.Tile(row, Math.Min(rows, rowEnd - row), column, tileColumns, k0, blockDepth, slice, edgeX, edgeY);
                }
            }
        }
    }

    /// <summary>
    /// One strip (a prompt) against a weight packed whole, where the time goes into streaming the weight from DRAM.
    /// Nothing of X is worth keeping in cache between panels, so each panel is walked from k = 0 to K and the task's
    /// panels form one contiguous run of memory, which the micro-kernel may prefetch ahead of itself as it goes (see
    /// <see cref="MicroKernel512Tall"/>); only the run's start is fetched here. The sums are cut into the same k-blocks
    /// as in the other order, so a prompt alone and in a batch give the same bits.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // optimised on first call: see KernelPaths
    private static void RunOneStripAlongPanels<TTiles>(in TTiles tiles, int rowStart, int rowEnd, int panelStart, int columnEnd,
        float* edgeX, float* edgeY) where TTiles : struct, IGemmTiles
    {
        int width = TTiles.PanelWidth, depth = tiles.Depth, depthBlock = tiles.DepthBlock;
        if (Sse.IsSupported)
            for (byte* line = tiles.Slice(panelStart * width, 0, 0), end = line + MicroKernel512Tall.PrefetchBytesAhead; line < end; line += 64)
                Sse.Prefetch1(line);
        for (int column = panelStart * width; column < columnEnd; column += width)
        for (int k0 = 0; k0 < depth; k0 += depthBlock)
        {
            int blockDepth = Math.Min(depthBlock, depth - k0);
            tiles.Tile(rowStart, rowEnd - rowStart, column, Math.Min(width, columnEnd - column), k0, blockDepth,
                tiles.Slice(column, k0, blockDepth), edgeX, edgeY);
        }
    }

    /// <summary>Most strips a task may have for <see cref="RunFewStripsAlongPanels"/>: two 6-row strips, a 12-token prompt.</summary>
    private const int AlongPanelsMaxStrips = 2;

    /// <summary>
    /// A few strips (a prompt of ≤ 12 tokens on 6-row tiles) against a weight packed whole: the weight streams from
    /// DRAM and X is small (≤ 2 strips × K ≤ 12 × 3072 floats, 144 KB: it stays in L2), so each panel is walked from
    /// k = 0 to K, every strip meeting each k-block's slice while it is in L1, and the task's panels are read as one
    /// contiguous run instead of one stream per panel. The next slice (the next k-block, or the next panel's first, which
    /// lies right after) is prefetched in equal pieces, one before each tile: without that the hardware prefetcher alone
    /// left the 12-token pass 19% slower, one slice ahead beat two to four (docs/benchmarks/precision-2026-12-06.md).
    /// Each tile's k-blocks still come in order, so the sums, and the bits, are those of the other order.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // optimised on first call: see KernelPaths
    private static void RunFewStripsAlongPanels<TTiles>(in TTiles tiles, int rowStart, int rowEnd, int panelStart, int columnEnd,
        float* edgeX, float* edgeY) where TTiles : struct, IGemmTiles
    {
        int rows = TTiles.Rows, columns = TTiles.Columns, width = TTiles.PanelWidth;
        int depth = tiles.Depth, depthBlock = tiles.DepthBlock;
        int tilesPerSlice = (width / columns) * ((rowEnd - rowStart + rows - 1) / rows);
        for (int panel = panelStart * width; panel < columnEnd; panel += width)
        for (int k0 = 0; k0 < depth; k0 += depthBlock)
        {
            int blockDepth = Math.Min(depthBlock, depth - k0);
            // The slice after this one in the run: the next k-block of this panel, or the next panel's first.
            bool lastBlock = k0 + depthBlock >= depth;
            int nextPanel = lastBlock ? panel + width : panel, nextK0 = lastBlock ? 0 : k0 + depthBlock;
            var prefetch = !TTiles.PrefetchesAhead && nextPanel < columnEnd
                ? tiles.Prefetch(nextPanel, nextK0, Math.Min(depthBlock, depth - nextK0), tilesPerSlice)
                : default;
            for (int column = panel; column < Math.Min(panel + width, columnEnd); column += columns)
            {
                byte* slice = tiles.Slice(column, k0, blockDepth);
                int tileColumns = Math.Min(columns, columnEnd - column);
                for (int row = rowStart; row < rowEnd; row += rows)
                {
                    prefetch.Step();
                    tiles.Tile(row, Math.Min(rows, rowEnd - row), column, tileColumns, k0, blockDepth, slice, edgeX, edgeY);
                }
            }
        }
    }

    /// <summary>
    /// The slice this task needs after the one at (<paramref name="column"/>, <paramref name="k0"/>): the next panel, or
    /// the first panel of the next k-block. None when the next tile is the other part of the same panel (already cached).
    /// </summary>
    private static PanelPrefetch NextSliceToPrefetch<TTiles>(in TTiles tiles, int column, int columnEnd, int panelStart, int k0,
        int strips) where TTiles : struct, IGemmTiles
    {
        int width = TTiles.PanelWidth, nextColumn = column + TTiles.Columns, nextK0 = k0;
        if (nextColumn % width != 0) return default;
        if (nextColumn >= columnEnd)
        {
            nextColumn = panelStart * width;
            nextK0 = k0 + tiles.DepthBlock;
            if (nextK0 >= tiles.Depth) return default;
        }
        return tiles.Prefetch(nextColumn, nextK0, Math.Min(tiles.DepthBlock, tiles.Depth - nextK0), strips);
    }
}
