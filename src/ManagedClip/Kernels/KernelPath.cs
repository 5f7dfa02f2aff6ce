using System.Runtime.Intrinsics;

namespace ManagedClip.Kernels;

/// <summary>
/// Which instruction width a kernel uses. <see cref="KernelPaths.Best"/> picks the widest one the hardware
/// accelerates; tests pass each value explicitly so every path is checked on every machine that can run it.
/// </summary>
internal enum KernelPath
{
    /// <summary>
    /// <see cref="ReferenceKernels"/>: every kernel as plain loops, the readable statement of what it computes (and
    /// what the tests compare the other paths with). Never chosen by <see cref="KernelPaths.Best"/>.
    /// </summary>
    Reference,
    /// <summary>The fast kernels' structure (panels, tiles, blocking) in scalar code: the fallback for any CPU.</summary>
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
/// unoptimised (tier 0) and swaps in optimised code only after many iterations, and a cold process spends much of
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

    [ThreadStatic] private static KernelPath? chosen;

    /// <summary>
    /// The path the kernels' public entry points take on this thread: <see cref="Best"/>, unless <see cref="Use"/> chose
    /// another. The path is read once per kernel call, so a call's parallel workers follow its caller's choice.
    /// </summary>
    public static KernelPath Current => chosen ?? Best;

    /// <summary>
    /// Runs this thread's kernel calls on <paramref name="path"/> until the returned scope is disposed: a whole forward
    /// pass on <see cref="KernelPath.Reference"/> (the tests), or on a narrower path (debugging).
    /// </summary>
    public static Scope Use(KernelPath path)
    {
        var scope = new Scope(chosen);
        chosen = path;
        return scope;
    }

    /// <summary>Puts back the path that was in use before <see cref="Use"/>.</summary>
    public readonly struct Scope(KernelPath? previous) : IDisposable
    {
        public void Dispose() => chosen = previous;
    }

    /// <summary>The paths this machine can run at full speed (the scalar path always).</summary>
    public static IEnumerable<KernelPath> Supported()
    {
        yield return KernelPath.Scalar;
        if (Vector128.IsHardwareAccelerated) yield return KernelPath.Vector128;
        if (Vector256.IsHardwareAccelerated) yield return KernelPath.Vector256;
        if (Vector512.IsHardwareAccelerated) yield return KernelPath.Vector512;
    }
}
