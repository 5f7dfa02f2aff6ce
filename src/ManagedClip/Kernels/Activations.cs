namespace ManagedClip.Kernels;

/// <summary>GELU in its exact erf form, as PyTorch's default nn.GELU and BERT's "gelu".</summary>
public static class Activations
{
    /// <summary>GELU(x) = x/2 · (1 + erf(x/√2)).</summary>
    public static float Gelu(float x) => (float)(0.5 * x * (1.0 + Erf(x * 0.70710678118654752)));

    /// <summary>Applies GELU in place.</summary>
    public static void Gelu(Span<float> values)
    {
        for (int i = 0; i < values.Length; i++) values[i] = Gelu(values[i]);
    }

    /// <summary>erf(x) (placeholder: double via Abramowitz–Stegun 7.1.26 is NOT accurate enough; kernels replace).</summary>
    public static double Erf(double x)
    {
        // High-accuracy series/continued fraction to be provided by the kernels work.
        double t = 1.0 / (1.0 + 0.5 * Math.Abs(x));
        double y = 1 - t * Math.Exp(-x * x - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 +
            t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
        return x >= 0 ? y : -y;
    }
}
