using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace ManagedClip.Kernels;

/// <summary>
/// Y[M,N] = X[M,K] · W[N,K]ᵀ + b with W stored as bfloat16 (<see cref="PanelElement.BFloat16"/>): each panel row is
/// widened to float32 in registers (a 16-bit shift) and multiplied with float32 FMA, sums in float32. Only the weight
/// is rounded; the activations and all arithmetic stay float32, so the error is that of the weights alone.
/// </summary>
/// <remarks>
/// The work is cut up and run as the float32 GEMM's (<see cref="GemmPlan"/>, <see cref="GemmDriver"/> with
/// <see cref="FloatTiles{TKernel, TPanel}"/>: strips × groups of 32-wide panels, k-blocks of 256). A bf16 slice [256, 32] is 16 KB, half the float32 one, and the weight streams from memory at
/// half the bytes: that is what a prompt (a few rows, bound by weight bandwidth) gains. There is no AVX-512 BF16
/// here: the widening costs two instructions per 8 weights, shared by the 6 rows of a tile.
/// </remarks>
internal static unsafe class GemmBFloat16
{
    /// <summary>Y = X·Wᵀ + b (then <paramref name="epilogue"/>), W a bf16 weight; arguments checked by <see cref="Gemm.Multiply(ReadOnlySpan{float}, int, WeightMatrix, ReadOnlySpan{float}, Span{float}, GemmEpilogue)"/>.</summary>
    public static void Multiply(float* x, int rowCount, WeightMatrix weight, float* bias, float* y, GemmEpilogue epilogue, KernelPath path)
    {
        var product = new Product(x, rowCount, weight, bias, y, epilogue, path);
        bool worthWorkers = (long)rowCount * weight.RowCount * weight.ColumnCount >= GemmPlan.ParallelThreshold;
        Parallelism.For(product.Plan.TaskCount, product, worthWorkers ? Parallelism.MaxDegree : 1);
    }

    /// <summary>True where the 6×16 AVX2 micro-kernel runs; elsewhere the scalar one.</summary>
    private static bool UsesAvx2(KernelPath path) => Avx2.IsSupported && path is KernelPath.Vector256 or KernelPath.Vector512;

    private readonly struct Product : Parallelism.IParallelBody
    {
        private readonly FloatOperands<ushort> operands; // W [⌈N/32⌉, K, 32] bf16, packed whole
        private readonly KernelPath path;
        public readonly GemmPlan Plan;

        public Product(float* x, int rowCount, WeightMatrix weight, float* bias, float* y, GemmEpilogue epilogue, KernelPath path)
        {
            int n = weight.RowCount, k = weight.ColumnCount;
            operands = new FloatOperands<ushort>(x, k, rowCount, null, weight.BFloat16Panels, n, k, bias, y, n, epilogue, path);
            this.path = path;
            int panelCount = (n + PanelPacking.PanelWidth - 1) / PanelPacking.PanelWidth;
            Plan = new GemmPlan(rowCount, panelCount, UsesAvx2(path) ? MicroKernelBFloat16Avx2.Rows : 1, Parallelism.MaxDegree);
        }

        public void Run(int task)
        {
            // A prompt (at most two strips) streams the weight run once: the kernel that prefetches along it.
            if (UsesAvx2(path) && operands.RowCount <= 2 * MicroKernelBFloat16Avx2.Rows)
                GemmDriver.RunTask(new FloatTiles<MicroKernelBFloat16Avx2Streaming, ushort>(operands), Plan, task);
            else if (UsesAvx2(path)) GemmDriver.RunTask(new FloatTiles<MicroKernelBFloat16Avx2, ushort>(operands), Plan, task);
            else GemmDriver.RunTask(new FloatTiles<MicroKernelBFloat16Scalar, ushort>(operands), Plan, task);
        }
    }
}

/// <summary>
/// 6 × 16 tile for AVX2 + FMA, the float32 <see cref="MicroKernel256"/> with its panel loads widened: vpmovzxwd
/// (zero-extend 8 bf16 to 32 bits, straight from memory) and a 16-bit left shift make 8 float32 weights.
/// </summary>
internal readonly struct MicroKernelBFloat16Avx2 : IGemmMicroKernel<ushort>
{
    public static int Rows => 6;
    public static int Columns => 16;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // optimised on first call: see KernelPaths
    public static unsafe void Run(float* x, nint xStride, ushort* panel, int depth, float* c, nint cStride, bool accumulate) =>
        Run(x, xStride, panel, depth, c, cStride, accumulate, prefetchAhead: false);

    /// <summary>The tile; with <paramref name="prefetchAhead"/> (constant at each call site) every step also prefetches
    /// the line <see cref="MicroKernel256Streaming.PrefetchBytesAhead"/> further along the panel run.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static unsafe void Run(float* x, nint xStride, ushort* panel, int depth, float* c, nint cStride, bool accumulate,
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
            var w0 = Avx2.ShiftLeftLogical(Avx2.ConvertToVector256Int32(panel), 16).AsSingle();     // P[k, 0..8)
            var w1 = Avx2.ShiftLeftLogical(Avx2.ConvertToVector256Int32(panel + 8), 16).AsSingle(); // P[k, 8..16)
            if (prefetchAhead) Sse.Prefetch1((byte*)panel + MicroKernel256Streaming.PrefetchBytesAhead);
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
/// <see cref="MicroKernelBFloat16Avx2"/>, prefetching along the panel run as it goes, for a prompt: see
/// <see cref="MicroKernel256Streaming"/> (a bf16 panel row is one line, which both 16-wide tiles of a slice request).
/// </summary>
internal readonly struct MicroKernelBFloat16Avx2Streaming : IGemmMicroKernel<ushort>
{
    public static int Rows => MicroKernelBFloat16Avx2.Rows;
    public static int Columns => MicroKernelBFloat16Avx2.Columns;
    public static bool PrefetchesAhead => true;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // optimised on first call: see KernelPaths
    public static unsafe void Run(float* x, nint xStride, ushort* panel, int depth, float* c, nint cStride, bool accumulate) =>
        MicroKernelBFloat16Avx2.Run(x, xStride, panel, depth, c, cStride, accumulate, prefetchAhead: true);
}

/// <summary>One row × one whole panel in scalar code: the fallback, and the widening written out.</summary>
internal readonly struct MicroKernelBFloat16Scalar : IGemmMicroKernel<ushort>
{
    public static int Rows => 1;
    public static int Columns => PanelPacking.PanelWidth;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // optimised on first call: see KernelPaths
    public static unsafe void Run(float* x, nint xStride, ushort* panel, int depth, float* c, nint cStride, bool accumulate)
    {
        float* sums = stackalloc float[PanelPacking.PanelWidth]; // zeroed by the runtime
        for (int k = 0; k < depth; k++)
        {
            float xk = x[k];
            for (int j = 0; j < PanelPacking.PanelWidth; j++) sums[j] += xk * Quantization.FromBFloat16(panel[j]);
            panel += PanelPacking.PanelWidth;
        }
        for (int j = 0; j < PanelPacking.PanelWidth; j++) c[j] = accumulate ? c[j] + sums[j] : sums[j];
    }
}
