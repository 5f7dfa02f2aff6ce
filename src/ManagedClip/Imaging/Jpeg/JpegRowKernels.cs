using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace ManagedClip.Imaging.Jpeg;

/// <summary>
/// Vector versions of the per-row work on 8-bit samples: the fancy upsamplers of <see cref="ComponentUpsampler{T}"/>
/// and libjpeg's YCbCr → RGB conversion of <see cref="ColorConversion"/>. Same integer formulas, so the same bytes;
/// the scalar versions stay the reference (the tests compare the two on random rows of every awkward width) and
/// handle each row's ends.
/// </summary>
/// <remarks>
/// Two output bytes per input sample are written as one 16-bit lane <c>even | odd &lt;&lt; 8</c>, which in memory
/// (little endian) is the pair in order, so no interleaving shuffle is needed.
/// </remarks>
internal static class JpegRowKernels
{
    /// <summary>Whether the vector paths run (AVX2 machines; elsewhere the scalar reference does all the work).</summary>
    public static bool Enabled => Avx2.IsSupported;

    /// <summary>Narrowest row the horizontal kernels take (one vector step plus both end columns).</summary>
    public const int MinimumWidth = 18;

    /// <summary>
    /// <c>h2v2_fancy_upsample</c> on bytes: column sums c = 3·nearer + further, then output 2i = (3·c[i] + c[i−1] + 8) / 16,
    /// 2i+1 = (3·c[i] + c[i+1] + 7) / 16, with 4·c at the two ends. <paramref name="sums"/>: scratch of ≥ width.
    /// Needs <see cref="Enabled"/> and a width of at least <see cref="MinimumWidth"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void H2V2Fancy(ReadOnlySpan<byte> nearer, ReadOnlySpan<byte> further, Span<ushort> sums, Span<byte> output, int width)
    {
        if (!Enabled || width < MinimumWidth) throw new InvalidOperationException("the vector kernel needs AVX2 and a row of at least 18 samples");
        if (nearer.Length < width || further.Length < width || sums.Length < width || output.Length < 2 * width)
            throw new ArgumentException("rows shorter than the width");
        ref byte near = ref MemoryMarshal.GetReference(nearer);
        ref byte far = ref MemoryMarshal.GetReference(further);
        ref ushort sum = ref MemoryMarshal.GetReference(sums);
        ref byte result = ref MemoryMarshal.GetReference(output);

        int i = 0;
        for (; i + 16 <= width; i += 16)
            (Widen(ref near, i) * 3 + Widen(ref far, i)).StoreUnsafe(ref sum, (nuint)i);
        for (; i < width; i++) Unsafe.Add(ref sum, i) = (ushort)(3 * Unsafe.Add(ref near, i) + Unsafe.Add(ref far, i));

        output[0] = (byte)((4 * sums[0] + 8) >> 4);
        output[1] = (byte)((3 * sums[0] + sums[1] + 7) >> 4);
        // Interior columns 1 .. width−2, 16 at a time while column i + 16 (the last "next") exists.
        for (i = 1; i + 17 <= width; i += 16)
        {
            var previous = Vector256.LoadUnsafe(ref sum, (nuint)(i - 1));
            var current = Vector256.LoadUnsafe(ref sum, (nuint)i) * 3;
            var next = Vector256.LoadUnsafe(ref sum, (nuint)(i + 1));
            var even = Vector256.ShiftRightLogical(current + previous + Vector256.Create((ushort)8), 4);
            var odd = Vector256.ShiftRightLogical(current + next + Vector256.Create((ushort)7), 4);
            (even | Vector256.ShiftLeft(odd, 8)).AsByte().StoreUnsafe(ref result, (nuint)(2 * i));
        }
        for (; i < width - 1; i++)
        {
            int current = 3 * sums[i];
            output[2 * i] = (byte)((current + sums[i - 1] + 8) >> 4);
            output[2 * i + 1] = (byte)((current + sums[i + 1] + 7) >> 4);
        }
        output[2 * width - 2] = (byte)((3 * sums[width - 1] + sums[width - 2] + 8) >> 4);
        output[2 * width - 1] = (byte)((4 * sums[width - 1] + 7) >> 4);
    }

    /// <summary>
    /// <c>h2v1_fancy_upsample</c> on bytes: output 2i = (3·s[i] + s[i−1] + 1) / 4, 2i+1 = (3·s[i] + s[i+1] + 2) / 4.
    /// Needs <see cref="Enabled"/> and a width of at least <see cref="MinimumWidth"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void H2V1Fancy(ReadOnlySpan<byte> input, Span<byte> output, int width)
    {
        if (!Enabled || width < MinimumWidth) throw new InvalidOperationException("the vector kernel needs AVX2 and a row of at least 18 samples");
        if (input.Length < width || output.Length < 2 * width) throw new ArgumentException("rows shorter than the width");
        ref byte source = ref MemoryMarshal.GetReference(input);
        ref byte result = ref MemoryMarshal.GetReference(output);

        output[0] = input[0];
        output[1] = (byte)((3 * input[0] + input[1] + 2) >> 2);
        int i = 1;
        for (; i + 17 <= width; i += 16)
        {
            var current = Widen(ref source, i) * 3;
            var even = Vector256.ShiftRightLogical(current + Widen(ref source, i - 1) + Vector256.Create((ushort)1), 2);
            var odd = Vector256.ShiftRightLogical(current + Widen(ref source, i + 1) + Vector256.Create((ushort)2), 2);
            (even | Vector256.ShiftLeft(odd, 8)).AsByte().StoreUnsafe(ref result, (nuint)(2 * i));
        }
        for (; i < width - 1; i++)
        {
            int current = 3 * input[i];
            output[2 * i] = (byte)((current + input[i - 1] + 1) >> 2);
            output[2 * i + 1] = (byte)((current + input[i + 1] + 2) >> 2);
        }
        output[2 * width - 2] = (byte)((3 * input[width - 1] + input[width - 2] + 1) >> 2);
        output[2 * width - 1] = input[width - 1];
    }

    /// <summary><c>h1v2_fancy_upsample</c> on bytes: (3·nearer + further + bias) / 4 per column.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void H1V2Fancy(ReadOnlySpan<byte> nearer, ReadOnlySpan<byte> further, Span<byte> output, int width, int bias)
    {
        if (nearer.Length < width || further.Length < width || output.Length < width) throw new ArgumentException("rows shorter than the width");
        int i = 0;
        if (Enabled)
        {
            ref byte near = ref MemoryMarshal.GetReference(nearer);
            ref byte far = ref MemoryMarshal.GetReference(further);
            ref byte result = ref MemoryMarshal.GetReference(output);
            var rounding = Vector256.Create((ushort)bias);
            for (; i + 16 <= width; i += 16)
            {
                var value = Vector256.ShiftRightLogical(Widen(ref near, i) * 3 + Widen(ref far, i) + rounding, 2);
                Vector128.Narrow(value.GetLower(), value.GetUpper()).StoreUnsafe(ref result, (nuint)i);
            }
        }
        for (; i < width; i++) output[i] = (byte)((3 * nearer[i] + further[i] + bias) >> 2);
    }

    /// <summary>
    /// <c>ycc_rgb_convert</c>: R = Y + Cr_r[Cr], G = Y + ((Cb_g[Cb] + Cr_g[Cr]) &gt;&gt; 16), B = Y + Cb_b[Cb], clamped,
    /// with the table entries computed in 32-bit lanes (they are exact integer expressions). <paramref name="rgb"/>: [width, 3].
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void YCbCrToRgb(ReadOnlySpan<byte> y, ReadOnlySpan<byte> cb, ReadOnlySpan<byte> cr, Span<byte> rgb, int width)
    {
        if (y.Length < width || cb.Length < width || cr.Length < width || rgb.Length < 3 * width) throw new ArgumentException("rows shorter than the width");
        int x = 0;
        if (Enabled)
        {
            ref byte luma = ref MemoryMarshal.GetReference(y);
            ref byte blue = ref MemoryMarshal.GetReference(cb);
            ref byte red = ref MemoryMarshal.GetReference(cr);
            ref byte output = ref MemoryMarshal.GetReference(rgb);
            for (; x + 16 <= width; x += 16)
            {
                var yv = Vector128.LoadUnsafe(ref luma, (nuint)x);
                var cbv = Vector128.LoadUnsafe(ref blue, (nuint)x);
                var crv = Vector128.LoadUnsafe(ref red, (nuint)x);
                var (r0, g0, b0) = ConvertEight(yv, cbv, crv);
                var (r1, g1, b1) = ConvertEight(Sse2.ShiftRightLogical128BitLane(yv, 8), Sse2.ShiftRightLogical128BitLane(cbv, 8), Sse2.ShiftRightLogical128BitLane(crv, 8));
                StoreInterleaved(ToBytes(r0, r1), ToBytes(g0, g1), ToBytes(b0, b1), ref output, 3 * x);
            }
        }
        if (x < width) ColorConversion.YCbCrToRgb(y[x..], cb[x..], cr[x..], rgb[(3 * x)..], width - x);
    }

    /// <summary>Three planes of bytes → interleaved triples (RGB files, raw 3-component output). <paramref name="rgb"/>: [width, 3].</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Interleave3(ReadOnlySpan<byte> c0, ReadOnlySpan<byte> c1, ReadOnlySpan<byte> c2, Span<byte> rgb, int width)
    {
        if (c0.Length < width || c1.Length < width || c2.Length < width || rgb.Length < 3 * width) throw new ArgumentException("rows shorter than the width");
        int x = 0;
        if (Enabled)
        {
            ref byte output = ref MemoryMarshal.GetReference(rgb);
            for (; x + 16 <= width; x += 16)
            {
                StoreInterleaved(Vector128.LoadUnsafe(ref MemoryMarshal.GetReference(c0), (nuint)x),
                    Vector128.LoadUnsafe(ref MemoryMarshal.GetReference(c1), (nuint)x),
                    Vector128.LoadUnsafe(ref MemoryMarshal.GetReference(c2), (nuint)x), ref output, 3 * x);
            }
        }
        for (; x < width; x++)
        {
            rgb[3 * x] = c0[x];
            rgb[3 * x + 1] = c1[x];
            rgb[3 * x + 2] = c2[x];
        }
    }

    private const int ScaleBits = 16, OneHalf = 1 << 15;

    /// <summary>R, G, B of the first eight pixels of the three vectors, in 32-bit lanes, clamped to 0..255.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (Vector256<int> R, Vector256<int> G, Vector256<int> B) ConvertEight(Vector128<byte> y, Vector128<byte> cb, Vector128<byte> cr)
    {
        var luma = Avx2.ConvertToVector256Int32(y);
        var blue = Avx2.ConvertToVector256Int32(cb) - Vector256.Create(128);
        var red = Avx2.ConvertToVector256Int32(cr) - Vector256.Create(128);
        var half = Vector256.Create(OneHalf);
        var r = luma + Vector256.ShiftRightArithmetic(red * 91881 + half, ScaleBits);
        var g = luma + Vector256.ShiftRightArithmetic(blue * -22554 + red * -46802 + half, ScaleBits);
        var b = luma + Vector256.ShiftRightArithmetic(blue * 116130 + half, ScaleBits);
        return (Clamp(r), Clamp(g), Clamp(b));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Clamp(Vector256<int> value) =>
        Vector256.Min(Vector256.Max(value, Vector256<int>.Zero), Vector256.Create(255));

    /// <summary>Sixteen 0..255 values in two vectors of eight 32-bit lanes → sixteen bytes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<byte> ToBytes(Vector256<int> first, Vector256<int> second)
    {
        var shorts = Vector256.Narrow(first, second);
        return Vector128.Narrow(shorts.GetLower(), shorts.GetUpper()).AsByte();
    }

    // Byte j of the 48-byte output holds channel j % 3 of pixel j / 3; these pick, for each 16-byte third of the
    // output, which bytes come from each channel (index ≥ 16: zero, filled by another channel's shuffle).
    private static readonly Vector128<byte>[] InterleaveMasks = BuildInterleaveMasks();

    private static Vector128<byte>[] BuildInterleaveMasks()
    {
        var masks = new Vector128<byte>[9];
        Span<byte> mask = stackalloc byte[16];
        for (int third = 0; third < 3; third++)
        {
            for (int channel = 0; channel < 3; channel++)
            {
                for (int k = 0; k < 16; k++)
                {
                    int j = 16 * third + k;
                    mask[k] = j % 3 == channel ? (byte)(j / 3) : (byte)0x80;
                }
                masks[3 * third + channel] = Vector128.Create((ReadOnlySpan<byte>)mask);
            }
        }
        return masks;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreInterleaved(Vector128<byte> c0, Vector128<byte> c1, Vector128<byte> c2, ref byte output, int offset)
    {
        ref var m = ref MemoryMarshal.GetArrayDataReference(InterleaveMasks); // 9 masks: [third, channel]
        for (int third = 0; third < 3; third++)
        {
            var bytes = Ssse3.Shuffle(c0, Unsafe.Add(ref m, 3 * third)) | Ssse3.Shuffle(c1, Unsafe.Add(ref m, 3 * third + 1))
                | Ssse3.Shuffle(c2, Unsafe.Add(ref m, 3 * third + 2));
            bytes.StoreUnsafe(ref output, (nuint)(offset + 16 * third));
        }
    }

    /// <summary>Sixteen bytes from <paramref name="offset"/>, zero-extended to 16-bit lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<ushort> Widen(ref byte source, int offset)
    {
        var bytes = Vector128.LoadUnsafe(ref source, (nuint)offset);
        return Vector256.Create(Vector128.WidenLower(bytes), Vector128.WidenUpper(bytes));
    }
}
