using System.Numerics;

namespace ManagedClip.Imaging.Jpeg;

/// <summary>How one component is brought to the full image size (libjpeg-turbo <c>jdsample.c</c>, fancy upsampling on).</summary>
internal enum UpsampleMethod
{
    /// <summary>Same size as the image: rows used as they are.</summary>
    FullSize,

    /// <summary>2:1 horizontally: triangle filter, ¾ nearer + ¼ further sample (<c>h2v1_fancy_upsample</c>).</summary>
    H2V1Fancy,

    /// <summary>2:1 vertically: triangle filter between rows (<c>h1v2_fancy_upsample</c>).</summary>
    H1V2Fancy,

    /// <summary>2:1 both ways: the separable triangle filter (<c>h2v2_fancy_upsample</c>).</summary>
    H2V2Fancy,

    /// <summary>Any integral ratio: each sample repeated (<c>h2v1_upsample</c>, <c>h2v2_upsample</c>, <c>int_upsample</c>).</summary>
    Box,
}

/// <summary>
/// Produces full-size rows of one component from its <see cref="ComponentPlane{T}"/>, exactly as libjpeg-turbo
/// 2.1.5 does with <c>do_fancy_upsampling</c> (its default, which Pillow keeps). The triangle filters read only
/// the component's real samples: its first and last columns are special-cased, and the rows above the first and
/// below the last are copies of them.
/// </summary>
internal sealed class ComponentUpsampler<T> where T : unmanaged, IBinaryInteger<T>
{
    private readonly ComponentPlane<T> plane;
    private readonly int horizontal, vertical; // Hmax/Hi, Vmax/Vi
    private readonly int sampledWidth;
    private readonly T[] row;                  // output row (whole pairs: 2·sampled width or the image width)
    private readonly int[] columnSums;         // h2v2: 3·nearer + further row, per column
    private readonly ushort[] byteColumnSums;  // the same for the vector kernel on 8-bit samples
    private readonly bool vectorRows;          // 8-bit samples on a machine with the vector kernels

    public ComponentUpsampler(ComponentPlane<T> plane, int maxH, int maxV, int imageWidth)
    {
        this.plane = plane;
        var c = plane.Component;
        if (maxH % c.H != 0 || maxV % c.V != 0)
            throw new JpegException($"JPEG sampling factors {c.H}x{c.V} of component {c.Id} do not divide {maxH}x{maxV}: fractional upsampling is not supported (libjpeg: not implemented)");
        horizontal = maxH / c.H;
        vertical = maxV / c.V;
        sampledWidth = c.SampledWidth;
        Method = (horizontal, vertical) switch
        {
            (1, 1) => UpsampleMethod.FullSize,
            // The horizontal triangle filters need at least 3 samples per row (libjpeg: downsampled_width > 2).
            (2, 1) => sampledWidth > 2 ? UpsampleMethod.H2V1Fancy : UpsampleMethod.Box,
            (1, 2) => UpsampleMethod.H1V2Fancy,
            (2, 2) => sampledWidth > 2 ? UpsampleMethod.H2V2Fancy : UpsampleMethod.Box,
            _ => UpsampleMethod.Box,
        };
        row = new T[Math.Max(imageWidth, 2 * sampledWidth) + 8];
        columnSums = Method == UpsampleMethod.H2V2Fancy ? new int[sampledWidth] : [];
        vectorRows = typeof(T) == typeof(byte) && JpegRowKernels.Enabled;
        byteColumnSums = Method == UpsampleMethod.H2V2Fancy && vectorRows ? new ushort[sampledWidth] : [];
    }

    public UpsampleMethod Method { get; }

    /// <summary>Output row <paramref name="y"/> of this component at full size (at least the image width).</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    public ReadOnlySpan<T> Row(int y, int imageWidth)
    {
        switch (Method)
        {
            case UpsampleMethod.FullSize:
                return plane.Row(y);
            case UpsampleMethod.H2V1Fancy:
                if (vectorRows && sampledWidth >= JpegRowKernels.MinimumWidth)
                    JpegRowKernels.H2V1Fancy(Bytes(plane.Row(y)), Bytes(row), sampledWidth);
                else
                    H2V1(plane.Row(y), row, sampledWidth);
                return row;
            case UpsampleMethod.H1V2Fancy:
            {
                // Even output rows lean on the row above (rounding bias 1), odd ones on the row below (bias 2).
                var nearer = plane.Row(y >> 1);
                var further = plane.Row((y & 1) == 0 ? (y >> 1) - 1 : (y >> 1) + 1);
                int bias = (y & 1) == 0 ? 1 : 2;
                if (vectorRows) JpegRowKernels.H1V2Fancy(Bytes(nearer), Bytes(further), Bytes(row), sampledWidth, bias);
                else H1V2(nearer, further, row, sampledWidth, bias);
                return row;
            }
            case UpsampleMethod.H2V2Fancy:
            {
                var nearer = plane.Row(y >> 1);
                var further = plane.Row((y & 1) == 0 ? (y >> 1) - 1 : (y >> 1) + 1);
                if (vectorRows && sampledWidth >= JpegRowKernels.MinimumWidth)
                    JpegRowKernels.H2V2Fancy(Bytes(nearer), Bytes(further), byteColumnSums, Bytes(row), sampledWidth);
                else
                    H2V2(nearer, further, columnSums, row, sampledWidth);
                return row;
            }
            default:
                Box(plane.Row(y / vertical), row, horizontal, imageWidth);
                return row;
        }
    }

    private static Span<byte> Bytes(Span<T> samples) => System.Runtime.InteropServices.MemoryMarshal.Cast<T, byte>(samples);

    private static Span<byte> Bytes(T[] samples) => Bytes(samples.AsSpan());

    /// <summary><c>h2v1_fancy_upsample</c>: output 2i is (3·s[i] + s[i−1] + 1) / 4, output 2i+1 is (3·s[i] + s[i+1] + 2) / 4.</summary>
    public static void H2V1(ReadOnlySpan<T> input, Span<T> output, int width)
    {
        int first = int.CreateTruncating(input[0]);
        output[0] = input[0];
        output[1] = T.CreateTruncating((3 * first + int.CreateTruncating(input[1]) + 2) >> 2);
        for (int i = 1; i < width - 1; i++)
        {
            int near = 3 * int.CreateTruncating(input[i]);
            output[2 * i] = T.CreateTruncating((near + int.CreateTruncating(input[i - 1]) + 1) >> 2);
            output[2 * i + 1] = T.CreateTruncating((near + int.CreateTruncating(input[i + 1]) + 2) >> 2);
        }
        int last = int.CreateTruncating(input[width - 1]);
        output[2 * width - 2] = T.CreateTruncating((3 * last + int.CreateTruncating(input[width - 2]) + 1) >> 2);
        output[2 * width - 1] = input[width - 1];
    }

    /// <summary><c>h1v2_fancy_upsample</c>: (3·nearer row + further row + bias) / 4.</summary>
    public static void H1V2(ReadOnlySpan<T> nearer, ReadOnlySpan<T> further, Span<T> output, int width, int bias)
    {
        for (int i = 0; i < width; i++)
            output[i] = T.CreateTruncating((3 * int.CreateTruncating(nearer[i]) + int.CreateTruncating(further[i]) + bias) >> 2);
    }

    /// <summary>
    /// <c>h2v2_fancy_upsample</c>: column sums c = 3·nearer + further, then output 2i = (3·c[i] + c[i−1] + 8) / 16 and
    /// 2i+1 = (3·c[i] + c[i+1] + 7) / 16; the first and last columns use 4·c instead of the missing neighbour.
    /// </summary>
    public static void H2V2(ReadOnlySpan<T> nearer, ReadOnlySpan<T> further, Span<int> sums, Span<T> output, int width)
    {
        for (int i = 0; i < width; i++) sums[i] = 3 * int.CreateTruncating(nearer[i]) + int.CreateTruncating(further[i]);
        output[0] = T.CreateTruncating((4 * sums[0] + 8) >> 4);
        output[1] = T.CreateTruncating((3 * sums[0] + sums[1] + 7) >> 4);
        for (int i = 1; i < width - 1; i++)
        {
            int near = 3 * sums[i];
            output[2 * i] = T.CreateTruncating((near + sums[i - 1] + 8) >> 4);
            output[2 * i + 1] = T.CreateTruncating((near + sums[i + 1] + 7) >> 4);
        }
        output[2 * width - 2] = T.CreateTruncating((3 * sums[width - 1] + sums[width - 2] + 8) >> 4);
        output[2 * width - 1] = T.CreateTruncating((4 * sums[width - 1] + 7) >> 4);
    }

    /// <summary>Box upsampling: each input sample repeated <paramref name="factor"/> times, up to the image width.</summary>
    public static void Box(ReadOnlySpan<T> input, Span<T> output, int factor, int imageWidth)
    {
        for (int x = 0; x < imageWidth; x++) output[x] = input[x / factor];
    }
}
