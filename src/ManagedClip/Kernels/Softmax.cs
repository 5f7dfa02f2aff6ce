namespace ManagedClip.Kernels;

/// <summary>Numerically stable softmax: subtract the row maximum before exponentiating.</summary>
public static class Softmax
{
    /// <summary>Softmax of one row, in place.</summary>
    public static void Apply(Span<float> row)
    {
        float max = float.NegativeInfinity;
        foreach (var v in row) max = Math.Max(max, v);
        double sum = 0;
        for (int i = 0; i < row.Length; i++) { row[i] = MathF.Exp(row[i] - max); sum += row[i]; }
        float inv = (float)(1.0 / sum);
        for (int i = 0; i < row.Length; i++) row[i] *= inv;
    }
}
