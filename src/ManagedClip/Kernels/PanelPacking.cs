using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace ManagedClip.Kernels;

/// <summary>
/// Rearranges one slice of a row-major weight into the order the micro-kernel reads it, right before use
/// (BLIS-style packing of B): 32 output features × up to 256 steps of k, 32 KB, into a per-thread buffer in L1.
/// </summary>
/// <remarks>
/// In a packed slice P [depth, 32] the 32 weights that meet input feature k are adjacent: P[k, j] = W[n0 + j, k0 + k].
/// The micro-kernel then loads "row k of the panel" as two 512-bit vectors and walks k with a single pointer.
/// Packing costs one read of the slice (which the product needs anyway) and an L1 write, once per task, while
/// the slice then meets every strip of the task's rows; so no packed copy of the whole weight is ever kept.
/// </remarks>
internal static unsafe class PanelPacking
{
    /// <summary>Output features per panel: two 512-bit vectors, four 256-bit ones.</summary>
    public const int PanelWidth = 32;

    private const int AlignmentInFloats = 64 / sizeof(float);

    /// <summary>One per thread: a 64-byte-aligned [DepthBlock, 32] slice, so vector loads never straddle a cache line.</summary>
    [ThreadStatic] private static float[]? buffer;

    /// <summary>This thread's slice buffer, [<see cref="GemmPlan.DepthBlock"/>, 32], pinned for the thread's lifetime.</summary>
    public static float* BufferForThisThread()
    {
        // Pinned-heap arrays never move, so the aligned address stays valid.
        buffer ??= GC.AllocateUninitializedArray<float>(GemmPlan.DepthBlock * PanelWidth + AlignmentInFloats, pinned: true);
        float* start = (float*)Unsafe.AsPointer(ref buffer[0]);
        return start + (64 - (nint)start % 64) % 64 / sizeof(float);
    }

    /// <summary>
    /// P [depth, 32] = W[rows[0..32), k0 .. k0 + depth)ᵀ; lanes past <paramref name="rowCount"/> (the last panel) are zero.
    /// </summary>
    /// <param name="rows">Addresses of the panel's rows of W.</param>
    /// <param name="rowCount">Rows present, 1 to 32.</param>
    /// <param name="k0">First input feature of the slice.</param>
    /// <param name="depth">Steps of k, at most <see cref="GemmPlan.DepthBlock"/>.</param>
    /// <param name="panel">P [depth, 32]</param>
    /// <param name="path">The scalar path packs with scalar code too (tests check both).</param>
    public static void Pack(float** rows, int rowCount, int k0, int depth, float* panel, KernelPath path)
    {
        int vectorDepth = Avx.IsSupported && path != KernelPath.Scalar ? depth / 8 * 8 : 0;
        for (int j0 = 0; j0 < PanelWidth; j0 += 8)
        {
            int k = 0;
            if (j0 + 8 <= rowCount)
                for (; k < vectorDepth; k += 8) Transpose8x8(rows + j0, k0 + k, panel + k * PanelWidth + j0);
            for (; k < depth; k++)
            for (int j = j0; j < j0 + 8; j++)
                panel[k * PanelWidth + j] = j < rowCount ? rows[j][k0 + k] : 0;
        }
    }

    /// <summary>An 8×8 block: P[k + i, j] = W[rows[j], column + i] for i, j in 0..8, written at row stride 32.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Transpose8x8(float** rows, int column, float* destination)
    {
        var r0 = Avx.LoadVector256(rows[0] + column);
        var r1 = Avx.LoadVector256(rows[1] + column);
        var r2 = Avx.LoadVector256(rows[2] + column);
        var r3 = Avx.LoadVector256(rows[3] + column);
        var r4 = Avx.LoadVector256(rows[4] + column);
        var r5 = Avx.LoadVector256(rows[5] + column);
        var r6 = Avx.LoadVector256(rows[6] + column);
        var r7 = Avx.LoadVector256(rows[7] + column);
        // Interleave pairs of rows: t0 = r0[0] r1[0] r0[1] r1[1] | r0[4] r1[4] r0[5] r1[5], and so on.
        var t0 = Avx.UnpackLow(r0, r1); var t1 = Avx.UnpackHigh(r0, r1);
        var t2 = Avx.UnpackLow(r2, r3); var t3 = Avx.UnpackHigh(r2, r3);
        var t4 = Avx.UnpackLow(r4, r5); var t5 = Avx.UnpackHigh(r4, r5);
        var t6 = Avx.UnpackLow(r6, r7); var t7 = Avx.UnpackHigh(r6, r7);
        // Then pairs of pairs: s0 = r0..r3 at column 0 | r0..r3 at column 4, s1 columns 1 | 5, ...
        var s0 = Avx.Shuffle(t0, t2, 0x44); var s1 = Avx.Shuffle(t0, t2, 0xEE);
        var s2 = Avx.Shuffle(t1, t3, 0x44); var s3 = Avx.Shuffle(t1, t3, 0xEE);
        var s4 = Avx.Shuffle(t4, t6, 0x44); var s5 = Avx.Shuffle(t4, t6, 0xEE);
        var s6 = Avx.Shuffle(t5, t7, 0x44); var s7 = Avx.Shuffle(t5, t7, 0xEE);
        // Finally join the 128-bit halves of rows 0..3 and 4..7.
        Avx.Store(destination + 0 * PanelWidth, Avx.Permute2x128(s0, s4, 0x20));
        Avx.Store(destination + 1 * PanelWidth, Avx.Permute2x128(s1, s5, 0x20));
        Avx.Store(destination + 2 * PanelWidth, Avx.Permute2x128(s2, s6, 0x20));
        Avx.Store(destination + 3 * PanelWidth, Avx.Permute2x128(s3, s7, 0x20));
        Avx.Store(destination + 4 * PanelWidth, Avx.Permute2x128(s0, s4, 0x31));
        Avx.Store(destination + 5 * PanelWidth, Avx.Permute2x128(s1, s5, 0x31));
        Avx.Store(destination + 6 * PanelWidth, Avx.Permute2x128(s2, s6, 0x31));
        Avx.Store(destination + 7 * PanelWidth, Avx.Permute2x128(s3, s7, 0x31));
    }
}
