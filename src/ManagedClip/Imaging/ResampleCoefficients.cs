using System.Collections.Concurrent;

namespace ManagedClip.Imaging;

/// <summary>
/// Pillow's bicubic resampling weights for one axis (Pillow 9.4 <c>Resample.c</c>, <c>precompute_coeffs</c> and
/// <c>normalize_coeffs_8bpc</c>, re-derived here). Output pixel <c>o</c> reads inputs
/// <c>[First[o], First[o] + Count[o])</c> with weights <c>Weights[o * KernelSize + i]</c>.
/// Computed once per (input, output) size and shared: instances are immutable.
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

    private static readonly ConcurrentDictionary<(int In, int Out), ResampleCoefficients> Cache = new();

    private ResampleCoefficients(int inSize, int outSize)
    {
        InSize = inSize;
        OutSize = outSize;

        // Downscaling stretches the kernel by the scale factor (antialiasing); upscaling keeps it at width 2.
        double scale = (double)(float)inSize / outSize; // Pillow divides the float box width (exact here)
        double filterScale = Math.Max(scale, 1.0);
        double support = CubicSupport * filterScale;
        KernelSize = (int)Math.Ceiling(support) * 2 + 1;

        First = new int[outSize];
        Count = new int[outSize];
        Weights = new double[outSize * KernelSize];
        FixedWeights = new int[outSize * KernelSize];

        double inverseFilterScale = 1.0 / filterScale;
        for (int o = 0; o < outSize; o++)
        {
            double center = (o + 0.5) * scale;
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

    /// <summary>Output length.</summary>
    public int OutSize { get; }

    /// <summary>Stride of the weight tables: the most taps any output can have (2·ceil(support) + 1).</summary>
    public int KernelSize { get; }

    /// <summary>First input index each output reads, <c>[OutSize]</c>.</summary>
    public int[] First { get; }

    /// <summary>Number of inputs each output reads, <c>[OutSize]</c>.</summary>
    public int[] Count { get; }

    /// <summary>Normalised weights (sum 1 per output), used by mode I, <c>[OutSize, KernelSize]</c>.</summary>
    public double[] Weights { get; }

    /// <summary>The same weights in 22-bit fixed point, used by the 8-bit modes, <c>[OutSize, KernelSize]</c>.</summary>
    public int[] FixedWeights { get; }

    /// <summary>The (shared, immutable) coefficients for resampling <paramref name="inSize"/> to <paramref name="outSize"/>.</summary>
    public static ResampleCoefficients Bicubic(int inSize, int outSize)
    {
        if (Cache.TryGetValue((inSize, outSize), out var cached)) return cached;
        if (Cache.Count >= MaxCachedSizes) Cache.Clear();
        return Cache.GetOrAdd((inSize, outSize), key => new ResampleCoefficients(key.In, key.Out));
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
