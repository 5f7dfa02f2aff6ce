using System.Numerics.Tensors;
using ManagedClip.Kernels;

namespace ManagedClip.Benchmarks;

/// <summary>
/// The GEMM as one TensorPrimitives dot product per output element, rows split across cores: what a
/// straightforward vectorised implementation gets, to show what the packed micro-kernel buys.
/// </summary>
internal static class TensorPrimitivesGemm
{
    /// <param name="x">X [m, k]</param>
    /// <param name="w">W [n, k], as stored in the checkpoint</param>
    /// <param name="bias">b [n]</param>
    /// <param name="y">Y [m, n]</param>
    public static void Multiply(ArraySegment<float> x, int m, float[] w, int n, int k, float[] bias, ArraySegment<float> y) =>
        Parallelism.For(m, i =>
        {
            var row = x.AsSpan(i * k, k);
            var outputs = y.AsSpan(i * n, n);
            for (int j = 0; j < n; j++) outputs[j] = TensorPrimitives.Dot(row, w.AsSpan(j * k, k)) + bias[j];
        });
}
