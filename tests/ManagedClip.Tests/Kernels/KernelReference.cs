namespace ManagedClip.Tests.Kernels;

/// <summary>
/// Plain float64 statements of what each kernel computes: the reference the tests compare against.
/// Written for clarity, not speed, and independently of the library's code.
/// </summary>
internal static class KernelReference
{
    /// <summary>Y[M,N] = X[M,K]·W[N,K]ᵀ + b, and Σₖ|x||w| + |b| per output (the scale of its rounding error).</summary>
    public static (double[] Product, double[] Magnitude) Gemm(float[] x, int m, float[] w, int n, int k, float[] bias)
    {
        var product = new double[m * n];
        var magnitude = new double[m * n];
        for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++)
        {
            double sum = bias.Length > 0 ? bias[j] : 0, abs = bias.Length > 0 ? Math.Abs(bias[j]) : 0;
            for (int p = 0; p < k; p++)
            {
                double term = (double)x[i * k + p] * w[j * k + p];
                sum += term;
                abs += Math.Abs(term);
            }
            product[i * n + j] = sum;
            magnitude[i * n + j] = abs;
        }
        return (product, magnitude);
    }

    public static double Gelu(double x) => 0.5 * x * (1 + Erf(x / Math.Sqrt(2)));

    /// <summary>
    /// erf in double: the Maclaurin series Σ (−1)ⁿ x^(2n+1) / (n!(2n+1)) · 2/√π below |x| = 2 (cancellation
    /// costs about one digit there), and above it erfc by its continued fraction
    /// erfc(x) = e^(−x²)/√π · 1/(x + ½/(x + 1/(x + (3/2)/(x + …)))) evaluated forwards with Lentz's method.
    /// Checked against published values (ActivationTests).
    /// </summary>
    public static double Erf(double x)
    {
        double a = Math.Abs(x), result;
        if (a < 2)
        {
            double term = a, sum = a; // term = (−1)ⁿ a^(2n+1) / n!
            for (int n = 1; n < 200; n++)
            {
                term *= -a * a / n;
                double contribution = term / (2 * n + 1);
                sum += contribution;
                if (Math.Abs(contribution) < 1e-18) break;
            }
            result = 2 / Math.Sqrt(Math.PI) * sum;
        }
        else
        {
            // Lentz: f = b0 + a1/(b1 + a2/(b2 + …)) with b = x, a_n = n/2.
            const double tiny = 1e-300;
            double f = a, c = a, d = 0;
            for (int n = 1; n < 500; n++)
            {
                double an = n / 2.0;
                d = a + an * d;
                d = d == 0 ? tiny : 1 / d;
                c = a + an / c;
                if (c == 0) c = tiny;
                double delta = c * d;
                f *= delta;
                if (Math.Abs(delta - 1) < 1e-17) break;
            }
            result = 1 - Math.Exp(-a * a) / Math.Sqrt(Math.PI) / f;
        }
        return Math.CopySign(result, x);
    }

    /// <summary>softmax(scale·row) in double.</summary>
    public static double[] Softmax(ReadOnlySpan<float> row, double scale = 1)
    {
        double max = double.NegativeInfinity;
        foreach (var v in row) max = Math.Max(max, v);
        var result = new double[row.Length];
        double sum = 0;
        for (int i = 0; i < row.Length; i++) sum += result[i] = Math.Exp(scale * (row[i] - max));
        for (int i = 0; i < row.Length; i++) result[i] /= sum;
        return result;
    }

    /// <summary>LayerNorm of one row in double; also returns the row's mean and standard deviation.</summary>
    public static (double[] Output, double Mean, double Deviation) LayerNorm(ReadOnlySpan<float> x, float[] gamma,
        float[] beta, double eps)
    {
        double mean = 0;
        foreach (var v in x) mean += v;
        mean /= x.Length;
        double variance = 0;
        foreach (var v in x) variance += (v - mean) * (v - mean);
        variance /= x.Length;
        double deviation = Math.Sqrt(variance + eps);
        var output = new double[x.Length];
        for (int i = 0; i < x.Length; i++) output[i] = (x[i] - mean) / deviation * gamma[i] + beta[i];
        return (output, mean, deviation);
    }

    /// <summary>
    /// Self-attention in double over the first keyCount keys; also returns, per output element, Σₛ pₛ|vₛ| (the
    /// scale of its error) and the largest Σ|q||k| of its row (the scale of the scores' error).
    /// </summary>
    public static (double[] Output, double[] Magnitude, double[] ScoreMagnitude) Attention(float[] qkv, int tokenCount,
        int headCount, int headSize, int keyCount)
    {
        int width = headCount * headSize, stride = 3 * width;
        var output = new double[tokenCount * width];
        var magnitude = new double[tokenCount * width];
        var scoreMagnitude = new double[tokenCount * width];
        double scale = 1 / Math.Sqrt(headSize);
        for (int h = 0; h < headCount; h++)
        for (int t = 0; t < tokenCount; t++)
        {
            var scores = new double[keyCount];
            double maxScoreMagnitude = 0;
            for (int s = 0; s < keyCount; s++)
            {
                double dot = 0, abs = 0;
                for (int d = 0; d < headSize; d++)
                {
                    double term = (double)qkv[t * stride + h * headSize + d] * qkv[s * stride + width + h * headSize + d];
                    dot += term;
                    abs += Math.Abs(term);
                }
                scores[s] = dot * scale;
                maxScoreMagnitude = Math.Max(maxScoreMagnitude, abs * scale);
            }
            double max = scores.Max(), sum = 0;
            for (int s = 0; s < keyCount; s++) sum += scores[s] = Math.Exp(scores[s] - max);
            for (int d = 0; d < headSize; d++)
            {
                double value = 0, abs = 0;
                for (int s = 0; s < keyCount; s++)
                {
                    double v = qkv[s * stride + 2 * width + h * headSize + d];
                    value += scores[s] / sum * v;
                    abs += scores[s] / sum * Math.Abs(v);
                }
                output[t * width + h * headSize + d] = value;
                magnitude[t * width + h * headSize + d] = abs;
                scoreMagnitude[t * width + h * headSize + d] = maxScoreMagnitude;
            }
        }
        return (output, magnitude, scoreMagnitude);
    }
}
