using System.Runtime.Intrinsics.X86;
using ManagedClip.Kernels;
using static ManagedClip.Tests.Kernels.TestValues;

namespace ManagedClip.Tests.Kernels;

/// <summary>The bf16 and int8 GEMMs (<see cref="ClipPrecision"/>) against float64 and against their reference loops.</summary>
public class LowPrecisionGemmTests
{
    // (M, N, K): one row, a partial strip, many rows; N and K off every panel width, K odd, K below one int8 group,
    // K past a k-block (256); the model's 197 × 768.
    public static readonly (int M, int N, int K)[] AwkwardShapes =
        [(1, 1, 1), (1, 17, 3), (5, 33, 7), (19, 70, 257), (7, 16, 300), (197, 40, 768), (64, 129, 65)];

    [Theory]
    [InlineData(1.0f, (ushort)0x3F80)]
    [InlineData(-2.0f, (ushort)0xC000)]
    [InlineData(0.0f, (ushort)0x0000)]
    public void BFloat16KeepsValuesItCanHold(float value, ushort expected) => Assert.Equal(expected, Quantization.ToBFloat16(value));

    [Fact]
    public void BFloat16RoundsToNearestEven()
    {
        // 1 + 2⁻⁸ lies halfway between bf16 1 (0x3F80, even) and 1 + 2⁻⁷ (0x3F81): the tie goes to the even one.
        Assert.Equal((ushort)0x3F80, Quantization.ToBFloat16(BitConverter.UInt32BitsToSingle(0x3F80_8000)));
        // 1 + 3·2⁻⁸ lies halfway between 0x3F81 (odd) and 0x3F82 (even).
        Assert.Equal((ushort)0x3F82, Quantization.ToBFloat16(BitConverter.UInt32BitsToSingle(0x3F81_8000)));
        // Just above half rounds up; just below rounds down.
        Assert.Equal((ushort)0x3F81, Quantization.ToBFloat16(BitConverter.UInt32BitsToSingle(0x3F80_8001)));
        Assert.Equal((ushort)0x3F80, Quantization.ToBFloat16(BitConverter.UInt32BitsToSingle(0x3F80_7FFF)));
        // The largest float rounds past bf16's largest finite value to infinity, as IEEE rounding does.
        Assert.Equal((ushort)0x7F80, Quantization.ToBFloat16(float.MaxValue));
        Assert.True(float.IsNaN(Quantization.FromBFloat16(Quantization.ToBFloat16(float.NaN))));
        Assert.Equal(float.NegativeInfinity, Quantization.FromBFloat16(Quantization.ToBFloat16(float.NegativeInfinity)));
    }

    public static TheoryData<int, int> PathsAndShapes()
    {
        var data = new TheoryData<int, int>();
        foreach (var path in ReferenceAndSupported())
            for (int shape = 0; shape < AwkwardShapes.Length; shape++)
                data.Add((int)path, shape);
        return data;
    }

    [Theory]
    [MemberData(nameof(PathsAndShapes))]
    public void BFloat16GemmMatchesFloat64OnTheRoundedWeights(int path, int shape)
    {
        var (m, n, k) = AwkwardShapes[shape];
        var x = Random(m * k, seed: 11);
        var w = Random(n * k, seed: 12);
        var bias = Random(n, seed: 13);
        var weight = Packed(w, n, k, PanelElement.BFloat16);
        // The reference gets the weights as bf16 holds them, so what remains is float32 accumulation error.
        var rounded = w.Select(v => Quantization.FromBFloat16(Quantization.ToBFloat16(v))).ToArray();
        for (int i = 0; i < w.Length; i++) Assert.Equal(rounded[i], weight.Element(i / k, i % k));

        foreach (var epilogue in new[] { GemmEpilogue.Store, GemmEpilogue.StoreGelu, GemmEpilogue.AddToOutput })
        {
            var residual = Random(m * n, seed: 14, scale: 3);
            var y = epilogue == GemmEpilogue.AddToOutput ? (float[])residual.Clone() : new float[m * n];
            Gemm.Multiply(x, m, weight, bias, y, epilogue, (KernelPath)path);
            var (product, magnitude) = KernelReference.Gemm(x, m, rounded, n, k, bias);
            for (int i = 0; i < y.Length; i++)
            {
                // Float32 dot product: ≤ (k + 2)·u·Σ|x·w| (u = 2⁻²⁴); the residual add one more rounding; GELU's slope
                // ≤ 1.13 carries that through, plus the float erf's 1e-7 relative error and a few final roundings.
                double z = product[i], bound = (k + 3) * FloatUnitRoundoff * (magnitude[i] + Math.Abs(residual[i])) + 1e-30;
                double expected = epilogue switch
                {
                    GemmEpilogue.StoreGelu => KernelReference.Gelu(z),
                    GemmEpilogue.AddToOutput => z + residual[i],
                    _ => z,
                };
                if (epilogue == GemmEpilogue.StoreGelu) bound = 1.13 * bound + 1e-7 * Math.Abs(z) + 4 * FloatUnitRoundoff * Math.Abs(z);
                Assert.True(Math.Abs(y[i] - expected) <= bound,
                    $"{(KernelPath)path} {epilogue} ({m}, {n}, {k}) element {i}: {y[i]} vs {expected} (bound {bound:E2})");
            }
        }
    }

    [Theory]
    [InlineData(Quantization.WeightLevels)]
    [InlineData(Quantization.SevenBitWeightLevels)] // the vpmaddubsw kernel's weights
    public void Int8WeightsAreWithinHalfAStepOfTheirChannelScale(int levels)
    {
        const int n = 37, k = 29;
        var w = Random(n * k, seed: 21);
        for (int j = 0; j < k; j++) w[5 * k + j] = 0; // an all-zero channel
        var weight = Packed(w, n, k, PanelElement.Int8, levels);
        for (int row = 0; row < n; row++)
        {
            double largest = Enumerable.Range(0, k).Max(j => Math.Abs(w[row * k + j]));
            Assert.Equal(largest > 0 ? largest / levels : 1, weight.ChannelScales[row], 1e-6);
            int sum = 0;
            for (int j = 0; j < k; j++)
            {
                int q = weight.QuantizedElement(row, j);
                Assert.InRange(q, -levels, levels);
                sum += q;
                // Rounding to the nearest step: at most half a step off (plus float32 rounding of the product).
                Assert.True(Math.Abs(weight.Element(row, j) - w[row * k + j]) <= weight.ChannelScales[row] * (0.5 + 1e-5),
                    $"W[{row}, {j}] = {w[row * k + j]} became {weight.Element(row, j)}");
            }
            Assert.Equal(sum, weight.ChannelSums[row]);
        }
    }

    public static TheoryData<int, int> Int8KernelsAndShapes()
    {
        var data = new TheoryData<int, int>();
        // Only the kernels this CPU runs (AVX-VNNI's absence is reported by Int8AvxVnniKernelRunsWhereTheCpuHasIt's skip).
        foreach (var kernel in Enum.GetValues<Int8Kernel>().Where(GemmInt8.IsSupported))
            for (int shape = 0; shape < AwkwardShapes.Length; shape++)
                data.Add((int)kernel, shape);
        return data;
    }

    [Theory]
    [MemberData(nameof(Int8KernelsAndShapes))]
    public void Int8KernelsMatchTheInt64Reference(int kernelIndex, int shape)
    {
        var kernel = (Int8Kernel)kernelIndex;
        var (m, n, k) = AwkwardShapes[shape];
        var x = Random(m * k, seed: 31, scale: 2, offset: 0.3f); // not centred on 0: a zero point other than 128
        var w = Random(n * k, seed: 32);
        var bias = Random(n, seed: 33);
        var weight = Packed(w, n, k, PanelElement.Int8, GemmInt8.WeightLevelsFor(kernel)); // 7 bits for vpmaddubsw, else 8
        foreach (var epilogue in new[] { GemmEpilogue.Store, GemmEpilogue.StoreGelu, GemmEpilogue.AddToOutput })
        {
            var residual = Random(m * n, seed: 34, scale: 3);
            var expected = epilogue == GemmEpilogue.AddToOutput ? (float[])residual.Clone() : new float[m * n];
            var actual = (float[])expected.Clone();
            Gemm.MultiplyLowPrecision(x, m, weight, bias, expected, epilogue, KernelPath.Reference, kernel);
            Gemm.MultiplyLowPrecision(x, m, weight, bias, actual, epilogue, KernelPath.Vector256, kernel);
            for (int i = 0; i < actual.Length; i++)
            {
                // The integer sums are the same exactly; the kernels then round them to float32 (≤ u relative), multiply
                // by sx·sw (two roundings) and add the bias and the residual (one rounding each), where the reference
                // rounds once from float64: ≤ 6u of the magnitudes involved; GELU adds its slope and the erf's 1e-7.
                double magnitude = Math.Abs(expected[i]) + Math.Abs(bias[i % n]) + Math.Abs(residual[i]) + 1e-30;
                double bound = 6 * FloatUnitRoundoff * magnitude;
                if (epilogue == GemmEpilogue.StoreGelu) bound = 1.13 * bound + 2e-7 * magnitude;
                Assert.True(Math.Abs(actual[i] - expected[i]) <= bound,
                    $"{kernel} {epilogue} ({m}, {n}, {k}) element {i}: {actual[i]} vs reference {expected[i]} (bound {bound:E2})");
            }
        }
    }

    [Fact]
    public void Int8KernelsAgreeBitForBitWithEachOther()
    {
        // The sums are integers and the epilogue is shared, so the kernels must not differ at all.
        const int m = 23, k = 131;
        AssertInt8KernelsAgree(Random(m * k, seed: 41), m, k, seed: 42);
    }

    /// <summary>
    /// Every int8 kernel this CPU runs gives the scalar kernel's bits for X [m, k] against a seeded [50, k] weight of
    /// 7-bit values (every kernel takes 7 bits), with bias and GELU.
    /// </summary>
    internal static void AssertInt8KernelsAgree(float[] x, int m, int k, int seed)
    {
        const int n = 50;
        var weight = Packed(Random(n * k, seed), n, k, PanelElement.Int8, Quantization.SevenBitWeightLevels);
        var bias = Random(n, seed + 1);
        var scalar = new float[m * n];
        Gemm.MultiplyLowPrecision(x, m, weight, bias, scalar, GemmEpilogue.StoreGelu, KernelPath.Vector256, Int8Kernel.Scalar);
        foreach (var kernel in Enum.GetValues<Int8Kernel>().Where(GemmInt8.IsSupported))
        {
            var y = new float[m * n];
            Gemm.MultiplyLowPrecision(x, m, weight, bias, y, GemmEpilogue.StoreGelu, KernelPath.Vector256, kernel);
            Assert.Equal(scalar, y);
        }
    }

    [Fact]
    public void Int8ReferenceIsWithinTheQuantizationBoundOfTheExactProduct()
    {
        // Independent of our quantizer: |x·w − x̂·ŵ| ≤ Σ|x|·sw/2 + Σ|ŵ|·sx/2 for x̂ = x ± sx/2 and ŵ = w ± sw/2
        // (sx = range/255, sw = max|w|/127, or /63 where weights are 7-bit), plus float32 rounding of the epilogue.
        foreach (var (m, n, k) in AwkwardShapes)
        {
            var x = Random(m * k, seed: 51, scale: 1.5f, offset: -0.2f);
            var w = Random(n * k, seed: 52);
            var weight = Packed(w, n, k, PanelElement.Int8);
            var y = new float[m * n];
            Gemm.MultiplyLowPrecision(x, m, weight, [], y, GemmEpilogue.Store, KernelPath.Reference, Int8Kernel.Scalar);
            var (exact, _) = KernelReference.Gemm(x, m, w, n, k, []);
            for (int row = 0; row < m; row++)
            {
                var input = x.AsSpan(row * k, k);
                double min = Math.Min(0, input.ToArray().Min()), max = Math.Max(0, input.ToArray().Max());
                double sx = (max - min) / 255, sumAbsX = input.ToArray().Sum(v => Math.Abs((double)v));
                for (int col = 0; col < n; col++)
                {
                    double sw = weight.ChannelScales[col];
                    double sumAbsW = Enumerable.Range(0, k).Sum(j => Math.Abs((double)weight.Element(col, j)));
                    double bound = sumAbsX * sw / 2 * (1 + 1e-5) + sumAbsW * sx / 2 * (1 + 1e-5) + 1e-6 * Math.Abs(exact[row * n + col]) + 1e-12;
                    Assert.True(Math.Abs(y[row * n + col] - exact[row * n + col]) <= bound,
                        $"({m}, {n}, {k}) [{row}, {col}]: {y[row * n + col]} vs exact {exact[row * n + col]} (bound {bound:E2})");
                }
            }
        }
    }

    [Fact]
    public void Int8RowWithNaNGivesNaNNotGarbage()
    {
        const int n = 20, k = 9;
        var x = Random(2 * k, seed: 61);
        x[3] = float.NaN;
        var weight = Packed(Random(n * k, seed: 62), n, k, PanelElement.Int8);
        var y = new float[2 * n];
        Gemm.Multiply(x, 2, weight, [], y);
        Assert.All(y.Take(n), v => Assert.True(float.IsNaN(v)));
        Assert.All(y.Skip(n), v => Assert.True(float.IsFinite(v)));
    }

    [Fact]
    public void Int8BytesKernelIsExactAtTheWorstCaseOfItsInt16Pairs()
    {
        // vpmaddubsw saturates a pair at 32 767. Activations all at 255 (a row from 0 to its max) against weights all at
        // ±63 make every pair 2·255·63 = 32 130: the largest the 7-bit range allows. The sums must still be exact.
        if (!GemmInt8.IsSupported(Int8Kernel.Avx2Bytes)) return; // no AVX2: nothing to check (the scalar kernel is exact)
        const int m = 7, n = 19, k = 64;
        var x = new float[m * k];
        for (int i = 0; i < x.Length; i++) x[i] = i % k == 0 ? 0 : 5f; // q = 255 everywhere but one 0 per row
        var w = new float[n * k];
        for (int i = 0; i < w.Length; i++) w[i] = i / k % 2 == 0 ? 1f : -1f; // q = ±63, whole rows of one sign
        var weight = Packed(w, n, k, PanelElement.Int8, Quantization.SevenBitWeightLevels);
        var expected = new float[m * n];
        var actual = new float[m * n];
        Gemm.MultiplyLowPrecision(x, m, weight, [], expected, GemmEpilogue.Store, KernelPath.Reference, Int8Kernel.Scalar);
        Gemm.MultiplyLowPrecision(x, m, weight, [], actual, GemmEpilogue.Store, KernelPath.Vector256, Int8Kernel.Avx2Bytes);
        // Exact integer sums, then the same epilogue up to float32 rounding: 4u of |y| (see the reference test above).
        for (int i = 0; i < actual.Length; i++)
            Assert.True(Math.Abs(actual[i] - expected[i]) <= 4 * FloatUnitRoundoff * Math.Abs(expected[i]),
                $"element {i}: {actual[i]} vs reference {expected[i]}");
        Assert.Equal(5f * (k - 1), Math.Abs(actual[0]), 5f * (k - 1) * 1e-2f); // and it is the product (x·w, 1% quantization)
    }

    [Fact]
    public void Int8BytesKernelRefusesEightBitWeights()
    {
        if (!GemmInt8.IsSupported(Int8Kernel.Avx2Bytes)) return; // no AVX2: the kernel cannot be asked for
        var weight = Packed(Random(16 * 8, seed: 81), 16, 8, PanelElement.Int8, Quantization.WeightLevels);
        var y = new float[16];
        var error = Assert.Throws<InvalidOperationException>(() =>
            Gemm.MultiplyLowPrecision(Random(8, seed: 82), 1, weight, [], y, GemmEpilogue.Store, KernelPath.Vector256, Int8Kernel.Avx2Bytes));
        Assert.Contains("63", error.Message);
    }

    [Fact]
    public void WeightsAreEightBitByDefaultAndSevenBitOnesGetTheBytesKernel()
    {
        var weight = Packed(Random(16 * 8, seed: 83), 16, 8, PanelElement.Int8);
        Assert.Equal(127, weight.Int8Levels); // 7 bits cost a zero-shot top-1 on the synthetic model: opt-in only
        Assert.NotEqual(Int8Kernel.Avx2Bytes, GemmInt8.KernelFor(KernelPaths.Best, weight.Int8Levels));
        var sevenBit = Packed(Random(16 * 8, seed: 83), 16, 8, PanelElement.Int8, Quantization.SevenBitWeightLevels);
        var expected = AvxVnni.IsSupported ? Int8Kernel.AvxVnni : Avx2.IsSupported ? Int8Kernel.Avx2Bytes : Int8Kernel.Scalar;
        if (KernelPaths.Best is KernelPath.Vector256 or KernelPath.Vector512)
            Assert.Equal(expected, GemmInt8.KernelFor(KernelPaths.Best, sevenBit.Int8Levels));
    }

    [SkippableInt8Fact]
    public void Int8AvxVnniKernelRunsWhereTheCpuHasIt()
    {
        const int m = 13, n = 40, k = 100;
        var x = Random(m * k, seed: 71);
        var weight = Packed(Random(n * k, seed: 72), n, k, PanelElement.Int8);
        var reference = new float[m * n];
        var vnni = new float[m * n];
        Gemm.MultiplyLowPrecision(x, m, weight, [], reference, GemmEpilogue.Store, KernelPath.Vector256, Int8Kernel.Scalar);
        Gemm.MultiplyLowPrecision(x, m, weight, [], vnni, GemmEpilogue.Store, KernelPath.Vector256, Int8Kernel.AvxVnni);
        Assert.Equal(reference, vnni);
    }

    internal static WeightMatrix Packed(float[] w, int n, int k, PanelElement element, int int8Levels = 0) =>
        WeightMatrix.Packed(n, k, rowMajor => w.CopyTo(rowMajor), element, int8Levels);
}

/// <summary>A fact that needs AVX-VNNI: reported as skipped, with the reason, on CPUs without it.</summary>
public sealed class SkippableInt8FactAttribute : FactAttribute
{
    public SkippableInt8FactAttribute()
    {
        if (!AvxVnni.IsSupported)
            Skip = "this CPU has no AVX-VNNI: the vpdpbusd int8 kernel cannot run here (the AVX2 and scalar int8 kernels are tested instead)";
    }
}
