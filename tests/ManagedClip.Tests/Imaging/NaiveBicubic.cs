namespace ManagedClip.Tests.Imaging;

/// <summary>
/// A deliberately plain second transcription of Pillow's bicubic resampling (Resample.c), written from the
/// algorithm's description without sharing code with the library: weights recomputed per output pixel, every
/// row resampled (no row window), no pointers, no SIMD. The fast implementation must agree with it exactly.
/// </summary>
internal static class NaiveBicubic
{
    /// <summary>8-bit interleaved image [height, width, channels] → [newHeight, newWidth, channels].</summary>
    public static byte[] Resize8(byte[] pixels, int width, int height, int channels, int newWidth, int newHeight)
    {
        var current = pixels;
        if (newWidth != width)
        {
            var next = new byte[height * newWidth * channels];
            for (int y = 0; y < height; y++)
                for (int x = 0; x < newWidth; x++)
                {
                    var (first, weights) = Weights(width, newWidth, x);
                    for (int c = 0; c < channels; c++)
                    {
                        int sum = 1 << 21;
                        for (int i = 0; i < weights.Length; i++) sum += current[((y * width) + first + i) * channels + c] * weights[i];
                        next[(y * newWidth + x) * channels + c] = Clip(sum);
                    }
                }
            current = next;
        }
        if (newHeight != height)
        {
            var next = new byte[newHeight * newWidth * channels];
            for (int y = 0; y < newHeight; y++)
            {
                var (first, weights) = Weights(height, newHeight, y);
                for (int x = 0; x < newWidth * channels; x++)
                {
                    int sum = 1 << 21;
                    for (int i = 0; i < weights.Length; i++) sum += current[(first + i) * newWidth * channels + x] * weights[i];
                    next[y * newWidth * channels + x] = Clip(sum);
                }
            }
            current = next;
        }
        return current;
    }

    /// <summary>Mode I: int32 [height, width], double weights, rounding half away from zero after each pass.</summary>
    public static int[] ResizeInt32(int[] pixels, int width, int height, int newWidth, int newHeight)
    {
        var current = pixels;
        if (newWidth != width)
        {
            var next = new int[height * newWidth];
            for (int y = 0; y < height; y++)
                for (int x = 0; x < newWidth; x++)
                {
                    var (first, weights) = DoubleWeights(width, newWidth, x);
                    double sum = 0;
                    for (int i = 0; i < weights.Length; i++) sum += current[y * width + first + i] * weights[i];
                    next[y * newWidth + x] = (int)(sum >= 0 ? sum + 0.5 : sum - 0.5);
                }
            current = next;
        }
        if (newHeight != height)
        {
            var next = new int[newHeight * newWidth];
            for (int y = 0; y < newHeight; y++)
            {
                var (first, weights) = DoubleWeights(height, newHeight, y);
                for (int x = 0; x < newWidth; x++)
                {
                    double sum = 0;
                    for (int i = 0; i < weights.Length; i++) sum += current[(first + i) * newWidth + x] * weights[i];
                    next[y * newWidth + x] = (int)(sum >= 0 ? sum + 0.5 : sum - 0.5);
                }
            }
            current = next;
        }
        return current;
    }

    /// <summary>
    /// One window of the 8-bit resize, each kept pixel computed straight from the definition: the horizontal pass
    /// evaluated for the source rows its vertical taps read, then the vertical sum. Costs window × taps², so it
    /// stays affordable for resized images far too large to build (1×65535 → 224×14,679,840).
    /// </summary>
    // pixels: [height, width, channels]; result: [windowHeight, windowWidth, channels]
    public static byte[] Window8(byte[] pixels, int width, int height, int channels, int newWidth, int newHeight,
        int left, int top, int windowWidth, int windowHeight)
    {
        var result = new byte[windowWidth * windowHeight * channels];
        for (int y = 0; y < windowHeight; y++)
            for (int x = 0; x < windowWidth; x++)
                for (int c = 0; c < channels; c++)
                {
                    int Across(int row) // the horizontal pass's value at (left + x, row)
                    {
                        if (newWidth == width) return pixels[(row * width + left + x) * channels + c];
                        var (first, weights) = Weights(width, newWidth, left + x);
                        int sum = 1 << 21;
                        for (int i = 0; i < weights.Length; i++) sum += pixels[(row * width + first + i) * channels + c] * weights[i];
                        return Clip(sum);
                    }
                    int value;
                    if (newHeight == height) value = Across(top + y);
                    else
                    {
                        var (first, weights) = Weights(height, newHeight, top + y);
                        int sum = 1 << 21;
                        for (int i = 0; i < weights.Length; i++) sum += Across(first + i) * weights[i];
                        value = Clip(sum);
                    }
                    result[(y * windowWidth + x) * channels + c] = (byte)value;
                }
        return result;
    }

    /// <summary>The same for mode I (double weights, rounding half away from zero after each pass).</summary>
    public static int[] WindowInt32(int[] pixels, int width, int height, int newWidth, int newHeight,
        int left, int top, int windowWidth, int windowHeight)
    {
        var result = new int[windowWidth * windowHeight];
        static int Round(double sum) => (int)(sum >= 0 ? sum + 0.5 : sum - 0.5);
        for (int y = 0; y < windowHeight; y++)
            for (int x = 0; x < windowWidth; x++)
            {
                int Across(int row)
                {
                    if (newWidth == width) return pixels[row * width + left + x];
                    var (first, weights) = DoubleWeights(width, newWidth, left + x);
                    double sum = 0;
                    for (int i = 0; i < weights.Length; i++) sum += pixels[row * width + first + i] * weights[i];
                    return Round(sum);
                }
                if (newHeight == height) { result[y * windowWidth + x] = Across(top + y); continue; }
                var (firstRow, rowWeights) = DoubleWeights(height, newHeight, top + y);
                double total = 0;
                for (int i = 0; i < rowWeights.Length; i++) total += Across(firstRow + i) * rowWeights[i];
                result[y * windowWidth + x] = Round(total);
            }
        return result;
    }

    private static byte Clip(int sum) => (byte)Math.Clamp(sum >> 22, 0, 255);

    private static (int First, int[] Weights) Weights(int inSize, int outSize, int index)
    {
        var (first, weights) = DoubleWeights(inSize, outSize, index);
        return (first, weights.Select(w => (int)(w < 0 ? w * 4194304.0 - 0.5 : w * 4194304.0 + 0.5)).ToArray());
    }

    private static (int First, double[] Weights) DoubleWeights(int inSize, int outSize, int index)
    {
        double scale = (double)inSize / outSize;
        double stretch = Math.Max(scale, 1.0);
        double support = 2.0 * stretch;
        double center = (index + 0.5) * scale;
        int first = Math.Max(0, (int)(center - support + 0.5));
        int end = Math.Min(inSize, (int)(center + support + 0.5));
        var weights = new double[end - first];
        for (int i = 0; i < weights.Length; i++) weights[i] = Cubic((first + i - center + 0.5) * (1.0 / stretch));
        double total = weights.Sum();
        if (total != 0) for (int i = 0; i < weights.Length; i++) weights[i] /= total;
        return (first, weights);
    }

    private static double Cubic(double x)
    {
        const double a = -0.5;
        x = Math.Abs(x);
        if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
        if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
        return 0;
    }
}
