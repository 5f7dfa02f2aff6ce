using ManagedClip.Kernels;
using static ManagedClip.Tests.Kernels.TestValues;

namespace ManagedClip.Tests.Kernels;

public class LayerNormTests
{
    public static TheoryData<int, int, float> Cases()
    {
        var data = new TheoryData<int, int, float>();
        foreach (var path in ReferenceAndSupported())
        {
            foreach (int width in new[] { 1, 3, 7, 16, 17, 768, 3072 }) data.Add((int)path, width, 1e-6f);
            data.Add((int)path, 768, 1e-12f);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void MatchesFloat64EvenWithALargeCommonOffset(int path, int width, float eps)
    {
        var (x, gamma, beta) = Inputs(width);
        var y = new float[x.Length];
        LayerNorm.Apply(x, gamma, beta, eps, y, width, (KernelPath)path);

        AssertWithinBound(x, gamma, beta, eps, width, y, expected: null, factor: 1);
    }

    [Theory]
    [MemberData(nameof(FastCases))]
    public void EveryPathMatchesTheReferenceKernel(int path, int width, float eps)
    {
        // Both are within the float64 bound below of the exact result, so within twice it of each other.
        var (x, gamma, beta) = Inputs(width);
        var y = new float[x.Length];
        var reference = new float[x.Length];
        LayerNorm.Apply(x, gamma, beta, eps, y, width, (KernelPath)path);
        LayerNorm.Apply(x, gamma, beta, eps, reference, width, KernelPath.Reference);
        AssertWithinBound(x, gamma, beta, eps, width, y, reference, factor: 2);
    }

    public static TheoryData<int, int, float> FastCases()
    {
        var data = new TheoryData<int, int, float>();
        foreach (object[] row in Cases())
            if ((int)row[0] != (int)KernelPath.Reference) data.Add((int)row[0], (int)row[1], (float)row[2]);
        return data;
    }

    private const int Rows = 5;

    private static (float[] X, float[] Gamma, float[] Beta) Inputs(int width)
    {
        // Rows 0–2 centred, rows 3–4 offset by 300 (so E[x²] − mean² in float would lose every digit).
        var x = new float[Rows * width];
        for (int r = 0; r < Rows; r++)
            Random(width, seed: 20 + r, scale: 2, offset: r >= 3 ? 300 : 0).CopyTo(x, r * width);
        return (x, Random(width, seed: 30, scale: 1.5f), Random(width, seed: 31));
    }

    /// <summary>
    /// |y − expected| within <paramref name="factor"/> × the corrected two-pass error bound, row by row; expected is the
    /// float64 LayerNorm unless given.
    /// </summary>
    private static void AssertWithinBound(float[] x, float[] gamma, float[] beta, float eps, int width, float[] y, float[]? expected,
        double factor)
    {
        for (int r = 0; r < x.Length / width; r++)
        {
            var row = x.AsSpan(r * width, width);
            var (exact, mean, deviation) = KernelReference.LayerNorm(row, gamma, beta, eps);
            for (int i = 0; i < width; i++)
            {
                // Corrected two-pass error: the mean is off by ≲ u·|mean| + (width + 4)·u·σ-scale terms, the variance by
                // ≲ (width + 4)·u relative; normalised values z then carry ≲ u·(|mean|/σ + (width + 8)(1 + |z|)).
                double z = (exact[i] - beta[i]) / gamma[i];
                double bound = Math.Abs(gamma[i]) * FloatUnitRoundoff * (4 * Math.Abs(mean) / deviation + (width + 8) * (1 + Math.Abs(z)))
                    + 2 * FloatUnitRoundoff * Math.Abs(exact[i]) + FloatUnitRoundoff * Math.Abs(beta[i]);
                double target = expected?[r * width + i] ?? exact[i];
                Assert.True(Math.Abs(y[r * width + i] - target) <= factor * bound,
                    $"row {r} element {i}: {y[r * width + i]} vs {target} (bound {factor * bound:E2})");
            }
        }
    }

    [Theory]
    [MemberData(nameof(ReferenceAndSupportedPaths), MemberType = typeof(TestValues))]
    public void ConstantRowGivesBetaEvenWithBertsTinyEps(int path)
    {
        // var = 0 and eps = 1e-12 make 1/√(var + eps) = 1e6: any rounding left in x − mean would show up a
        // million-fold. The corrected mean is exact here, so the output is β exactly.
        const int width = 768;
        var x = Enumerable.Repeat(0.1f, width).ToArray();
        var gamma = Random(width, seed: 32);
        var beta = Random(width, seed: 33);
        LayerNorm.Apply(x, gamma, beta, 1e-12f, x, width, (KernelPath)path); // in place
        Assert.Equal(beta, x);
    }

    [Theory]
    [InlineData(197, 768)] // one image's tokens: above the size where rows are split across workers
    [InlineData(87, 771)]  // rows that do not split evenly (67 077 values: also split)
    public void RowsSplitAcrossWorkersGiveTheSameBitsAsOneByOne(int rows, int width)
    {
        var x = Random(rows * width, seed: 31, scale: 3);
        var gamma = Random(width, seed: 32);
        var beta = Random(width, seed: 33);
        var oneByOne = new float[x.Length];
        for (int r = 0; r < rows; r++) // a single row is far below the parallel threshold
            LayerNorm.Apply(x.AsSpan(r * width, width), gamma, beta, 1e-6f, oneByOne.AsSpan(r * width, width), width);

        var whole = new float[x.Length];
        LayerNorm.Apply(x, gamma, beta, 1e-6f, whole, width);
        Assert.Equal(oneByOne, whole);
        LayerNorm.Apply(x, gamma, beta, 1e-6f, x, width); // in place
        Assert.Equal(oneByOne, x);
    }

    [Fact]
    public void BadArgumentsAreRejected()
    {
        var gamma = new float[4];
        Assert.Throws<ArgumentException>(() => LayerNorm.Apply(new float[7], gamma, gamma, 1e-6f, new float[7], 4));
        Assert.Throws<ArgumentException>(() => LayerNorm.Apply(new float[8], new float[3], gamma, 1e-6f, new float[8], 4));
        Assert.Throws<ArgumentException>(() => LayerNorm.Apply(new float[8], gamma, gamma, 1e-6f, new float[4], 4));
        var shared = new float[12];
        Assert.Throws<ArgumentException>(() => LayerNorm.Apply(shared.AsSpan(0, 8), gamma, gamma, 1e-6f, shared.AsSpan(4, 8), 4));
    }
}
