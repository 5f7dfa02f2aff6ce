using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace ManagedClip.Retrieval;

/// <summary>
/// Dot products of the query with one stored row: the whole cost of a search. A float16 row is widened inside the
/// loop, 16 (AVX-512) or 8 (AVX2) values per step, with integer operations (the runtime exposes no vcvtph2ps), so it is read once and
/// never written out as float32. Tests compare both against a plain loop over <c>(float)half</c>.
/// </summary>
internal static unsafe class ScoreKernels
{
    /// <summary>query · row for a float32 row as long as the query.</summary>
    public static float DotFloat32(float* row, ReadOnlySpan<float> query) =>
        TensorPrimitives.Dot(query, new ReadOnlySpan<float>(row, query.Length));

    /// <summary>query · row for a float16 row, each value widened exactly as <c>(float)half</c> does.</summary>
    public static float DotFloat16(Half* row, ReadOnlySpan<float> query)
    {
        int width = query.Length, i = 0;
        fixed (float* q = query)
        {
            if (Vector512.IsHardwareAccelerated && width >= 16)
            {
                var sum0 = Vector512<float>.Zero;
                var sum1 = Vector512<float>.Zero;
                for (; i + 32 <= width; i += 32)
                {
                    sum0 = Vector512.FusedMultiplyAdd(Widen(Vector256.Load((ushort*)row + i)), Vector512.Load(q + i), sum0);
                    sum1 = Vector512.FusedMultiplyAdd(Widen(Vector256.Load((ushort*)row + i + 16)), Vector512.Load(q + i + 16), sum1);
                }
                for (; i + 16 <= width; i += 16)
                    sum0 = Vector512.FusedMultiplyAdd(Widen(Vector256.Load((ushort*)row + i)), Vector512.Load(q + i), sum0);
                float total = Vector512.Sum(sum0 + sum1);
                for (; i < width; i++) total += (float)row[i] * q[i];
                return total;
            }
            if (Vector256.IsHardwareAccelerated && width >= 8)
            {
                var sum0 = Vector256<float>.Zero;
                var sum1 = Vector256<float>.Zero;
                for (; i + 16 <= width; i += 16)
                {
                    sum0 = Vector256.FusedMultiplyAdd(Widen(Vector128.Load((ushort*)row + i)), Vector256.Load(q + i), sum0);
                    sum1 = Vector256.FusedMultiplyAdd(Widen(Vector128.Load((ushort*)row + i + 8)), Vector256.Load(q + i + 8), sum1);
                }
                for (; i + 8 <= width; i += 8)
                    sum0 = Vector256.FusedMultiplyAdd(Widen(Vector128.Load((ushort*)row + i)), Vector256.Load(q + i), sum0);
                float total = Vector256.Sum(sum0 + sum1);
                for (; i < width; i++) total += (float)row[i] * q[i];
                return total;
            }
            float scalar = 0;
            for (; i < width; i++) scalar += (float)row[i] * q[i];
            return scalar;
        }
    }

    // 16 float16 bit patterns → 16 floats. Magnitude bits shifted into float position and multiplied by 2^112
    // rebias the exponent (15 → 127) and turn float16 subnormals into the right normal floats; infinities and
    // NaNs (exponent 31) get the float exponent 255; the sign is put back last.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Widen(Vector256<ushort> half)
    {
        var bits = Vector512.WidenLower(Vector512.Create(half, Vector256<ushort>.Zero));
        var magnitude = Vector512.ShiftLeft(bits & Vector512.Create(0x7FFFu), 13);
        var value = Vector512.AsSingle(magnitude) * Vector512.Create(5.192297e33f); // 2^112
        var special = Vector512.Equals(bits & Vector512.Create(0x7C00u), Vector512.Create(0x7C00u));
        var result = Vector512.AsUInt32(value) | (special & Vector512.Create(0x7F800000u));
        result |= Vector512.ShiftLeft(bits & Vector512.Create(0x8000u), 16);
        return Vector512.AsSingle(result);
    }

    // The same for 8 values (AVX2 machines).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Widen(Vector128<ushort> half)
    {
        var bits = Vector256.WidenLower(Vector256.Create(half, Vector128<ushort>.Zero));
        var magnitude = Vector256.ShiftLeft(bits & Vector256.Create(0x7FFFu), 13);
        var value = Vector256.AsSingle(magnitude) * Vector256.Create(5.192297e33f); // 2^112
        var special = Vector256.Equals(bits & Vector256.Create(0x7C00u), Vector256.Create(0x7C00u));
        var result = Vector256.AsUInt32(value) | (special & Vector256.Create(0x7F800000u));
        result |= Vector256.ShiftLeft(bits & Vector256.Create(0x8000u), 16);
        return Vector256.AsSingle(result);
    }
}
