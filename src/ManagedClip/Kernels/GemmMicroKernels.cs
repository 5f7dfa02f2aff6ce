using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace ManagedClip.Kernels;

/// <summary>
/// The innermost GEMM step: one register tile C[Rows, Columns] (+)= X[Rows, depth] · P[depth, Columns], where P
/// is a weight slice packed by <see cref="PanelPacking"/> (row stride <see cref="PanelPacking.PanelWidth"/>).
/// </summary>
/// <remarks>
/// The whole tile of C lives in registers while k runs; each step loads one panel row, broadcasts one X element
/// per tile row and issues Rows × (Columns / lanes) independent fused multiply-adds. X is read in place (row
/// stride <c>xStride</c>), so neither the input nor a slice of a bigger buffer needs copying.
/// </remarks>
internal interface IGemmMicroKernel<TPanel> where TPanel : unmanaged
{
    /// <summary>Rows of X (and C) per tile.</summary>
    static abstract int Rows { get; }

    /// <summary>Columns of C per tile; divides <see cref="PanelPacking.PanelWidth"/>.</summary>
    static abstract int Columns { get; }

    /// <summary>C = (accumulate ? C : 0) + X·P over <paramref name="depth"/> steps of k.</summary>
    /// <param name="x">X [Rows, depth], row stride <paramref name="xStride"/></param>
    /// <param name="xStride">Distance between rows of X, in floats.</param>
    /// <param name="panel">P [depth, 32] (only the first Columns of each row are used): float32, or bf16 widened in registers</param>
    /// <param name="depth">Steps of k.</param>
    /// <param name="c">C [Rows, Columns], row stride <paramref name="cStride"/></param>
    /// <param name="cStride">Distance between rows of C, in floats.</param>
    /// <param name="accumulate">Add to C instead of overwriting it.</param>
    static abstract unsafe void Run(float* x, nint xStride, TPanel* panel, int depth, float* c, nint cStride, bool accumulate);

    /// <summary>True if the kernel prefetches the weight run ahead of itself as it goes (then the driver does not).</summary>
    static virtual bool PrefetchesAhead => false;
}

/// <summary>
/// 8 × 32 tile for AVX-512: 16 accumulators + 2 panel vectors + 1 broadcast fit the 32 zmm registers, and
/// 16 independent FMAs per step cover the FMA latency (4 cycles × 2 pipes). The benchmarks' FmaPeak is its yardstick;
/// 6×32, 12×32 and 6×64 tiles were tried and were no faster (docs/benchmarks/design-measurements-2026-12-01.md).
/// </summary>
internal readonly struct MicroKernel512 : IGemmMicroKernel<float>
{
    public static int Rows => 8;
    public static int Columns => 32;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // optimised on first call: see KernelPaths
    public static unsafe void Run(float* x, nint xStride, float* panel, int depth, float* c, nint cStride, bool accumulate)
    {
        Vector512<float> c00 = default, c01 = default;
        Vector512<float> c10 = default, c11 = default;
        Vector512<float> c20 = default, c21 = default;
        Vector512<float> c30 = default, c31 = default;
        Vector512<float> c40 = default, c41 = default;
        Vector512<float> c50 = default, c51 = default;
        Vector512<float> c60 = default, c61 = default;
        Vector512<float> c70 = default, c71 = default;
        float* x0 = x + 0 * xStride;
        float* x1 = x + 1 * xStride;
        float* x2 = x + 2 * xStride;
        float* x3 = x + 3 * xStride;
        float* x4 = x + 4 * xStride;
        float* x5 = x + 5 * xStride;
        float* x6 = x + 6 * xStride;
        float* x7 = x + 7 * xStride;
        for (int k = 0; k < depth; k++)
        {
            var w0 = Vector512.Load(panel); // P[k, 0..16)
            var w1 = Vector512.Load(panel + 16); // P[k, 16..32)
            panel += PanelPacking.PanelWidth;
            Vector512<float> a;
            a = Vector512.Create(x0[k]); c00 = Vector512.FusedMultiplyAdd(a, w0, c00); c01 = Vector512.FusedMultiplyAdd(a, w1, c01);
            a = Vector512.Create(x1[k]); c10 = Vector512.FusedMultiplyAdd(a, w0, c10); c11 = Vector512.FusedMultiplyAdd(a, w1, c11);
            a = Vector512.Create(x2[k]); c20 = Vector512.FusedMultiplyAdd(a, w0, c20); c21 = Vector512.FusedMultiplyAdd(a, w1, c21);
            a = Vector512.Create(x3[k]); c30 = Vector512.FusedMultiplyAdd(a, w0, c30); c31 = Vector512.FusedMultiplyAdd(a, w1, c31);
            a = Vector512.Create(x4[k]); c40 = Vector512.FusedMultiplyAdd(a, w0, c40); c41 = Vector512.FusedMultiplyAdd(a, w1, c41);
            a = Vector512.Create(x5[k]); c50 = Vector512.FusedMultiplyAdd(a, w0, c50); c51 = Vector512.FusedMultiplyAdd(a, w1, c51);
            a = Vector512.Create(x6[k]); c60 = Vector512.FusedMultiplyAdd(a, w0, c60); c61 = Vector512.FusedMultiplyAdd(a, w1, c61);
            a = Vector512.Create(x7[k]); c70 = Vector512.FusedMultiplyAdd(a, w0, c70); c71 = Vector512.FusedMultiplyAdd(a, w1, c71);
        }
        Store(c + 0 * cStride, c00, c01, accumulate);
        Store(c + 1 * cStride, c10, c11, accumulate);
        Store(c + 2 * cStride, c20, c21, accumulate);
        Store(c + 3 * cStride, c30, c31, accumulate);
        Store(c + 4 * cStride, c40, c41, accumulate);
        Store(c + 5 * cStride, c50, c51, accumulate);
        Store(c + 6 * cStride, c60, c61, accumulate);
        Store(c + 7 * cStride, c70, c71, accumulate);
    }

    /// <summary>One 32-wide row of C from two accumulators (the 12-row kernel stores the same way).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static unsafe void Store(float* c, Vector512<float> left, Vector512<float> right, bool accumulate)
    {
        if (accumulate)
        {
            left += Vector512.Load(c);
            right += Vector512.Load(c + 16);
        }
        Vector512.Store(left, c);
        Vector512.Store(right, c + 16);
    }
}

/// <summary>
/// 12 × 32 tile for AVX-512, used when the whole product has at most 12 rows (one prompt): a single strip then
/// covers every row, where 8-row strips would need two and compute 16. 24 accumulators + 2 panel vectors + 1
/// broadcast of the 32 zmm registers. Against <see cref="MicroKernel512"/> with weights from DRAM it is faster at 12
/// rows and slower at 50 and 197 (docs/benchmarks/design-measurements-2026-12-01.md), so it is only used for short
/// inputs.
/// </summary>
/// <remarks>
/// Such products do little arithmetic per weight and wait on DRAM. With the weight packed whole the panels are
/// walked as one contiguous run (<c>GemmProduct.RunOneStripAlongPanels</c>), and every step prefetches the two lines
/// 16 KB further along it: a steady stream of requests keeps more of them in flight than a burst per slice. Over a
/// slice packed just before use (the small heads) the prefetches land past the 32 KB buffer and do nothing useful;
/// prefetches never fault.
/// </remarks>
internal readonly struct MicroKernel512Tall : IGemmMicroKernel<float>
{
    public static int Rows => 12;
    public static int Columns => 32;

    /// <summary>How far ahead of the panel row in use the kernel prefetches (8 to 32 KB measured alike).</summary>
    public const int PrefetchBytesAhead = 16 << 10;

    public static bool PrefetchesAhead => true;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // optimised on first call: see KernelPaths
    public static unsafe void Run(float* x, nint xStride, float* panel, int depth, float* c, nint cStride, bool accumulate)
    {
        Vector512<float> c00 = default, c01 = default;
        Vector512<float> c10 = default, c11 = default;
        Vector512<float> c20 = default, c21 = default;
        Vector512<float> c30 = default, c31 = default;
        Vector512<float> c40 = default, c41 = default;
        Vector512<float> c50 = default, c51 = default;
        Vector512<float> c60 = default, c61 = default;
        Vector512<float> c70 = default, c71 = default;
        Vector512<float> c80 = default, c81 = default;
        Vector512<float> c90 = default, c91 = default;
        Vector512<float> ca0 = default, ca1 = default;
        Vector512<float> cb0 = default, cb1 = default;
        float* x0 = x + 0 * xStride;
        float* x1 = x + 1 * xStride;
        float* x2 = x + 2 * xStride;
        float* x3 = x + 3 * xStride;
        float* x4 = x + 4 * xStride;
        float* x5 = x + 5 * xStride;
        float* x6 = x + 6 * xStride;
        float* x7 = x + 7 * xStride;
        float* x8 = x + 8 * xStride;
        float* x9 = x + 9 * xStride;
        float* xa = x + 10 * xStride;
        float* xb = x + 11 * xStride;
        for (int k = 0; k < depth; k++)
        {
            var w0 = Vector512.Load(panel); // P[k, 0..16)
            var w1 = Vector512.Load(panel + 16); // P[k, 16..32)
            panel += PanelPacking.PanelWidth;
            if (Sse.IsSupported) // the two lines 16 KB on: see the remarks
            {
                Sse.Prefetch1((byte*)panel + PrefetchBytesAhead);
                Sse.Prefetch1((byte*)panel + PrefetchBytesAhead + 64);
            }
            Vector512<float> a;
            a = Vector512.Create(x0[k]); c00 = Vector512.FusedMultiplyAdd(a, w0, c00); c01 = Vector512.FusedMultiplyAdd(a, w1, c01);
            a = Vector512.Create(x1[k]); c10 = Vector512.FusedMultiplyAdd(a, w0, c10); c11 = Vector512.FusedMultiplyAdd(a, w1, c11);
            a = Vector512.Create(x2[k]); c20 = Vector512.FusedMultiplyAdd(a, w0, c20); c21 = Vector512.FusedMultiplyAdd(a, w1, c21);
            a = Vector512.Create(x3[k]); c30 = Vector512.FusedMultiplyAdd(a, w0, c30); c31 = Vector512.FusedMultiplyAdd(a, w1, c31);
            a = Vector512.Create(x4[k]); c40 = Vector512.FusedMultiplyAdd(a, w0, c40); c41 = Vector512.FusedMultiplyAdd(a, w1, c41);
            a = Vector512.Create(x5[k]); c50 = Vector512.FusedMultiplyAdd(a, w0, c50); c51 = Vector512.FusedMultiplyAdd(a, w1, c51);
            a = Vector512.Create(x6[k]); c60 = Vector512.FusedMultiplyAdd(a, w0, c60); c61 = Vector512.FusedMultiplyAdd(a, w1, c61);
            a = Vector512.Create(x7[k]); c70 = Vector512.FusedMultiplyAdd(a, w0, c70); c71 = Vector512.FusedMultiplyAdd(a, w1, c71);
            a = Vector512.Create(x8[k]); c80 = Vector512.FusedMultiplyAdd(a, w0, c80); c81 = Vector512.FusedMultiplyAdd(a, w1, c81);
            a = Vector512.Create(x9[k]); c90 = Vector512.FusedMultiplyAdd(a, w0, c90); c91 = Vector512.FusedMultiplyAdd(a, w1, c91);
            a = Vector512.Create(xa[k]); ca0 = Vector512.FusedMultiplyAdd(a, w0, ca0); ca1 = Vector512.FusedMultiplyAdd(a, w1, ca1);
            a = Vector512.Create(xb[k]); cb0 = Vector512.FusedMultiplyAdd(a, w0, cb0); cb1 = Vector512.FusedMultiplyAdd(a, w1, cb1);
        }
        MicroKernel512.Store(c + 0 * cStride, c00, c01, accumulate);
        MicroKernel512.Store(c + 1 * cStride, c10, c11, accumulate);
        MicroKernel512.Store(c + 2 * cStride, c20, c21, accumulate);
        MicroKernel512.Store(c + 3 * cStride, c30, c31, accumulate);
        MicroKernel512.Store(c + 4 * cStride, c40, c41, accumulate);
        MicroKernel512.Store(c + 5 * cStride, c50, c51, accumulate);
        MicroKernel512.Store(c + 6 * cStride, c60, c61, accumulate);
        MicroKernel512.Store(c + 7 * cStride, c70, c71, accumulate);
        MicroKernel512.Store(c + 8 * cStride, c80, c81, accumulate);
        MicroKernel512.Store(c + 9 * cStride, c90, c91, accumulate);
        MicroKernel512.Store(c + 10 * cStride, ca0, ca1, accumulate);
        MicroKernel512.Store(c + 11 * cStride, cb0, cb1, accumulate);
    }
}

/// <summary>
/// 6 × 16 tile for AVX2: 12 accumulators + 2 panel vectors + 1 broadcast fit the 16 ymm registers of an AVX2
/// machine. A 32-wide panel is covered by two calls.
/// </summary>
internal readonly struct MicroKernel256 : IGemmMicroKernel<float>
{
    public static int Rows => 6;
    public static int Columns => 16;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // optimised on first call: see KernelPaths
    public static unsafe void Run(float* x, nint xStride, float* panel, int depth, float* c, nint cStride, bool accumulate) =>
        Run(x, xStride, panel, depth, c, cStride, accumulate, prefetchAhead: false);

    /// <summary>
    /// The tile; with <paramref name="prefetchAhead"/> (a constant at each call site, so the JIT keeps one loop or the
    /// other) every step also prefetches the line <see cref="MicroKernel256Streaming.PrefetchBytesAhead"/> further along
    /// the panel run.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static unsafe void Run(float* x, nint xStride, float* panel, int depth, float* c, nint cStride, bool accumulate,
        bool prefetchAhead)
    {
        Vector256<float> c00 = default, c01 = default;
        Vector256<float> c10 = default, c11 = default;
        Vector256<float> c20 = default, c21 = default;
        Vector256<float> c30 = default, c31 = default;
        Vector256<float> c40 = default, c41 = default;
        Vector256<float> c50 = default, c51 = default;
        float* x0 = x + 0 * xStride;
        float* x1 = x + 1 * xStride;
        float* x2 = x + 2 * xStride;
        float* x3 = x + 3 * xStride;
        float* x4 = x + 4 * xStride;
        float* x5 = x + 5 * xStride;
        for (int k = 0; k < depth; k++)
        {
            var w0 = Vector256.Load(panel); // P[k, 0..8)
            var w1 = Vector256.Load(panel + 8); // P[k, 8..16)
            if (prefetchAhead && Sse.IsSupported) Sse.Prefetch1((byte*)panel + MicroKernel256Streaming.PrefetchBytesAhead);
            panel += PanelPacking.PanelWidth;
            Vector256<float> a;
            a = Vector256.Create(x0[k]); c00 = Vector256.FusedMultiplyAdd(a, w0, c00); c01 = Vector256.FusedMultiplyAdd(a, w1, c01);
            a = Vector256.Create(x1[k]); c10 = Vector256.FusedMultiplyAdd(a, w0, c10); c11 = Vector256.FusedMultiplyAdd(a, w1, c11);
            a = Vector256.Create(x2[k]); c20 = Vector256.FusedMultiplyAdd(a, w0, c20); c21 = Vector256.FusedMultiplyAdd(a, w1, c21);
            a = Vector256.Create(x3[k]); c30 = Vector256.FusedMultiplyAdd(a, w0, c30); c31 = Vector256.FusedMultiplyAdd(a, w1, c31);
            a = Vector256.Create(x4[k]); c40 = Vector256.FusedMultiplyAdd(a, w0, c40); c41 = Vector256.FusedMultiplyAdd(a, w1, c41);
            a = Vector256.Create(x5[k]); c50 = Vector256.FusedMultiplyAdd(a, w0, c50); c51 = Vector256.FusedMultiplyAdd(a, w1, c51);
        }
        Store(c + 0 * cStride, c00, c01, accumulate);
        Store(c + 1 * cStride, c10, c11, accumulate);
        Store(c + 2 * cStride, c20, c21, accumulate);
        Store(c + 3 * cStride, c30, c31, accumulate);
        Store(c + 4 * cStride, c40, c41, accumulate);
        Store(c + 5 * cStride, c50, c51, accumulate);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Store(float* c, Vector256<float> left, Vector256<float> right, bool accumulate)
    {
        if (accumulate)
        {
            left += Vector256.Load(c);
            right += Vector256.Load(c + 8);
        }
        Vector256.Store(left, c);
        Vector256.Store(right, c + 8);
    }
}

/// <summary>
/// <see cref="MicroKernel256"/>, the same arithmetic, prefetching as it goes: used when the whole product has at most two
/// strips (a prompt) and the weight is packed whole, so the panels are walked as one contiguous run
/// (<c>GemmDriver.RunFewStripsAlongPanels</c>) and every tile's step prefetches the line a fixed distance further along
/// it. A 16-wide tile's steps advance 128 bytes (a whole panel row) and touch one of its two lines, the tile beside it
/// the other; so the tiles of the first strip request every line of the run ahead, one per step, a steady stream rather
/// than a burst per slice (as <see cref="MicroKernel512Tall"/> does on AVX-512). With the burst the core waited for
/// memory and computed by turns (a 12-token pass took the DRAM floor plus the compute floor); the stream overlaps them
/// (docs/benchmarks/precision-2026-12-06.md, "prompt branch").
/// </summary>
internal readonly struct MicroKernel256Streaming : IGemmMicroKernel<float>
{
    public static int Rows => MicroKernel256.Rows;
    public static int Columns => MicroKernel256.Columns;

    /// <summary>How far ahead of the panel row in use the kernel prefetches (8, 16 and 32 KB measured alike).</summary>
    public const int PrefetchBytesAhead = 16 << 10;

    public static bool PrefetchesAhead => true;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // optimised on first call: see KernelPaths
    public static unsafe void Run(float* x, nint xStride, float* panel, int depth, float* c, nint cStride, bool accumulate) =>
        MicroKernel256.Run(x, xStride, panel, depth, c, cStride, accumulate, prefetchAhead: true);
}

/// <summary>
/// 4 × 16 tile for 128-bit vectors (Arm NEON, where Vector256 is not accelerated): 16 accumulators + 4 panel
/// vectors + 1 broadcast, within NEON's 32 registers. A 32-wide panel is covered by two calls.
/// </summary>
internal readonly struct MicroKernel128 : IGemmMicroKernel<float>
{
    public static int Rows => 4;
    public static int Columns => 16;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // optimised on first call: see KernelPaths
    public static unsafe void Run(float* x, nint xStride, float* panel, int depth, float* c, nint cStride, bool accumulate)
    {
        Vector128<float> c00 = default, c01 = default, c02 = default, c03 = default;
        Vector128<float> c10 = default, c11 = default, c12 = default, c13 = default;
        Vector128<float> c20 = default, c21 = default, c22 = default, c23 = default;
        Vector128<float> c30 = default, c31 = default, c32 = default, c33 = default;
        float* x0 = x + 0 * xStride;
        float* x1 = x + 1 * xStride;
        float* x2 = x + 2 * xStride;
        float* x3 = x + 3 * xStride;
        for (int k = 0; k < depth; k++)
        {
            var w0 = Vector128.Load(panel); // P[k, 0..4)
            var w1 = Vector128.Load(panel + 4);
            var w2 = Vector128.Load(panel + 8);
            var w3 = Vector128.Load(panel + 12); // P[k, 12..16)
            panel += PanelPacking.PanelWidth;
            Vector128<float> a;
            a = Vector128.Create(x0[k]);
            c00 = Vector128.FusedMultiplyAdd(a, w0, c00); c01 = Vector128.FusedMultiplyAdd(a, w1, c01);
            c02 = Vector128.FusedMultiplyAdd(a, w2, c02); c03 = Vector128.FusedMultiplyAdd(a, w3, c03);
            a = Vector128.Create(x1[k]);
            c10 = Vector128.FusedMultiplyAdd(a, w0, c10); c11 = Vector128.FusedMultiplyAdd(a, w1, c11);
            c12 = Vector128.FusedMultiplyAdd(a, w2, c12); c13 = Vector128.FusedMultiplyAdd(a, w3, c13);
            a = Vector128.Create(x2[k]);
            c20 = Vector128.FusedMultiplyAdd(a, w0, c20); c21 = Vector128.FusedMultiplyAdd(a, w1, c21);
            c22 = Vector128.FusedMultiplyAdd(a, w2, c22); c23 = Vector128.FusedMultiplyAdd(a, w3, c23);
            a = Vector128.Create(x3[k]);
            c30 = Vector128.FusedMultiplyAdd(a, w0, c30); c31 = Vector128.FusedMultiplyAdd(a, w1, c31);
            c32 = Vector128.FusedMultiplyAdd(a, w2, c32); c33 = Vector128.FusedMultiplyAdd(a, w3, c33);
        }
        Store(c + 0 * cStride, c00, c01, c02, c03, accumulate);
        Store(c + 1 * cStride, c10, c11, c12, c13, accumulate);
        Store(c + 2 * cStride, c20, c21, c22, c23, accumulate);
        Store(c + 3 * cStride, c30, c31, c32, c33, accumulate);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Store(float* c, Vector128<float> v0, Vector128<float> v1, Vector128<float> v2, Vector128<float> v3,
        bool accumulate)
    {
        if (accumulate)
        {
            v0 += Vector128.Load(c);
            v1 += Vector128.Load(c + 4);
            v2 += Vector128.Load(c + 8);
            v3 += Vector128.Load(c + 12);
        }
        Vector128.Store(v0, c);
        Vector128.Store(v1, c + 4);
        Vector128.Store(v2, c + 8);
        Vector128.Store(v3, c + 12);
    }
}

/// <summary>One row × one whole panel in plain scalar code: the fallback, and the tile loop written out.</summary>
internal readonly struct MicroKernelScalar : IGemmMicroKernel<float>
{
    public static int Rows => 1;
    public static int Columns => PanelPacking.PanelWidth;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // optimised on first call: see KernelPaths
    public static unsafe void Run(float* x, nint xStride, float* panel, int depth, float* c, nint cStride, bool accumulate)
    {
        float* sums = stackalloc float[PanelPacking.PanelWidth]; // zeroed by the runtime
        for (int k = 0; k < depth; k++)
        {
            float xk = x[k];
            for (int j = 0; j < PanelPacking.PanelWidth; j++) sums[j] += xk * panel[j];
            panel += PanelPacking.PanelWidth;
        }
        for (int j = 0; j < PanelPacking.PanelWidth; j++) c[j] = accumulate ? c[j] + sums[j] : sums[j];
    }
}
