using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace ManagedClip.Kernels;

/// <summary>
/// The GEMM for few rows (a text prompt's dozen tokens, the image tower's class row, the projection heads):
/// every Y[m, n] is the dot product of input row m with weight row n, both read in place, row-major.
/// </summary>
/// <remarks>
/// With few rows each weight is used only a handful of times, so the product is limited by how fast W streams in
/// from memory, not by arithmetic. Packing W into panels (<see cref="PanelPacking"/>) then costs as much as the
/// product itself; here instead the weight rows are read exactly as stored, a few contiguous rows at a time, with
/// the next tile's rows prefetched. A tile is <see cref="IRowDotTile.InputRows"/>
/// input rows × 4 weight rows: each step of 16 (or 8) k loads one vector from each of those rows and does one
/// multiply-add per pair, so the loads per multiply-add are lower than in the broadcast micro-kernel; the 4 weight
/// rows (12 KB at K = 768) stay in L1 while every group of input rows meets them. Sums are reduced across lanes
/// once per tile, at the end of k.
/// </remarks>
internal static unsafe class RowDotGemm
{
    /// <summary>
    /// At most this many rows of X take this path. Measured against the panel GEMM with weights from DRAM: 15–30%
    /// faster at 12 rows, even at 24; beyond that packing pays for itself and the panel GEMM reuses W better.
    /// </summary>
    public const int MaxRowCount = 16;

    /// <summary>Weight rows per tile.</summary>
    public const int TileWeightRows = 4;

    /// <summary>Weight rows per parallel task: 96 KB of W at K = 768, so there are tasks enough for every core.</summary>
    private const int WeightRowsPerTask = 32;

    /// <summary>Whether <paramref name="path"/> has a row-dot tile (the 128-bit and scalar paths use the panel GEMM).</summary>
    public static bool Supports(KernelPath path) => path is KernelPath.Vector512 or KernelPath.Vector256;

    /// <summary>Number of parallel tasks for <paramref name="columnCount"/> outputs.</summary>
    public static int TaskCount(int columnCount) => (columnCount + WeightRowsPerTask - 1) / WeightRowsPerTask;

    /// <summary>
    /// Y[:, task's columns] (+)= X · W[task's rows]ᵀ, then bias and GELU on those columns.
    /// </summary>
    /// <param name="task">Which block of <see cref="WeightRowsPerTask"/> weight rows (output columns).</param>
    /// <param name="x">X [rowCount, depth], row stride <paramref name="xStride"/></param>
    /// <param name="xStride">Distance between rows of X, in floats.</param>
    /// <param name="rowCount">M, at most <see cref="MaxRowCount"/> for speed (any M is computed correctly).</param>
    /// <param name="weightRows">W [columnCount, depth]: the address of each row</param>
    /// <param name="columnCount">N</param>
    /// <param name="depth">K</param>
    /// <param name="bias">b [columnCount], or null</param>
    /// <param name="y">Y [rowCount, columnCount], row stride <paramref name="yStride"/></param>
    /// <param name="yStride">Distance between rows of Y, in floats.</param>
    /// <param name="epilogue">What to do with each result.</param>
    /// <param name="path">Vector512 or Vector256.</param>
    public static void RunTask(int task, float* x, nint xStride, int rowCount, float** weightRows, int columnCount, int depth,
        float* bias, float* y, nint yStride, GemmEpilogue epilogue, KernelPath path)
    {
        int columnStart = task * WeightRowsPerTask, columnEnd = Math.Min(columnCount, columnStart + WeightRowsPerTask);
        if (path == KernelPath.Vector512) RunTiles<RowDotTile512>(x, xStride, rowCount, weightRows, columnStart, columnEnd, depth, y, yStride, epilogue);
        else RunTiles<RowDotTile256>(x, xStride, rowCount, weightRows, columnStart, columnEnd, depth, y, yStride, epilogue);

        if (bias == null && epilogue != GemmEpilogue.StoreGelu) return;
        int width = columnEnd - columnStart;
        var columnBias = new ReadOnlySpan<float>(bias + columnStart, bias == null ? 0 : width);
        for (int m = 0; m < rowCount; m++)
        {
            var values = new Span<float>(y + m * yStride + columnStart, width);
            if (!columnBias.IsEmpty) TensorPrimitives.Add(values, columnBias, values);
            if (epilogue == GemmEpilogue.StoreGelu) Activations.Gelu(values, path);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // optimised on first call: see KernelPaths
    private static void RunTiles<TTile>(float* x, nint xStride, int rowCount, float** weightRows, int columnStart, int columnEnd,
        int depth, float* y, nint yStride, GemmEpilogue epilogue) where TTile : struct, IRowDotTile
    {
        int inputRows = TTile.InputRows;
        float** inputs = stackalloc float*[inputRows];             // the tile's input rows
        float** weights = stackalloc float*[TileWeightRows];       // the tile's weight rows
        float** nextWeights = stackalloc float*[TileWeightRows];   // the next tile's, fetched meanwhile
        float* dots = stackalloc float[inputRows * TileWeightRows]; // [inputRows, 4]
        bool accumulate = epilogue == GemmEpilogue.AddToOutput;

        for (int n = columnStart; n < columnEnd; n += TileWeightRows)
        {
            int tileColumns = Math.Min(TileWeightRows, columnEnd - n);
            // A tile past the last weight row repeats row n; its extra sums are computed and dropped.
            for (int j = 0; j < TileWeightRows; j++) weights[j] = weightRows[n + Math.Min(j, tileColumns - 1)];
            int next = n + TileWeightRows, nextColumns = Math.Min(TileWeightRows, columnEnd - next);
            for (int j = 0; j < TileWeightRows; j++) nextWeights[j] = nextColumns > 0 ? weightRows[next + Math.Min(j, nextColumns - 1)] : null;
            for (int m = 0; m < rowCount; m += inputRows)
            {
                int tileRows = Math.Min(inputRows, rowCount - m);
                for (int i = 0; i < inputRows; i++) inputs[i] = x + (m + Math.Min(i, tileRows - 1)) * xStride;
                // The first group of input rows pulls the next tile's weights into L1 while it works (measured ~10%
                // faster than leaving it to the hardware prefetcher; fetching further ahead or into L2 was slower).
                // Later groups find this tile's rows there and prefetch them again, which costs next to nothing.
                TTile.Run(inputs, weights, m == 0 && nextColumns > 0 ? nextWeights : weights, depth, dots);
                for (int i = 0; i < tileRows; i++)
                {
                    float* output = y + (m + i) * yStride + n;
                    for (int j = 0; j < tileColumns; j++)
                        output[j] = accumulate ? output[j] + dots[i * TileWeightRows + j] : dots[i * TileWeightRows + j];
                }
            }
        }
    }
}

/// <summary>dots[i, j] = Σ_k X_i[k] · W_j[k] for a tile of <see cref="InputRows"/> input rows × 4 weight rows.</summary>
internal interface IRowDotTile
{
    /// <summary>Input rows per tile.</summary>
    static abstract int InputRows { get; }

    /// <param name="inputs">[InputRows] addresses of the input rows, each [depth]</param>
    /// <param name="weights">[4] addresses of the weight rows, each [depth]</param>
    /// <param name="prefetch">[4] addresses of weight rows to prefetch as k advances (the next tile's)</param>
    /// <param name="depth">K</param>
    /// <param name="dots">[InputRows, 4] receives the sums</param>
    static abstract unsafe void Run(float** inputs, float** weights, float** prefetch, int depth, float* dots);
}

/// <summary>
/// 6 input rows × 4 weight rows with AVX-512: 24 accumulators + 4 weight vectors + 1 input vector of the 32 zmm
/// registers; 10 loads feed 24 multiply-adds.
/// </summary>
internal readonly struct RowDotTile512 : IRowDotTile
{
    public static int InputRows => 6;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // optimised on first call: see KernelPaths
    public static unsafe void Run(float** inputs, float** weights, float** prefetch, int depth, float* dots)
    {
        Vector512<float> s00 = default, s01 = default, s02 = default, s03 = default;
        Vector512<float> s10 = default, s11 = default, s12 = default, s13 = default;
        Vector512<float> s20 = default, s21 = default, s22 = default, s23 = default;
        Vector512<float> s30 = default, s31 = default, s32 = default, s33 = default;
        Vector512<float> s40 = default, s41 = default, s42 = default, s43 = default;
        Vector512<float> s50 = default, s51 = default, s52 = default, s53 = default;
        float* w0 = weights[0], w1 = weights[1], w2 = weights[2], w3 = weights[3];
        float* x0 = inputs[0], x1 = inputs[1], x2 = inputs[2], x3 = inputs[3], x4 = inputs[4], x5 = inputs[5];
        float* p0 = prefetch[0], p1 = prefetch[1], p2 = prefetch[2], p3 = prefetch[3];
        int k = 0;
        for (; k <= depth - 16; k += 16)
        {
            if (Sse.IsSupported) { Sse.Prefetch0(p0 + k); Sse.Prefetch0(p1 + k); Sse.Prefetch0(p2 + k); Sse.Prefetch0(p3 + k); }
            var v0 = Vector512.Load(w0 + k); var v1 = Vector512.Load(w1 + k);
            var v2 = Vector512.Load(w2 + k); var v3 = Vector512.Load(w3 + k);
            Vector512<float> u;
            u = Vector512.Load(x0 + k);
            s00 = Vector512.FusedMultiplyAdd(u, v0, s00); s01 = Vector512.FusedMultiplyAdd(u, v1, s01);
            s02 = Vector512.FusedMultiplyAdd(u, v2, s02); s03 = Vector512.FusedMultiplyAdd(u, v3, s03);
            u = Vector512.Load(x1 + k);
            s10 = Vector512.FusedMultiplyAdd(u, v0, s10); s11 = Vector512.FusedMultiplyAdd(u, v1, s11);
            s12 = Vector512.FusedMultiplyAdd(u, v2, s12); s13 = Vector512.FusedMultiplyAdd(u, v3, s13);
            u = Vector512.Load(x2 + k);
            s20 = Vector512.FusedMultiplyAdd(u, v0, s20); s21 = Vector512.FusedMultiplyAdd(u, v1, s21);
            s22 = Vector512.FusedMultiplyAdd(u, v2, s22); s23 = Vector512.FusedMultiplyAdd(u, v3, s23);
            u = Vector512.Load(x3 + k);
            s30 = Vector512.FusedMultiplyAdd(u, v0, s30); s31 = Vector512.FusedMultiplyAdd(u, v1, s31);
            s32 = Vector512.FusedMultiplyAdd(u, v2, s32); s33 = Vector512.FusedMultiplyAdd(u, v3, s33);
            u = Vector512.Load(x4 + k);
            s40 = Vector512.FusedMultiplyAdd(u, v0, s40); s41 = Vector512.FusedMultiplyAdd(u, v1, s41);
            s42 = Vector512.FusedMultiplyAdd(u, v2, s42); s43 = Vector512.FusedMultiplyAdd(u, v3, s43);
            u = Vector512.Load(x5 + k);
            s50 = Vector512.FusedMultiplyAdd(u, v0, s50); s51 = Vector512.FusedMultiplyAdd(u, v1, s51);
            s52 = Vector512.FusedMultiplyAdd(u, v2, s52); s53 = Vector512.FusedMultiplyAdd(u, v3, s53);
        }
        Reduce(dots + 0, s00, s01, s02, s03);
        Reduce(dots + 4, s10, s11, s12, s13);
        Reduce(dots + 8, s20, s21, s22, s23);
        Reduce(dots + 12, s30, s31, s32, s33);
        Reduce(dots + 16, s40, s41, s42, s43);
        Reduce(dots + 20, s50, s51, s52, s53);
        RowDotTail.Add(inputs, InputRows, weights, k, depth, dots);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Reduce(float* dots, Vector512<float> a, Vector512<float> b, Vector512<float> c, Vector512<float> d)
    {
        dots[0] = Vector512.Sum(a);
        dots[1] = Vector512.Sum(b);
        dots[2] = Vector512.Sum(c);
        dots[3] = Vector512.Sum(d);
    }
}

/// <summary>
/// 2 input rows × 4 weight rows with AVX2: 8 accumulators + 4 weight vectors + 1 input vector fit the 16 ymm
/// registers.
/// </summary>
internal readonly struct RowDotTile256 : IRowDotTile
{
    public static int InputRows => 2;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // optimised on first call: see KernelPaths
    public static unsafe void Run(float** inputs, float** weights, float** prefetch, int depth, float* dots)
    {
        Vector256<float> s00 = default, s01 = default, s02 = default, s03 = default;
        Vector256<float> s10 = default, s11 = default, s12 = default, s13 = default;
        float* w0 = weights[0], w1 = weights[1], w2 = weights[2], w3 = weights[3];
        float* x0 = inputs[0], x1 = inputs[1];
        float* p0 = prefetch[0], p1 = prefetch[1], p2 = prefetch[2], p3 = prefetch[3];
        int k = 0;
        for (; k <= depth - 8; k += 8)
        {
            // One cache line holds 16 floats: fetch each on every other step.
            if (Sse.IsSupported && k % 16 == 0) { Sse.Prefetch0(p0 + k); Sse.Prefetch0(p1 + k); Sse.Prefetch0(p2 + k); Sse.Prefetch0(p3 + k); }
            var v0 = Vector256.Load(w0 + k); var v1 = Vector256.Load(w1 + k);
            var v2 = Vector256.Load(w2 + k); var v3 = Vector256.Load(w3 + k);
            Vector256<float> u;
            u = Vector256.Load(x0 + k);
            s00 = Vector256.FusedMultiplyAdd(u, v0, s00); s01 = Vector256.FusedMultiplyAdd(u, v1, s01);
            s02 = Vector256.FusedMultiplyAdd(u, v2, s02); s03 = Vector256.FusedMultiplyAdd(u, v3, s03);
            u = Vector256.Load(x1 + k);
            s10 = Vector256.FusedMultiplyAdd(u, v0, s10); s11 = Vector256.FusedMultiplyAdd(u, v1, s11);
            s12 = Vector256.FusedMultiplyAdd(u, v2, s12); s13 = Vector256.FusedMultiplyAdd(u, v3, s13);
        }
        dots[0] = Vector256.Sum(s00); dots[1] = Vector256.Sum(s01); dots[2] = Vector256.Sum(s02); dots[3] = Vector256.Sum(s03);
        dots[4] = Vector256.Sum(s10); dots[5] = Vector256.Sum(s11); dots[6] = Vector256.Sum(s12); dots[7] = Vector256.Sum(s13);
        RowDotTail.Add(inputs, InputRows, weights, k, depth, dots);
    }
}

internal static unsafe class RowDotTail
{
    /// <summary>The steps of k after the last whole vector (none for the model's widths), one by one.</summary>
    public static void Add(float** inputs, int inputRows, float** weights, int k, int depth, float* dots)
    {
        for (int i = 0; i < inputRows; i++)
            for (int j = 0; j < RowDotGemm.TileWeightRows; j++)
            {
                float sum = 0;
                for (int t = k; t < depth; t++) sum += inputs[i][t] * weights[j][t];
                dots[i * RowDotGemm.TileWeightRows + j] += sum;
            }
    }
}
