using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace ManagedClip.Kernels;

/// <summary>
/// Rearranges one slice of a row-major weight into the order the micro-kernel reads it (BLIS-style packing of B):
/// 32 output features × up to 256 steps of k, 32 KB.
/// </summary>
/// <remarks>
/// In a packed slice P [depth, 32] the 32 weights that meet input feature k are adjacent: P[k, j] = W[n0 + j, k0 + k].
/// The micro-kernel then loads "row k of the panel" as two 512-bit vectors and walks k with a single pointer.
/// A weight packed whole (<see cref="WeightMatrix.Packed"/>: every block weight of both towers, at load) is these
/// slices one after another. A weight read in place (the small heads) is packed a slice at a time into a per-thread
/// buffer in L1, just before use: one read of the slice, which the product needs anyway, and an L1 write, once per
/// task, while the slice then meets every strip of the task's rows.
/// </remarks>
internal static unsafe class PanelPacking
{
    /// <summary>Output features per panel: two 512-bit vectors, four 256-bit ones.</summary>
    public const int PanelWidth = 32;

    /// <summary>One per thread: a 64-byte-aligned [DepthBlock, 32] slice, so vector loads never straddle a cache line.</summary>
    [ThreadStatic] private static AlignedBuffer buffer;

    /// <summary>This thread's slice buffer, [<see cref="GemmPlan.DepthBlock"/>, 32], pinned for the thread's lifetime.</summary>
    public static float* BufferForThisThread()
    {
        buffer.EnsureLength(GemmPlan.DepthBlock * PanelWidth); // allocates on the thread's first call only
        return buffer.Start;
    }

    /// <summary>
    /// P [depth, 32] = W[rows[0..32), k0 .. k0 + depth)ᵀ; lanes past <paramref name="rowCount"/> (the last panel) are zero.
    /// </summary>
    /// <param name="rows">Addresses of the panel's rows of W.</param>
    /// <param name="rowCount">Rows present, 1 to 32.</param>
    /// <param name="k0">First input feature of the slice.</param>
    /// <param name="depth">Steps of k, at most <see cref="GemmPlan.DepthBlock"/>.</param>
    /// <param name="panel">P [depth, 32]</param>
    /// <param name="path">The scalar path packs element by element; the others with AVX where the CPU has it
    /// (tests run every path, so both ways are checked).</param>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // optimised on first call: see KernelPaths
    public static void Pack(float** rows, int rowCount, int k0, int depth, float* panel, KernelPath path)
    {
        // Full groups of 8 rows go 4 columns at a time; the rest of k, and the last panel's missing rows, element by
        // element. (A 16-row AVX-512 version was tried and was no faster: the 512-bit shuffles are not the limit.)
        int vectorDepth = Avx.IsSupported && path != KernelPath.Scalar ? depth / 4 * 4 : 0;
        for (int j0 = 0; j0 < PanelWidth; j0 += 8)
        {
            int k = 0;
            if (j0 + 8 <= rowCount)
                for (; k < vectorDepth; k += 4) Transpose8x4(rows + j0, k0 + k, panel + k * PanelWidth + j0);
            for (; k < depth; k++)
            for (int j = j0; j < j0 + 8; j++)
                panel[k * PanelWidth + j] = j < rowCount ? rows[j][k0 + k] : 0;
        }
    }

    /// <summary>
    /// An 8×4 block: P[i, j] = W[rows[j], column + i] for i in 0..4, j in 0..8, written at row stride 32.
    /// Each vector is assembled from two rows' 4-float pieces (rows j and j + 4 in its two 128-bit lanes), so a
    /// 4×4 transpose inside each lane finishes the job: 8 shuffles per 32 floats.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Transpose8x4(float** rows, int column, float* destination)
    {
        var v0 = Vector256.Create(Vector128.Load(rows[0] + column), Vector128.Load(rows[4] + column));
        var v1 = Vector256.Create(Vector128.Load(rows[1] + column), Vector128.Load(rows[5] + column));
        var v2 = Vector256.Create(Vector128.Load(rows[2] + column), Vector128.Load(rows[6] + column));
        var v3 = Vector256.Create(Vector128.Load(rows[3] + column), Vector128.Load(rows[7] + column));
        // In each lane: t0 = a0 b0 a1 b1, t1 = a2 b2 a3 b3 (a, b that lane's rows in v0, v1); t2, t3 from v2, v3.
        var t0 = Avx.UnpackLow(v0, v1); var t1 = Avx.UnpackHigh(v0, v1);
        var t2 = Avx.UnpackLow(v2, v3); var t3 = Avx.UnpackHigh(v2, v3);
        Vector256.Store(Avx.Shuffle(t0, t2, 0x44), destination + 0 * PanelWidth); // column + 0 of rows 0..7
        Vector256.Store(Avx.Shuffle(t0, t2, 0xEE), destination + 1 * PanelWidth);
        Vector256.Store(Avx.Shuffle(t1, t3, 0x44), destination + 2 * PanelWidth);
        Vector256.Store(Avx.Shuffle(t1, t3, 0xEE), destination + 3 * PanelWidth);
    }
}
