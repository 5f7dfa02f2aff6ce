using System.Runtime.Intrinsics;
using ManagedClip.Kernels;
using static ManagedClip.Tests.Kernels.TestValues;

namespace ManagedClip.Tests.Kernels;

public class ActivationTests
{
    // Published values (Abramowitz & Stegun table 7.1, to 16 digits as given by arbitrary-precision tools).
    public static TheoryData<double, double> KnownErfValues() => new()
    {
        { 0.5, 0.5204998778130465 },
        { 1.0, 0.8427007929497149 },
        { 2.0, 0.9953222650189527 },
        { 3.5, 0.9999992569016276 },
    };

    [Theory]
    [MemberData(nameof(KnownErfValues))]
    public void ReferenceErfMatchesPublishedValues(double x, double erf)
    {
        Assert.Equal(erf, KernelReference.Erf(x), 1e-15);
        Assert.Equal(-erf, KernelReference.Erf(-x), 1e-15);
    }

    [Theory]
    [MemberData(nameof(SupportedPaths), MemberType = typeof(TestValues))]
    public void FloatErfIsWithin1Point5eMinus7OnADenseGrid(int path)
    {
        // 2²¹ points over [−6, 6]: both pieces, the switch at 0.8, the clamp at 3.92 and the tails.
        // Measured maximum: 1.2e-7 (about 2 ulps of values near 0.7); the bound leaves a little room for
        // the vector exp, which is allowed to differ from MathF.Exp by an ulp.
        const int count = 1 << 21;
        var x = new float[count];
        for (int i = 0; i < count; i++) x[i] = -6f + 12f * i / count;
        var erf = EvaluateFloatErf(x, (KernelPath)path);
        double worst = 0, worstAt = 0;
        for (int i = 0; i < count; i++)
        {
            double error = Math.Abs(erf[i] - KernelReference.Erf(x[i]));
            if (error > worst) (worst, worstAt) = (error, x[i]);
        }
        Assert.True(worst <= 1.5e-7, $"max |erf error| = {worst:E3} at x = {worstAt}");
    }

    [Fact]
    public void VectorExpIsWithin2UlpsOverTheFloatRange()
    {
        // Relative error against double exp on a dense grid over [−87, 88] (the normal-result range), plus
        // clamping below: exp(−1000) must be tiny and finite (softmax sums it), not garbage.
        double worst = 0, worstAt = 0;
        var x = new float[16];
        for (int block = 0; block < (1 << 20) / 16; block++)
        {
            for (int lane = 0; lane < 16; lane++) x[lane] = -87f + 175f * (block * 16 + lane) / (1 << 20);
            var e512 = FloatExp.Evaluate(Vector512.Create(x));
            var e256 = FloatExp.Evaluate(Vector256.Create(x, 8));
            for (int lane = 0; lane < 16; lane++)
            {
                double expected = Math.Exp(x[lane]);
                double error = Math.Abs(e512[lane] - expected) / expected;
                if (lane >= 8) error = Math.Max(error, Math.Abs(e256[lane - 8] - expected) / expected);
                if (error > worst) (worst, worstAt) = (error, x[lane]);
            }
        }
        Assert.True(worst <= 2 * 2 * FloatUnitRoundoff, $"max relative error {worst:E2} at {worstAt}");
        float tiny = FloatExp.Evaluate(Vector512.Create(-1000f))[0];
        Assert.True(tiny >= 0 && tiny < 1e-37f, $"exp(−1000) = {tiny}");
    }

    [Theory]
    [MemberData(nameof(ReferenceAndSupportedPaths), MemberType = typeof(TestValues))]
    public void GeluMatchesFloat64(int path)
    {
        // |Δ GELU| ≤ |x|/2·|Δ erf| + a few roundings of the result: |x|·1e-7 + 4u·|GELU| + a denormal floor.
        var x = new float[10_007]; // not a multiple of any vector width: the scalar tail runs too
        for (int i = 0; i < x.Length; i++) x[i] = -10f + 20f * i / x.Length;
        var y = (float[])x.Clone();
        Activations.Gelu(y, (KernelPath)path);
        for (int i = 0; i < x.Length; i++)
        {
            double expected = KernelReference.Gelu(x[i]);
            double bound = Math.Abs(x[i]) * 1e-7 + 4 * FloatUnitRoundoff * Math.Abs(expected) + 1e-30;
            Assert.True(Math.Abs(y[i] - expected) <= bound, $"GELU({x[i]}) = {y[i]}, expected {expected}");
            float scalar = Activations.Gelu(x[i]);
            Assert.True(Math.Abs(scalar - expected) <= bound, $"scalar GELU({x[i]}) = {scalar}, expected {expected}");
        }
    }

    [Theory]
    [MemberData(nameof(SupportedPaths), MemberType = typeof(TestValues))]
    public void EveryPathMatchesTheReferenceKernelBitForBit(int path)
    {
        // Vector and scalar GELU evaluate the same float formula (the same fused multiply-adds, a select where the
        // scalar code branches), so every path gives the reference's bits: tolerance 0.
        var x = new float[10_007];
        for (int i = 0; i < x.Length; i++) x[i] = -10f + 20f * i / x.Length;
        var y = (float[])x.Clone();
        var reference = (float[])x.Clone();
        Activations.Gelu(y, (KernelPath)path);
        Activations.Gelu(reference, KernelPath.Reference);
        Assert.Equal(reference, y);
    }

    private static float[] EvaluateFloatErf(float[] x, KernelPath path)
    {
        var result = new float[x.Length];
        int i = 0;
        if (path == KernelPath.Vector512)
            for (; i + 16 <= x.Length; i += 16) FloatErf.Evaluate(Vector512.Create(x, i)).CopyTo(result, i);
        else if (path == KernelPath.Vector256)
            for (; i + 8 <= x.Length; i += 8) FloatErf.Evaluate(Vector256.Create(x, i)).CopyTo(result, i);
        for (; i < x.Length; i++) result[i] = FloatErf.Evaluate(x[i]);
        return result;
    }
}
