using System.Collections.Concurrent;

namespace ManagedClip.Imaging;

/// <summary>
/// Pillow's bicubic resampling weights for one axis (Pillow 9.4 <c>Resample.c</c>, <c>precompute_coeffs</c> and
/// <c>normalize_coeffs_8bpc</c>, re-derived here) for a window of consecutive outputs
/// <c>[FirstOutput, FirstOutput + Length)</c>: the window's i-th output reads inputs
/// <c>[First[i], First[i] + Count[i])</c> with weights <c>Weights[i * KernelSize + j]</c>. Each output's weights
/// depend only on its own position, so a window's table is exactly that part of the whole axis' table; the resize
/// asks only for the outputs the centre crop keeps (224 of them, however long the axis).
/// Computed once per (input size, output size, window) and shared: instances are immutable.
/// </summary>
internal sealed class ResampleCoefficients
{
    /// <summary>
    /// Fractional bits of the 8-bit path's fixed-point weights: 32 − 8 (result) − 2 (headroom for the kernel's
    /// negative lobes, whose partial sums may leave [0, 1]).
    /// </summary>
    public const int PrecisionBits = 32 - 8 - 2;

    /// <summary>Half of one output unit, the rounding bias every 8-bit accumulator starts with.</summary>
    public const int RoundingBias = 1 << (PrecisionBits - 1);

    private const double CubicA = -0.5;     // Keys' a, as Pillow's BICUBIC
    private const double CubicSupport = 2.0; // the cubic kernel is zero beyond |x| = 2
    private const int MaxCachedSizes = 256;  // a batch of many odd sizes must not grow the cache without bound

    private static readonly ConcurrentDictionary<(int In, int Out, int First, int Length), ResampleCoefficients> Cache = new();

    private ResampleCoefficients(int inSize, int outSize, int firstOutput, int length)
    {
        InSize = inSize;
        OutSize = outSize;
        FirstOutput = firstOutput;
        Length = length;

        // Downscaling stretches the kernel by the scale factor (antialiasing); upscaling keeps it at width 2.
        double scale = (double)(float)inSize / outSize; // Pillow divides the float box width (exact here)
        double filterScale = Math.Max(scale, 1.0);
        double support = CubicSupport * filterScale;
        KernelSize = (int)Math.Ceiling(support) * 2 + 1;

        First = new int[length];
        Count = new int[length];
        Weights = new double[length * KernelSize];
        FixedWeights = new int[length * KernelSize];

        double inverseFilterScale = 1.0 / filterScale;
        for (int o = 0; o < length; o++)
        {
            double center = (firstOutput + o + 0.5) * scale;
            // (int) truncates like C's cast; both ends are then clamped to the image.
            int first = Math.Max((int)(center - support + 0.5), 0);
            int end = Math.Min((int)(center + support + 0.5), inSize);
            int count = end - first;

            Span<double> w = Weights.AsSpan(o * KernelSize, KernelSize);
            double sum = 0.0;
            for (int i = 0; i < count; i++)
            {
                // Same operation order as Pillow: (int sum) − center + 0.5, then times 1/filterScale.
                w[i] = Cubic(((double)(first + i) - center + 0.5) * inverseFilterScale);
                sum += w[i];
            }
            if (sum != 0.0)
            {
                for (int i = 0; i < count; i++) w[i] /= sum;
            }
            for (int i = 0; i < count; i++)
            {
                // Round half away from zero to 22 fractional bits, as Pillow's (int)(±0.5 + w·2^22).
                double scaled = w[i] * (1 << PrecisionBits);
                FixedWeights[o * KernelSize + i] = w[i] < 0 ? (int)(-0.5 + scaled) : (int)(0.5 + scaled);
            }
            First[o] = first;
            Count[o] = count;
        }
    }

    /// <summary>Input length.</summary>
    public int InSize { get; }

    /// <summary>Output length of the whole axis.</summary>
    public int OutSize { get; }

    /// <summary>The first output this table describes.</summary>
    public int FirstOutput { get; }

    /// <summary>Number of outputs this table describes.</summary>
    public int Length { get; }

    /// <summary>The inputs the window's outputs read: <c>[First[0], last First + Count)</c> (both ends grow with the output).</summary>
    public (int First, int End) InputRange => (First[0], First[Length - 1] + Count[Length - 1]);

    /// <summary>Stride of the weight tables: the most taps any output can have (2·ceil(support) + 1).</summary>
    public int KernelSize { get; }

    /// <summary>First input index each output reads, <c>[Length]</c>.</summary>
    public int[] First { get; }

    /// <summary>Number of inputs each output reads, <c>[Length]</c>.</summary>
    public int[] Count { get; }

    /// <summary>Normalised weights (sum 1 per output), used by mode I, <c>[Length, KernelSize]</c>.</summary>
    public double[] Weights { get; }

    /// <summary>The same weights in 22-bit fixed point, used by the 8-bit modes, <c>[Length, KernelSize]</c>.</summary>
    public int[] FixedWeights { get; }

    /// <summary>The (shared, immutable) coefficients for resampling <paramref name="inSize"/> to <paramref name="outSize"/>.</summary>
    public static ResampleCoefficients Bicubic(int inSize, int outSize) => Bicubic(inSize, outSize, 0, outSize);

    /// <summary>The coefficients of outputs <c>[firstOutput, firstOutput + length)</c> only.</summary>
    public static ResampleCoefficients Bicubic(int inSize, int outSize, int firstOutput, int length)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(inSize, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(length, 1);
        if (firstOutput < 0 || firstOutput > outSize - length) throw new ArgumentOutOfRangeException(nameof(firstOutput));
        var key = (inSize, outSize, firstOutput, length);
        if (Cache.TryGetValue(key, out var cached)) return cached;
        if (Cache.Count >= MaxCachedSizes) Cache.Clear();
        return Cache.GetOrAdd(key, k => new ResampleCoefficients(k.In, k.Out, k.First, k.Length));
    }

    /// <summary>Keys' cubic convolution kernel with a = −0.5, written in Pillow's evaluation order.</summary>
    private static double Cubic(double x)
    {
        if (x < 0.0) x = -x;
        if (x < 1.0) return ((CubicA + 2.0) * x - (CubicA + 3.0)) * x * x + 1;
        if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * CubicA;
        return 0.0;
    }
}
