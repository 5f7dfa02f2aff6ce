using System.Runtime.Intrinsics;

namespace ManagedClip.Kernels;

/// <summary>
/// Which instruction width a kernel uses. <see cref="KernelPaths.Best"/> picks the widest one the hardware
/// accelerates; tests pass each value explicitly so every path is checked on every machine that can run it.
/// </summary>
internal enum KernelPath
{
    /// <summary>Plain scalar code: the fallback for any CPU, and the readable statement of each algorithm.</summary>
    Scalar,
    /// <summary>
    /// 128-bit vectors (Arm NEON; on x64 only machines without AVX2 would pick it). Only the GEMM micro-kernel,
    /// where the time goes, has a 128-bit version; LayerNorm, GELU and softmax run their scalar loops here.
    /// </summary>
    Vector128,
    /// <summary>256-bit vectors (AVX2 + FMA).</summary>
    Vector256,
    /// <summary>512-bit vectors (AVX-512F).</summary>
    Vector512,
}

/// <remarks>
/// The hot loops are marked <c>MethodImplOptions.AggressiveOptimization</c>. Otherwise the JIT first compiles them
/// unoptimised (tier 0) and swaps in optimised code only after many iterations; a cold process then spent ~250 ms of
/// its first forward pass in unoptimised vector code. Their speed does not depend on profile-guided optimisation,
/// which this gives up.
/// </remarks>
internal static class KernelPaths
{
    /// <summary>The widest path this machine accelerates, chosen once at start-up.</summary>
    public static readonly KernelPath Best =
        Vector512.IsHardwareAccelerated ? KernelPath.Vector512 :
        Vector256.IsHardwareAccelerated ? KernelPath.Vector256 :
        Vector128.IsHardwareAccelerated ? KernelPath.Vector128 :
        KernelPath.Scalar;

    /// <summary>The paths this machine can run at full speed (the scalar path always).</summary>
    public static IEnumerable<KernelPath> Supported()
    {
        yield return KernelPath.Scalar;
        if (Vector128.IsHardwareAccelerated) yield return KernelPath.Vector128;
        if (Vector256.IsHardwareAccelerated) yield return KernelPath.Vector256;
        if (Vector512.IsHardwareAccelerated) yield return KernelPath.Vector512;
    }
}
