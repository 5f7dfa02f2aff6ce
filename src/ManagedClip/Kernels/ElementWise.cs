using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace ManagedClip.Kernels;

/// <summary>What a map does to one element, and to 8 and 16 lanes at once (the same arithmetic).</summary>
internal interface IUnaryOperator
{
    float Invoke(float x);
    Vector256<float> Invoke(Vector256<float> x);
    Vector512<float> Invoke(Vector512<float> x);
}

/// <summary>A map of three inputs, element by element: y[i] = f(x[i], a[i], b[i]).</summary>
internal interface ITernaryOperator
{
    float Invoke(float x, float a, float b);
    Vector256<float> Invoke(Vector256<float> x, Vector256<float> a, Vector256<float> b);
    Vector512<float> Invoke(Vector512<float> x, Vector512<float> a, Vector512<float> b);
}

/// <summary>
/// A reduction of a row, kept in the struct itself: vector accumulators while whole vectors are read, then
/// <c>End256</c>/<c>End512</c> folds them into the scalar result, which the remaining elements are added to.
/// </summary>
internal interface IFold
{
    void Add(float x);
    void Add(Vector256<float> x);
    void Add(Vector512<float> x);
    void End256();
    void End512();
}

/// <summary>
/// The loop every element-wise kernel needs, written once (the TensorPrimitives pattern): whole 512- or 256-bit
/// vectors while they fit, as the kernel path says, then the remaining elements one at a time. An operator struct
/// states what happens to one element and to a vector of them; the kernels themselves are one-line calls.
/// </summary>
/// <remarks>
/// The 128-bit and scalar paths run the element loop alone: of the kernels, only the GEMM has a 128-bit body.
/// Callers are marked <c>AggressiveOptimization</c>; these drivers and the operators inline into them. Each width is
/// also tested for hardware acceleration, a constant to the JIT: on a machine without AVX-512 the 512-bit loop is
/// dropped before inlining instead of filling the caller's inlining budget with software vectors (a path the
/// machine lacks is never chosen: see <see cref="KernelPaths.Supported"/>).
/// </remarks>
internal static class ElementWise
{
    /// <summary>y[i] = op(x[i]); <paramref name="y"/> may be <paramref name="x"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Map<TOp>(ReadOnlySpan<float> x, Span<float> y, TOp op, KernelPath path) where TOp : struct, IUnaryOperator
    {
        ref float xs = ref MemoryMarshal.GetReference(x);
        ref float ys = ref MemoryMarshal.GetReference(y);
        int i = 0, n = x.Length;
        if (path == KernelPath.Vector512 && Vector512.IsHardwareAccelerated)
        {
            for (; i <= n - Vector512<float>.Count; i += Vector512<float>.Count)
                op.Invoke(Vector512.LoadUnsafe(ref xs, (nuint)i)).StoreUnsafe(ref ys, (nuint)i);
        }
        else if (path == KernelPath.Vector256 && Vector256.IsHardwareAccelerated)
        {
            for (; i <= n - Vector256<float>.Count; i += Vector256<float>.Count)
                op.Invoke(Vector256.LoadUnsafe(ref xs, (nuint)i)).StoreUnsafe(ref ys, (nuint)i);
        }
        for (; i < n; i++) Unsafe.Add(ref ys, i) = op.Invoke(Unsafe.Add(ref xs, i));
    }

    /// <summary>y[i] = op(x[i], a[i], b[i]); <paramref name="y"/> may be <paramref name="x"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Map<TOp>(ReadOnlySpan<float> x, ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> y, TOp op,
        KernelPath path) where TOp : struct, ITernaryOperator
    {
        ref float xs = ref MemoryMarshal.GetReference(x);
        ref float @as = ref MemoryMarshal.GetReference(a);
        ref float bs = ref MemoryMarshal.GetReference(b);
        ref float ys = ref MemoryMarshal.GetReference(y);
        int i = 0, n = x.Length;
        if (path == KernelPath.Vector512 && Vector512.IsHardwareAccelerated)
        {
            for (; i <= n - Vector512<float>.Count; i += Vector512<float>.Count)
                op.Invoke(Vector512.LoadUnsafe(ref xs, (nuint)i), Vector512.LoadUnsafe(ref @as, (nuint)i), Vector512.LoadUnsafe(ref bs, (nuint)i))
                    .StoreUnsafe(ref ys, (nuint)i);
        }
        else if (path == KernelPath.Vector256 && Vector256.IsHardwareAccelerated)
        {
            for (; i <= n - Vector256<float>.Count; i += Vector256<float>.Count)
                op.Invoke(Vector256.LoadUnsafe(ref xs, (nuint)i), Vector256.LoadUnsafe(ref @as, (nuint)i), Vector256.LoadUnsafe(ref bs, (nuint)i))
                    .StoreUnsafe(ref ys, (nuint)i);
        }
        for (; i < n; i++) Unsafe.Add(ref ys, i) = op.Invoke(Unsafe.Add(ref xs, i), Unsafe.Add(ref @as, i), Unsafe.Add(ref bs, i));
    }

    /// <summary>Folds every element of <paramref name="x"/> into <paramref name="fold"/> and returns it.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TFold Fold<TFold>(ReadOnlySpan<float> x, TFold fold, KernelPath path) where TFold : struct, IFold
    {
        ref float xs = ref MemoryMarshal.GetReference(x);
        int i = 0, n = x.Length;
        if (path == KernelPath.Vector512 && Vector512.IsHardwareAccelerated)
        {
            for (; i <= n - Vector512<float>.Count; i += Vector512<float>.Count) fold.Add(Vector512.LoadUnsafe(ref xs, (nuint)i));
            fold.End512();
        }
        else if (path == KernelPath.Vector256 && Vector256.IsHardwareAccelerated)
        {
            for (; i <= n - Vector256<float>.Count; i += Vector256<float>.Count) fold.Add(Vector256.LoadUnsafe(ref xs, (nuint)i));
            fold.End256();
        }
        for (; i < n; i++) fold.Add(Unsafe.Add(ref xs, i));
        return fold;
    }

    /// <summary>16 zeros then 16 all-ones lanes: loading 16 from offset r selects the last r lanes.</summary>
    private static readonly int[] TailMasks = [.. Enumerable.Repeat(0, 16), .. Enumerable.Repeat(-1, 16)];

    /// <summary>values[i] = op(values[i]) in place; returns the sum of the results.</summary>
    /// <remarks>
    /// On the 512-bit path the last few elements (an attention row of 197 keys leaves 5) go through one more whole
    /// vector, the row's last 16 read before the loop overwrites those it shares with the last whole vector, rather
    /// than one by one: this map is an exponential, costly per call.
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float MapAndSum<TOp>(Span<float> values, TOp op, KernelPath path) where TOp : struct, IUnaryOperator
    {
        ref float start = ref MemoryMarshal.GetReference(values);
        int i = 0, n = values.Length;
        float sum = 0;
        if (path == KernelPath.Vector512 && Vector512.IsHardwareAccelerated)
        {
            var sums = Vector512<float>.Zero;
            int rest = n % Vector512<float>.Count;
            bool overlappingTail = n > Vector512<float>.Count && rest > 0;
            nuint last = (nuint)(n - Vector512<float>.Count);
            var lastValues = overlappingTail ? op.Invoke(Vector512.LoadUnsafe(ref start, last)) : default;
            for (; i <= n - Vector512<float>.Count; i += Vector512<float>.Count)
            {
                var y = op.Invoke(Vector512.LoadUnsafe(ref start, (nuint)i));
                y.StoreUnsafe(ref start, (nuint)i);
                sums += y;
            }
            if (overlappingTail)
            {
                // Lanes 16 − rest … 15 are the new ones; the others are already stored (and summed).
                var isNew = Vector512.LoadUnsafe(ref MemoryMarshal.GetArrayDataReference(TailMasks), (nuint)rest).AsSingle();
                Vector512.ConditionalSelect(isNew, lastValues, Vector512.LoadUnsafe(ref start, last)).StoreUnsafe(ref start, last);
                sums += lastValues & isNew;
                i = n;
            }
            sum = Vector512.Sum(sums);
        }
        else if (path == KernelPath.Vector256 && Vector256.IsHardwareAccelerated)
        {
            var sums = Vector256<float>.Zero;
            for (; i <= n - Vector256<float>.Count; i += Vector256<float>.Count)
            {
                var y = op.Invoke(Vector256.LoadUnsafe(ref start, (nuint)i));
                y.StoreUnsafe(ref start, (nuint)i);
                sums += y;
            }
            sum = Vector256.Sum(sums);
        }
        for (; i < n; i++)
        {
            ref float value = ref Unsafe.Add(ref start, i);
            value = op.Invoke(value);
            sum += value;
        }
        return sum;
    }
}
