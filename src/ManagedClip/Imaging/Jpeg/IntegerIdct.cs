using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace ManagedClip.Imaging.Jpeg;

/// <summary>
/// Dequantisation and the accurate integer inverse DCT of libjpeg (<c>jidctint.c</c>, <c>jpeg_idct_islow</c>,
/// JDCT_ISLOW): the Loeffler–Ligtenberg–Moschytz flowgraph with 13-bit constants, columns first, the column
/// results kept with <c>PASS1_BITS</c> extra bits (2 for 8-bit samples, 1 for 12-bit), each pass rounded by
/// <c>DESCALE</c> (add half, arithmetic shift), then +CENTER and libjpeg's post-IDCT range-limit table.
/// </summary>
/// <remarks>
/// <para>The range-limit table wraps rather than clamps far outside the sample range: it is indexed by the result
/// masked to 10 bits (14 for 12-bit), which libjpeg lays out so that values within ±2·(MAX+1) clamp and values
/// beyond wrap. <see cref="RangeLimit"/> computes the same entry arithmetically.</para>
/// <para>The reference here uses 64-bit intermediates like libjpeg's <c>JLONG</c>. The AVX2 path uses 32-bit
/// lanes and gives the same bits when every dequantised coefficient is within ±<see cref="FastPathLimit"/>
/// (always, for data a real encoder wrote): then no pass-1 intermediate can exceed 32 bits (the unit tests
/// bound every intermediate's L1 gain), and pass 2 only adds, multiplies and shifts left before the final
/// shift, so its 32-bit wrapped result agrees with the 64-bit one in the low 32 bits, which hold the bits the
/// final shift and mask keep.</para>
/// </remarks>
internal static class IntegerIdct
{
    private const int ConstBits = 13;

    // FIX(x) = round(x · 2^13), libjpeg's precomputed constants.
    public const int Fix0_298631336 = 2446;
    public const int Fix0_390180644 = 3196;
    public const int Fix0_541196100 = 4433;
    public const int Fix0_765366865 = 6270;
    public const int Fix0_899976223 = 7373;
    public const int Fix1_175875602 = 9633;
    public const int Fix1_501321110 = 12299;
    public const int Fix1_847759065 = 15137;
    public const int Fix1_961570560 = 16069;
    public const int Fix2_053119869 = 16819;
    public const int Fix2_562915447 = 20995;
    public const int Fix3_072711026 = 25172;

    /// <summary>Largest |coefficient × quantiser| for which the 32-bit vector path is exact.</summary>
    public const int FastPathLimit = 32767;

    /// <summary>The dequantisation multiplier libjpeg uses for a quantisation table entry.</summary>
    /// <remarks>
    /// 8-bit builds of libjpeg-turbo store multipliers as <c>short</c> (<c>MULTIPLIER</c> with SIMD), so a 16-bit
    /// table entry above 32767 becomes negative; 12-bit builds keep the full value.
    /// </remarks>
    public static int Multiplier(ushort quant, int precision) => precision == 8 ? (short)quant : quant;

    /// <summary>The post-IDCT range limit: libjpeg's <c>range_limit[x &amp; RANGE_MASK]</c> for a descaled value x.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int RangeLimit(long value, int precision)
    {
        int bits = precision + 2;                             // RANGE_MASK = 4·MAXJSAMPLE + 3
        int wrapped = (int)(value << (64 - bits) >> (64 - bits)); // sign-extend the masked bits
        int center = 1 << (precision - 1), max = (1 << precision) - 1;
        return Math.Clamp(wrapped + center, 0, max);
    }

    /// <summary>
    /// The reference: one block, exactly as <c>jpeg_idct_islow</c> with 64-bit intermediates.
    /// </summary>
    /// <param name="coefficients">[64] natural order.</param>
    /// <param name="quant">[64] dequantisation multipliers, natural order.</param>
    /// <param name="precision">Bits per sample: 8 or 12.</param>
    /// <param name="samples">[8, 8] output samples (0 .. 2^precision − 1).</param>
    public static void TransformReference(ReadOnlySpan<short> coefficients, ReadOnlySpan<int> quant, int precision, Span<int> samples)
    {
        int pass1Bits = precision == 8 ? 2 : 1;
        Span<int> workspace = stackalloc int[64];
        Span<long> column = stackalloc long[8];
        Span<long> result = stackalloc long[8];

        // Pass 1: columns of dequantised coefficients; results scaled up by 2^pass1Bits.
        for (int x = 0; x < 8; x++)
        {
            for (int y = 0; y < 8; y++) column[y] = (long)coefficients[8 * y + x] * quant[8 * y + x];
            Butterfly(column, result);
            for (int y = 0; y < 8; y++) workspace[8 * y + x] = (int)Descale(result[y], ConstBits - pass1Bits);
        }

        // Pass 2: rows; descale by the pass-1 scaling and the factor 8 of the 2-D transform.
        for (int y = 0; y < 8; y++)
        {
            for (int x = 0; x < 8; x++) column[x] = workspace[8 * y + x];
            Butterfly(column, result);
            for (int x = 0; x < 8; x++) samples[8 * y + x] = RangeLimit(Descale(result[x], ConstBits + pass1Bits + 3), precision);
        }
    }

    private static long Descale(long value, int shift) => (value + (1L << (shift - 1))) >> shift;

    /// <summary>
    /// The 1-D flowgraph on 8 inputs, outputs scaled by 2^13 (not yet descaled). Even part: the rotation by
    /// √2·c6 of inputs 2 and 6 plus the sum/difference of 0 and 4; odd part per figure 8 of Loeffler et al.
    /// </summary>
    private static void Butterfly(ReadOnlySpan<long> input, Span<long> output)
    {
        long z2 = input[2], z3 = input[6];
        long z1 = (z2 + z3) * Fix0_541196100;
        long tmp2 = z1 + z3 * -Fix1_847759065;
        long tmp3 = z1 + z2 * Fix0_765366865;

        z2 = input[0];
        z3 = input[4];
        long tmp0 = (z2 + z3) << ConstBits;
        long tmp1 = (z2 - z3) << ConstBits;

        long tmp10 = tmp0 + tmp3, tmp13 = tmp0 - tmp3;
        long tmp11 = tmp1 + tmp2, tmp12 = tmp1 - tmp2;

        tmp0 = input[7];
        tmp1 = input[5];
        tmp2 = input[3];
        tmp3 = input[1];
        z1 = tmp0 + tmp3;
        z2 = tmp1 + tmp2;
        z3 = tmp0 + tmp2;
        long z4 = tmp1 + tmp3;
        long z5 = (z3 + z4) * Fix1_175875602;

        tmp0 *= Fix0_298631336;
        tmp1 *= Fix2_053119869;
        tmp2 *= Fix3_072711026;
        tmp3 *= Fix1_501321110;
        z1 *= -Fix0_899976223;
        z2 *= -Fix2_562915447;
        z3 *= -Fix1_961570560;
        z4 *= -Fix0_390180644;
        z3 += z5;
        z4 += z5;
        tmp0 += z1 + z3;
        tmp1 += z2 + z4;
        tmp2 += z2 + z3;
        tmp3 += z1 + z4;

        output[0] = tmp10 + tmp3;
        output[7] = tmp10 - tmp3;
        output[1] = tmp11 + tmp2;
        output[6] = tmp11 - tmp2;
        output[2] = tmp12 + tmp1;
        output[5] = tmp12 - tmp1;
        output[3] = tmp13 + tmp0;
        output[4] = tmp13 - tmp0;
    }

    /// <summary>
    /// One 8-bit block into <paramref name="output"/> (8 rows of 8 bytes, <paramref name="stride"/> apart): the AVX2
    /// path when available and exact for these coefficients, else the reference.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Transform8(ReadOnlySpan<short> coefficients, ReadOnlySpan<int> quant, Span<byte> output, int stride)
    {
        if (Avx2.IsSupported)
        {
            if (IsDcOnly(coefficients))
            {
                FillDcOnly(coefficients[0] * quant[0], output, stride);
                return;
            }
            if (TransformAvx2(coefficients, quant, output, stride)) return;
        }
        Span<int> samples = stackalloc int[64];
        TransformReference(coefficients, quant, 8, samples);
        for (int y = 0; y < 8; y++)
        {
            var row = output.Slice(y * stride, 8);
            for (int x = 0; x < 8; x++) row[x] = (byte)samples[8 * y + x];
        }
    }

    /// <summary>True when all 63 AC coefficients are zero (most chroma blocks, flat areas).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool IsDcOnly(ReadOnlySpan<short> coefficients)
    {
        if (coefficients.Length < 64) throw new ArgumentException("a block has 64 coefficients");
        ref short c = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(coefficients);
        var any = (Vector256.LoadUnsafe(ref c) & Vector256.Create((short)0, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1))
            | Vector256.LoadUnsafe(ref c, 16) | Vector256.LoadUnsafe(ref c, 32) | Vector256.LoadUnsafe(ref c, 48);
        return any == Vector256<short>.Zero;
    }

    /// <summary>
    /// A block with only a DC term: libjpeg's shortcuts give every sample the same value, the dequantised DC
    /// scaled by 2^PASS1_BITS in pass 1 (an <c>int</c>) and descaled by PASS1_BITS + 3 in pass 2; identical to
    /// the full computation, which reduces to the same expression when the AC terms are zero.
    /// </summary>
    private static void FillDcOnly(int dequantizedDc, Span<byte> output, int stride)
    {
        if (output.Length < 7 * stride + 8) throw new ArgumentException("the output does not hold 8 rows of 8 samples");
        int pass1 = dequantizedDc << 2;
        byte value = (byte)RangeLimit(((long)pass1 + 16) >> 5, 8);
        ulong row = value * 0x0101010101010101UL;
        for (int y = 0; y < 8; y++) Unsafe.WriteUnaligned(ref output[y * stride], row);
    }

    /// <summary>One 12-bit (or other non-8-bit DCT) block, always through the reference.</summary>
    public static void Transform16(ReadOnlySpan<short> coefficients, ReadOnlySpan<int> quant, int precision, Span<ushort> output, int stride)
    {
        Span<int> samples = stackalloc int[64];
        TransformReference(coefficients, quant, precision, samples);
        for (int y = 0; y < 8; y++)
        {
            var row = output.Slice(y * stride, 8);
            for (int x = 0; x < 8; x++) row[x] = (ushort)samples[8 * y + x];
        }
    }

    /// <summary>
    /// The same arithmetic on eight lanes: pass 1 runs the flowgraph on all eight columns at once (vector k = row k),
    /// the workspace is transposed, pass 2 runs it on all eight rows at once, and the result is transposed back.
    /// Returns false (writing nothing) when a dequantised coefficient exceeds <see cref="FastPathLimit"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static bool TransformAvx2(ReadOnlySpan<short> coefficients, ReadOnlySpan<int> quant, Span<byte> output, int stride)
    {
        if (coefficients.Length < 64 || quant.Length < 64) throw new ArgumentException("a block has 64 coefficients");
        if (output.Length < 7 * stride + 8) throw new ArgumentException("the output does not hold 8 rows of 8 samples");
        ref short c = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(coefficients);
        ref int q = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(quant);

        var r0 = Dequantize(ref c, ref q, 0);
        var r1 = Dequantize(ref c, ref q, 1);
        var r2 = Dequantize(ref c, ref q, 2);
        var r3 = Dequantize(ref c, ref q, 3);
        var r4 = Dequantize(ref c, ref q, 4);
        var r5 = Dequantize(ref c, ref q, 5);
        var r6 = Dequantize(ref c, ref q, 6);
        var r7 = Dequantize(ref c, ref q, 7);
        var largest = Vector256.Max(
            Vector256.Max(Vector256.Max(Vector256.Abs(r0), Vector256.Abs(r1)), Vector256.Max(Vector256.Abs(r2), Vector256.Abs(r3))),
            Vector256.Max(Vector256.Max(Vector256.Abs(r4), Vector256.Abs(r5)), Vector256.Max(Vector256.Abs(r6), Vector256.Abs(r7))));
        // Abs(int.MinValue) stays negative: compare as unsigned so it counts as too large.
        if (Vector256.GreaterThanAny(largest.AsUInt32(), Vector256.Create((uint)FastPathLimit))) return false;

        // Pass 1 (columns), descale by 13 − 2 = 11.
        Butterfly(ref r0, ref r1, ref r2, ref r3, ref r4, ref r5, ref r6, ref r7, 1 << 10, 11);
        Transpose(ref r0, ref r1, ref r2, ref r3, ref r4, ref r5, ref r6, ref r7);
        // Pass 2 (rows), descale by 13 + 2 + 3 = 18 with the range limit folded in below.
        Butterfly(ref r0, ref r1, ref r2, ref r3, ref r4, ref r5, ref r6, ref r7, 1 << 17, 0);
        Transpose(ref r0, ref r1, ref r2, ref r3, ref r4, ref r5, ref r6, ref r7);

        var low = PackRows(Wrap(r0), Wrap(r1), Wrap(r2), Wrap(r3));
        var high = PackRows(Wrap(r4), Wrap(r5), Wrap(r6), Wrap(r7));
        for (int y = 0; y < 4; y++)
        {
            Unsafe.WriteUnaligned(ref output[y * stride], low.AsUInt64().GetElement(y));
            Unsafe.WriteUnaligned(ref output[(y + 4) * stride], high.AsUInt64().GetElement(y));
        }
        return true;
    }

    /// <summary>
    /// Four rows of eight values → 32 bytes in row order, clamped to 0..255 by the unsigned saturation of the last
    /// pack (the packs work within 128-bit halves, so a final dword permutation restores the order).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<byte> PackRows(Vector256<int> a, Vector256<int> b, Vector256<int> c, Vector256<int> d)
    {
        var bytes = Avx2.PackUnsignedSaturate(Avx2.PackSignedSaturate(a, b), Avx2.PackSignedSaturate(c, d));
        return Avx2.PermuteVar8x32(bytes.AsInt32(), Vector256.Create(0, 4, 1, 5, 2, 6, 3, 7)).AsByte();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Dequantize(ref short coefficients, ref int quant, int row)
    {
        var c = Avx2.ConvertToVector256Int32(Vector128.LoadUnsafe(ref coefficients, (nuint)(8 * row)));
        return c * Vector256.LoadUnsafe(ref quant, (nuint)(8 * row));
    }

    /// <summary>
    /// Bits 18..27 of the (rounded) pass-2 result, sign-extended, +128: libjpeg's <c>range_limit[DESCALE(x, 18) &amp; 1023]</c>
    /// (as <see cref="RangeLimit"/>) once <see cref="PackRows"/> clamps it to 0..255.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Wrap(Vector256<int> value) =>
        Vector256.ShiftRightArithmetic(Vector256.ShiftLeft(value, 4), 22) + Vector256.Create(128);

    /// <summary>
    /// The flowgraph of <see cref="Butterfly(ReadOnlySpan{long}, Span{long})"/> on eight lanes; adds
    /// <paramref name="rounding"/> and shifts right by <paramref name="shift"/> (0: leave the pass-2 shift to the caller).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Butterfly(ref Vector256<int> i0, ref Vector256<int> i1, ref Vector256<int> i2, ref Vector256<int> i3,
        ref Vector256<int> i4, ref Vector256<int> i5, ref Vector256<int> i6, ref Vector256<int> i7, int rounding, int shift)
    {
        var z1 = (i2 + i6) * Vector256.Create(Fix0_541196100);
        var tmp2 = z1 + i6 * Vector256.Create(-Fix1_847759065);
        var tmp3 = z1 + i2 * Vector256.Create(Fix0_765366865);

        var tmp0 = Vector256.ShiftLeft(i0 + i4, ConstBits) + Vector256.Create(rounding);
        var tmp1 = Vector256.ShiftLeft(i0 - i4, ConstBits) + Vector256.Create(rounding);

        var tmp10 = tmp0 + tmp3;
        var tmp13 = tmp0 - tmp3;
        var tmp11 = tmp1 + tmp2;
        var tmp12 = tmp1 - tmp2;

        var o0 = i7;
        var o1 = i5;
        var o2 = i3;
        var o3 = i1;
        z1 = o0 + o3;
        var z2 = o1 + o2;
        var z3 = o0 + o2;
        var z4 = o1 + o3;
        var z5 = (z3 + z4) * Vector256.Create(Fix1_175875602);

        o0 *= Vector256.Create(Fix0_298631336);
        o1 *= Vector256.Create(Fix2_053119869);
        o2 *= Vector256.Create(Fix3_072711026);
        o3 *= Vector256.Create(Fix1_501321110);
        z1 *= Vector256.Create(-Fix0_899976223);
        z2 *= Vector256.Create(-Fix2_562915447);
        z3 *= Vector256.Create(-Fix1_961570560);
        z4 *= Vector256.Create(-Fix0_390180644);
        z3 += z5;
        z4 += z5;
        o0 += z1 + z3;
        o1 += z2 + z4;
        o2 += z2 + z3;
        o3 += z1 + z4;

        // The rounding constant rides in tmp0/tmp1, so every output already includes "+ half" (as DESCALE adds it).
        i0 = Shift(tmp10 + o3, shift);
        i7 = Shift(tmp10 - o3, shift);
        i1 = Shift(tmp11 + o2, shift);
        i6 = Shift(tmp11 - o2, shift);
        i2 = Shift(tmp12 + o1, shift);
        i5 = Shift(tmp12 - o1, shift);
        i3 = Shift(tmp13 + o0, shift);
        i4 = Shift(tmp13 - o0, shift);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Shift(Vector256<int> value, int shift) =>
        shift == 0 ? value : Vector256.ShiftRightArithmetic(value, shift);

    /// <summary>8×8 transpose of 32-bit lanes (row k of the result is lane k of the inputs).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Transpose(ref Vector256<int> r0, ref Vector256<int> r1, ref Vector256<int> r2, ref Vector256<int> r3,
        ref Vector256<int> r4, ref Vector256<int> r5, ref Vector256<int> r6, ref Vector256<int> r7)
    {
        var t0 = Avx2.UnpackLow(r0, r1);
        var t1 = Avx2.UnpackHigh(r0, r1);
        var t2 = Avx2.UnpackLow(r2, r3);
        var t3 = Avx2.UnpackHigh(r2, r3);
        var t4 = Avx2.UnpackLow(r4, r5);
        var t5 = Avx2.UnpackHigh(r4, r5);
        var t6 = Avx2.UnpackLow(r6, r7);
        var t7 = Avx2.UnpackHigh(r6, r7);

        var u0 = Avx2.UnpackLow(t0.AsInt64(), t2.AsInt64()).AsInt32();
        var u1 = Avx2.UnpackHigh(t0.AsInt64(), t2.AsInt64()).AsInt32();
        var u2 = Avx2.UnpackLow(t1.AsInt64(), t3.AsInt64()).AsInt32();
        var u3 = Avx2.UnpackHigh(t1.AsInt64(), t3.AsInt64()).AsInt32();
        var u4 = Avx2.UnpackLow(t4.AsInt64(), t6.AsInt64()).AsInt32();
        var u5 = Avx2.UnpackHigh(t4.AsInt64(), t6.AsInt64()).AsInt32();
        var u6 = Avx2.UnpackLow(t5.AsInt64(), t7.AsInt64()).AsInt32();
        var u7 = Avx2.UnpackHigh(t5.AsInt64(), t7.AsInt64()).AsInt32();

        r0 = Avx2.Permute2x128(u0, u4, 0x20);
        r1 = Avx2.Permute2x128(u1, u5, 0x20);
        r2 = Avx2.Permute2x128(u2, u6, 0x20);
        r3 = Avx2.Permute2x128(u3, u7, 0x20);
        r4 = Avx2.Permute2x128(u0, u4, 0x31);
        r5 = Avx2.Permute2x128(u1, u5, 0x31);
        r6 = Avx2.Permute2x128(u2, u6, 0x31);
        r7 = Avx2.Permute2x128(u3, u7, 0x31);
    }
}
