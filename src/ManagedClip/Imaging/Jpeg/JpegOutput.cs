using System.Numerics;
using System.Runtime.InteropServices;

namespace ManagedClip.Imaging.Jpeg;

/// <summary>
/// The output side of the decoder: holds each component's decoded samples (<see cref="ComponentPlane{T}"/>),
/// upsamples them row by row and writes interleaved pixels, colour-converted for <see cref="JpegColorOutput.Pillow"/>.
/// </summary>
/// <typeparam name="T"><c>byte</c> for 8-bit samples, <c>ushort</c> for more.</typeparam>
internal sealed class JpegOutput<T> where T : unmanaged, IBinaryInteger<T>
{
    private readonly JpegFrame frame;
    private readonly JpegColorSpace colorSpace;
    private readonly JpegColorOutput mode;
    private readonly ComponentUpsampler<T>[] upsamplers;
    private readonly int rowsPerMcuRow;

    /// <param name="frame">The frame.</param>
    /// <param name="colorSpace">Colour space of the stored components.</param>
    /// <param name="mode">Pillow's pixels or the raw components.</param>
    /// <param name="wholePlanes">Keep every sample row (lossless) instead of a ring of three iMCU rows.</param>
    public JpegOutput(JpegFrame frame, JpegColorSpace colorSpace, JpegColorOutput mode, bool wholePlanes)
    {
        this.frame = frame;
        this.colorSpace = colorSpace;
        this.mode = mode;
        int block = frame.BlockSize;
        Planes = new ComponentPlane<T>[frame.Components.Length];
        upsamplers = new ComponentUpsampler<T>[frame.Components.Length];
        for (int i = 0; i < Planes.Length; i++)
        {
            var c = frame.Components[i];
            Planes[i] = wholePlanes
                ? new ComponentPlane<T>(c, c.BlockRows * block, 1, c.BlocksPerLine * block)
                : new ComponentPlane<T>(c, c.V * block, Math.Min(3, frame.McuRows), c.BlocksPerLine * block);
            upsamplers[i] = new ComponentUpsampler<T>(Planes[i], frame.MaxH, frame.MaxV, frame.Width);
        }
        rowsPerMcuRow = frame.MaxV * block;
        // Every sample is written by EmitRows, so the (possibly large) array needs no zeroing.
        Pixels = GC.AllocateUninitializedArray<T>(checked(frame.Width * frame.Height * frame.Components.Length));
    }

    /// <summary>Decoded samples per component.</summary>
    public ComponentPlane<T>[] Planes { get; }

    /// <summary>The image, [Height, Width, Components].</summary>
    public T[] Pixels { get; }

    /// <summary>Upsamples, converts and stores the pixel rows of iMCU row <paramref name="mcuRow"/>.</summary>
    public void EmitMcuRow(int mcuRow) =>
        EmitRows(mcuRow * rowsPerMcuRow, Math.Min(frame.Height, (mcuRow + 1) * rowsPerMcuRow));

    /// <summary>Upsamples, converts and stores pixel rows [<paramref name="first"/>, <paramref name="end"/>).</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    public void EmitRows(int first, int end)
    {
        int width = frame.Width, count = Planes.Length;
        for (int y = first; y < end; y++)
        {
            var output = Pixels.AsSpan((int)((long)y * width * count), width * count);
            switch (count)
            {
                case 1:
                    upsamplers[0].Row(y, width)[..width].CopyTo(output);
                    break;
                case 3:
                    Convert3(upsamplers[0].Row(y, width), upsamplers[1].Row(y, width), upsamplers[2].Row(y, width), output, width);
                    break;
                case 4:
                    Convert4(upsamplers[0].Row(y, width), upsamplers[1].Row(y, width), upsamplers[2].Row(y, width), upsamplers[3].Row(y, width), output, width);
                    break;
                default:
                    for (int c = 0; c < count; c++)
                    {
                        var source = upsamplers[c].Row(y, width);
                        for (int x = 0; x < width; x++) output[x * count + c] = source[x];
                    }
                    break;
            }
        }
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    private void Convert3(ReadOnlySpan<T> c0, ReadOnlySpan<T> c1, ReadOnlySpan<T> c2, Span<T> output, int width)
    {
        if (typeof(T) == typeof(byte))
        {
            var rgb = MemoryMarshal.Cast<T, byte>(output);
            if (mode == JpegColorOutput.Pillow && colorSpace == JpegColorSpace.YCbCr)
                JpegRowKernels.YCbCrToRgb(Bytes(c0), Bytes(c1), Bytes(c2), rgb, width);
            else
                JpegRowKernels.Interleave3(Bytes(c0), Bytes(c1), Bytes(c2), rgb, width);
            return;
        }
        for (int x = 0; x < width; x++)
        {
            output[3 * x] = c0[x];
            output[3 * x + 1] = c1[x];
            output[3 * x + 2] = c2[x];
        }
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    private void Convert4(ReadOnlySpan<T> c0, ReadOnlySpan<T> c1, ReadOnlySpan<T> c2, ReadOnlySpan<T> c3, Span<T> output, int width)
    {
        if (typeof(T) == typeof(byte) && mode == JpegColorOutput.Pillow)
        {
            var bytes = MemoryMarshal.Cast<T, byte>(output);
            if (colorSpace == JpegColorSpace.Ycck)
                ColorConversion.YcckToPillowCmyk(Bytes(c0), Bytes(c1), Bytes(c2), Bytes(c3), bytes, width);
            else
                ColorConversion.CmykToPillowCmyk(Bytes(c0), Bytes(c1), Bytes(c2), Bytes(c3), bytes, width);
            return;
        }
        for (int x = 0; x < width; x++)
        {
            output[4 * x] = c0[x];
            output[4 * x + 1] = c1[x];
            output[4 * x + 2] = c2[x];
            output[4 * x + 3] = c3[x];
        }
    }

    private static ReadOnlySpan<byte> Bytes(ReadOnlySpan<T> samples) => MemoryMarshal.Cast<T, byte>(samples);
}
