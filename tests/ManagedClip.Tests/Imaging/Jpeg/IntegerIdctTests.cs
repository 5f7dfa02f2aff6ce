using System.Runtime.Intrinsics.X86;
using ManagedClip.Imaging.Jpeg;

namespace ManagedClip.Tests.Imaging.Jpeg;

/// <summary>
/// The integer IDCT: the reference against the definition of the 2-D inverse DCT in float64, and the AVX2 path
/// against the reference, bit for bit, including coefficients at the fast path's limit.
/// </summary>
public class IntegerIdctTests
{
    /// <summary>
    /// T.81 A.3.3: s(y,x) = ¼ Σu Σv C(u) C(v) S(v,u) cos((2x+1)uπ/16) cos((2y+1)vπ/16), C(0) = 1/√2, plus 128.
    /// </summary>
    private static double[] DefinitionIdct(short[] coefficients, int[] quant)
    {
        var samples = new double[64];
        for (int y = 0; y < 8; y++)
        {
            for (int x = 0; x < 8; x++)
            {
                double sum = 0;
                for (int v = 0; v < 8; v++)
                {
                    for (int u = 0; u < 8; u++)
                    {
                        double cu = u == 0 ? Math.Sqrt(0.5) : 1, cv = v == 0 ? Math.Sqrt(0.5) : 1;
                        sum += cu * cv * coefficients[8 * v + u] * quant[8 * v + u]
                            * Math.Cos((2 * x + 1) * u * Math.PI / 16) * Math.Cos((2 * y + 1) * v * Math.PI / 16);
                    }
                }
                samples[8 * y + x] = sum / 4 + 128;
            }
        }
        return samples;
    }

    /// <summary>A block like an encoder writes: a DC term and decaying AC terms, quantised by a JPEG-like table.</summary>
    private static (short[] Coefficients, int[] Quant) RealisticBlock(Random random)
    {
        var coefficients = new short[64];
        var quant = new int[64];
        for (int i = 0; i < 64; i++)
        {
            int u = i % 8, v = i / 8;
            quant[i] = 1 + random.Next(1 + 3 * (u + v));
            double magnitude = i == 0 ? 900 : 300.0 / (1 + u + v);
            coefficients[i] = (short)Math.Round((random.NextDouble() * 2 - 1) * magnitude / quant[i] * (random.Next(3) == 0 ? 0 : 1));
        }
        return (coefficients, quant);
    }

    /// <summary>
    /// jidctint.c meets IEEE 1180 accuracy (peak error at most 1 per sample); after libjpeg's rounding of an exact
    /// value the integer result is the nearest integer or its neighbour, so each sample is within 1 of the
    /// definition (clamped to 0..255 like the range limit) — the bound this test enforces.
    /// </summary>
    [Fact]
    public void ReferenceIsWithinRoundingOfTheDefinition()
    {
        var random = new Random(1234);
        var samples = new int[64];
        double worst = 0;
        for (int trial = 0; trial < 600; trial++)
        {
            var (coefficients, quant) = RealisticBlock(random);
            IntegerIdct.TransformReference(coefficients, quant, 8, samples);
            var exact = DefinitionIdct(coefficients, quant);
            for (int i = 0; i < 64; i++) worst = Math.Max(worst, Math.Abs(samples[i] - Math.Clamp(exact[i], 0, 255)));
        }
        Assert.True(worst <= 1.0, $"max |integer − definition| = {worst}");
    }

    [Fact]
    public void RangeLimitWrapsAsLibjpegsTable()
    {
        // libjpeg's table, indexed by the descaled value & 1023: 0..127 → +128, 128..511 → 255, 512..895 → 0, 896..1023 → −896.
        Assert.Equal(128, IntegerIdct.RangeLimit(0, 8));
        Assert.Equal(255, IntegerIdct.RangeLimit(127, 8));
        Assert.Equal(255, IntegerIdct.RangeLimit(511, 8));
        Assert.Equal(0, IntegerIdct.RangeLimit(512, 8));   // far out of range: wraps to black, not white
        Assert.Equal(0, IntegerIdct.RangeLimit(-129, 8));
        Assert.Equal(0, IntegerIdct.RangeLimit(-128, 8));
        Assert.Equal(127, IntegerIdct.RangeLimit(-1, 8));
        Assert.Equal(128 + 5, IntegerIdct.RangeLimit(1024 + 5, 8));
        Assert.Equal(4095, IntegerIdct.RangeLimit(2047, 12));
        Assert.Equal(0, IntegerIdct.RangeLimit(8192, 12));
    }

    public static TheoryData<string> BlockKinds => new() { "realistic", "dc-only", "sparse", "extreme", "sign-patterns" };

    /// <summary>Every block kind through the AVX2 path and the DC-only shortcut equals the 64-bit reference, byte for byte.</summary>
    [Avx2Theory]
    [MemberData(nameof(BlockKinds))]
    public void FastPathsEqualTheReference(string kind)
    {
        var random = new Random(kind.GetHashCode(StringComparison.Ordinal) & 0xFFFF);
        var samples = new int[64];
        var output = new byte[16 * 8];
        int trials = kind == "sign-patterns" ? 256 * 8 : 3000;
        for (int trial = 0; trial < trials; trial++)
        {
            var (coefficients, quant) = Block(kind, trial, random);
            IntegerIdct.TransformReference(coefficients, quant, 8, samples);
            Array.Fill(output, (byte)0xAA);
            IntegerIdct.Transform8(coefficients, quant, output, 16);
            for (int y = 0; y < 8; y++)
            {
                for (int x = 0; x < 8; x++)
                    Assert.True(samples[8 * y + x] == output[16 * y + x], $"{kind} trial {trial}: sample ({y},{x}) {output[16 * y + x]}, reference {samples[8 * y + x]}");
                for (int x = 8; x < 16; x++) Assert.Equal(0xAA, output[16 * y + x]); // nothing written past the block
            }
        }
    }

    private static (short[] Coefficients, int[] Quant) Block(string kind, int trial, Random random)
    {
        var coefficients = new short[64];
        var quant = new int[64];
        switch (kind)
        {
            case "realistic":
                return RealisticBlock(random);
            case "dc-only":
                Array.Fill(quant, 1);
                quant[0] = random.Next(1, 256);
                coefficients[0] = (short)random.Next(short.MinValue, short.MaxValue + 1);
                return (coefficients, quant);
            case "sparse":
                for (int i = 0; i < 64; i++) quant[i] = random.Next(1, 100);
                for (int n = random.Next(1, 4); n > 0; n--) coefficients[random.Next(64)] = (short)random.Next(-300, 301);
                return (coefficients, quant);
            case "extreme":
                // Dequantised values up to the fast path's limit (and beyond it: the reference is used then).
                for (int i = 0; i < 64; i++)
                {
                    quant[i] = 1;
                    coefficients[i] = (short)(random.Next(2) == 0 ? random.Next(-IntegerIdct.FastPathLimit, IntegerIdct.FastPathLimit + 1) : random.Next(2) * 2 - 1);
                }
                if (trial % 5 == 0) quant[random.Next(64)] = 2; // one coefficient past the limit
                return (coefficients, quant);
            default:
                // The worst cases of the linear flowgraph: one column (or row) of ±limit with every sign pattern.
                Array.Fill(quant, 1);
                int pattern = trial % 256, line = trial / 256;
                for (int i = 0; i < 8; i++)
                {
                    short value = (short)((pattern >> i & 1) != 0 ? IntegerIdct.FastPathLimit : -IntegerIdct.FastPathLimit);
                    if (line < 4) coefficients[8 * i + line] = value; // column `line`
                    else coefficients[8 * (line - 4) + i] = value;   // row `line − 4`
                }
                return (coefficients, quant);
        }
    }
}

/// <summary>A theory that needs AVX2 (the vector paths): reported as skipped, with the reason, on other machines.</summary>
public sealed class Avx2TheoryAttribute : TheoryAttribute
{
    public Avx2TheoryAttribute()
    {
        if (!Avx2.IsSupported) Skip = "this machine has no AVX2: the vector path under test does not run here";
    }
}
