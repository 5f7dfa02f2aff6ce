namespace ManagedClip.Kernels;

/// <summary>LayerNorm over the last dimension: y = (x − mean) / √(var + eps) · γ + β.</summary>
public static class LayerNorm
{
    /// <param name="input">X [rowCount, width]</param>
    /// <param name="gamma">γ [width]</param>
    /// <param name="beta">β [width]</param>
    /// <param name="eps">1e-6 in timm, 1e-12 in BERT</param>
    /// <param name="output">Y [rowCount, width]; may be the same memory as input</param>
    /// <param name="width">Row width.</param>
    public static void Apply(ReadOnlySpan<float> input, ReadOnlySpan<float> gamma, ReadOnlySpan<float> beta, float eps,
        Span<float> output, int width)
    {
        int rows = input.Length / width;
        for (int r = 0; r < rows; r++)
        {
            var x = input.Slice(r * width, width);
            var y = output.Slice(r * width, width);
            double mean = 0;
            for (int i = 0; i < width; i++) mean += x[i];
            mean /= width;
            double var = 0;
            for (int i = 0; i < width; i++) { double d = x[i] - mean; var += d * d; }
            var /= width;
            double inv = 1.0 / Math.Sqrt(var + eps);
            for (int i = 0; i < width; i++) y[i] = (float)((x[i] - mean) * inv) * gamma[i] + beta[i];
        }
    }
}
