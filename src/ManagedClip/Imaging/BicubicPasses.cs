using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace ManagedClip.Imaging;

/// <summary>
/// The two one-dimensional passes of Pillow's separable resampling (Resample.c
/// <c>ImagingResampleHorizontal/Vertical_8bpc</c> and <c>_32bpc</c>). 8-bit images accumulate
/// byte × 22-bit weight in int32 starting from half a unit, then shift, clip to 0..255 and store a byte after
/// each pass; mode I accumulates int × double weight and rounds half away from zero.
/// All buffers are interleaved rows: <c>[rows, width, channels]</c>; a coefficient table may cover only a window
/// of the outputs (<see cref="ResampleCoefficients.FirstOutput"/>), and the passes then compute just that window.
/// </summary>
internal static unsafe class BicubicPasses
{
    /// <summary>
    /// Resamples the width of one row: output i of the table's window from the inputs it reads.
    /// <paramref name="input"/> holds the row's pixels from column <paramref name="inputStart"/> on, and must reach
    /// the table's <see cref="ResampleCoefficients.InputRange"/>.
    /// </summary>
    // input: [≥ weights.InputRange.End − inputStart, channels], pixel 0 is column inputStart
    // output: [weights.Length, channels]
    public static void HorizontalRow8(ReadOnlySpan<byte> input, int inputStart, int channels, ResampleCoefficients weights,
        Span<byte> output)
    {
        var (first, end) = weights.InputRange;
        if (first < inputStart || (long)(end - inputStart) * channels > input.Length || output.Length < weights.Length * channels)
            throw new ArgumentException("the row does not cover the inputs the weights read");
        fixed (byte* inputStartPointer = input, outputStart = output)
        fixed (int* weightStart = weights.FixedWeights)
        fixed (int* firstStart = weights.First, countStart = weights.Count)
        {
            byte* origin = inputStartPointer - (long)inputStart * channels; // column 0, never read below inputStart
            var row = new RowWeights(weightStart, firstStart, countStart, weights.KernelSize);
            switch (channels)
            {
                case 1: HorizontalRow1(origin, outputStart, weights.Length, row); break;
                case 2: HorizontalRow2(origin, outputStart, weights.Length, row); break;
                case 3: HorizontalRow3(origin, outputStart, weights.Length, row); break;
                case 4: HorizontalRow4(origin, outputStart, weights.Length, row); break;
                default: throw new ArgumentOutOfRangeException(nameof(channels), channels, "1 to 4 channels");
            }
        }
    }

    /// <summary>Resamples the height; <paramref name="weights"/>' input rows are shifted by <paramref name="rowOffset"/>.</summary>
    // source: [sourceRows, rowLength] with sourceRows ≥ weights.InputRange.End − rowOffset
    // destination: [weights.Length, rowLength]
    public static void Vertical8(ReadOnlySpan<byte> source, int rowLength, int rowOffset, ResampleCoefficients weights,
        Span<byte> destination)
    {
        var (first, end) = weights.InputRange;
        if (first < rowOffset || (long)(end - rowOffset) * rowLength > source.Length || (long)weights.Length * rowLength > destination.Length)
            throw new ArgumentException("the rows do not cover the inputs the weights read");
        fixed (byte* sourceStart = source, destinationStart = destination)
        fixed (int* weightStart = weights.FixedWeights)
        {
            for (int y = 0; y < weights.Length; y++)
            {
                byte* input = sourceStart + (long)(weights.First[y] - rowOffset) * rowLength;
                int* w = weightStart + y * weights.KernelSize;
                VerticalRow(input, rowLength, w, weights.Count[y], destinationStart + (long)y * rowLength);
            }
        }
    }

    /// <summary>Mode I width pass of one row: int32 pixels, double weights, Pillow's ROUND_UP.</summary>
    // input: [≥ weights.InputRange.End − inputStart], pixel 0 is column inputStart
    // output: [weights.Length]
    public static void HorizontalRow32(ReadOnlySpan<int> input, int inputStart, ResampleCoefficients weights, Span<int> output)
    {
        for (int x = 0; x < weights.Length; x++)
        {
            var w = weights.Weights.AsSpan(x * weights.KernelSize, weights.Count[x]);
            var pixels = input.Slice(weights.First[x] - inputStart, w.Length);
            double sum = 0.0;
            for (int i = 0; i < w.Length; i++) sum += pixels[i] * w[i];
            output[x] = RoundHalfAwayFromZero(sum);
        }
    }

    /// <summary>Mode I height pass.</summary>
    // source: [sourceRows, width]
    // destination: [weights.Length, width]
    public static void Vertical32(ReadOnlySpan<int> source, int width, int rowOffset, ResampleCoefficients weights,
        Span<int> destination)
    {
        for (int y = 0; y < weights.Length; y++)
        {
            var w = weights.Weights.AsSpan(y * weights.KernelSize, weights.Count[y]);
            int first = weights.First[y] - rowOffset;
            var output = destination.Slice(y * width, width);
            for (int x = 0; x < width; x++)
            {
                double sum = 0.0;
                for (int i = 0; i < w.Length; i++) sum += source[(first + i) * width + x] * w[i];
                output[x] = RoundHalfAwayFromZero(sum);
            }
        }
    }

    /// <summary>Pillow's ROUND_UP: <c>(int)(f &gt;= 0 ? f + 0.5 : f − 0.5)</c>.</summary>
    private static int RoundHalfAwayFromZero(double value) => (int)(value >= 0.0 ? value + 0.5 : value - 0.5);

    /// <summary>Fixed-point accumulator → byte: drop the fraction (arithmetic shift) and clip to 0..255.</summary>
    private static byte Clip8(int accumulator)
    {
        int value = accumulator >> ResampleCoefficients.PrecisionBits;
        return value < 0 ? (byte)0 : value > 255 ? (byte)255 : (byte)value;
    }

    /// <summary>Pointers into one coefficient table, valid inside the caller's <c>fixed</c> block.</summary>
    private readonly struct RowWeights(int* weights, int* first, int* count, int kernelSize)
    {
        public int* WeightsOf(int x) => weights + x * kernelSize;
        public int FirstOf(int x) => first[x];
        public int CountOf(int x) => count[x];
    }

    private static void HorizontalRow1(byte* input, byte* output, int outWidth, RowWeights row)
    {
        for (int x = 0; x < outWidth; x++)
        {
            int* w = row.WeightsOf(x);
            byte* p = input + row.FirstOf(x);
            int count = row.CountOf(x);
            int s0 = ResampleCoefficients.RoundingBias;
            for (int i = 0; i < count; i++) s0 += p[i] * w[i];
            output[x] = Clip8(s0);
        }
    }

    private static void HorizontalRow2(byte* input, byte* output, int outWidth, RowWeights row)
    {
        for (int x = 0; x < outWidth; x++)
        {
            int* w = row.WeightsOf(x);
            byte* p = input + 2 * row.FirstOf(x);
            int count = row.CountOf(x);
            int s0 = ResampleCoefficients.RoundingBias, s1 = s0;
            for (int i = 0; i < count; i++, p += 2)
            {
                s0 += p[0] * w[i];
                s1 += p[1] * w[i];
            }
            output[2 * x] = Clip8(s0);
            output[2 * x + 1] = Clip8(s1);
        }
    }

    private static void HorizontalRow3(byte* input, byte* output, int outWidth, RowWeights row)
    {
        for (int x = 0; x < outWidth; x++)
        {
            int* w = row.WeightsOf(x);
            byte* p = input + 3 * row.FirstOf(x);
            int count = row.CountOf(x);
            int s0 = ResampleCoefficients.RoundingBias, s1 = s0, s2 = s0;
            for (int i = 0; i < count; i++, p += 3)
            {
                int k = w[i];
                s0 += p[0] * k;
                s1 += p[1] * k;
                s2 += p[2] * k;
            }
            output[3 * x] = Clip8(s0);
            output[3 * x + 1] = Clip8(s1);
            output[3 * x + 2] = Clip8(s2);
        }
    }

    private static void HorizontalRow4(byte* input, byte* output, int outWidth, RowWeights row)
    {
        for (int x = 0; x < outWidth; x++)
        {
            int* w = row.WeightsOf(x);
            byte* p = input + 4 * row.FirstOf(x);
            int count = row.CountOf(x);
            int s0 = ResampleCoefficients.RoundingBias, s1 = s0, s2 = s0, s3 = s0;
            for (int i = 0; i < count; i++, p += 4)
            {
                int k = w[i];
                s0 += p[0] * k;
                s1 += p[1] * k;
                s2 += p[2] * k;
                s3 += p[3] * k;
            }
            output[4 * x] = Clip8(s0);
            output[4 * x + 1] = Clip8(s1);
            output[4 * x + 2] = Clip8(s2);
            output[4 * x + 3] = Clip8(s3);
        }
    }

    /// <summary>
    /// One output row of the height pass: every byte of the row is an independent sum over the input rows, so
    /// eight bytes at a time go through AVX2 (zero-extend to int32, multiply by the broadcast weight, add).
    /// </summary>
    private static void VerticalRow(byte* input, int rowLength, int* w, int count, byte* output)
    {
        int x = 0;
        if (Avx2.IsSupported)
        {
            var bias = Vector256.Create(ResampleCoefficients.RoundingBias);
            for (; x + 8 <= rowLength; x += 8)
            {
                var sum = bias;
                byte* p = input + x;
                for (int i = 0; i < count; i++, p += rowLength)
                    sum = Avx2.Add(sum, Avx2.MultiplyLow(Avx2.ConvertToVector256Int32(p), Vector256.Create(w[i])));
                var shifted = Avx2.ShiftRightArithmetic(sum, ResampleCoefficients.PrecisionBits);
                // int32 → int16 (values are within ±1024) → uint8 with clipping to 0..255, lanes kept in order.
                var words = Sse2.PackSignedSaturate(shifted.GetLower(), shifted.GetUpper());
                var bytes = Sse2.PackUnsignedSaturate(words, words);
                *(ulong*)(output + x) = bytes.AsUInt64().ToScalar();
            }
        }
        for (; x < rowLength; x++)
        {
            int s = ResampleCoefficients.RoundingBias;
            byte* p = input + x;
            for (int i = 0; i < count; i++, p += rowLength) s += *p * w[i];
            output[x] = Clip8(s);
        }
    }
}
