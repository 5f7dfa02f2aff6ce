using ManagedClip.Kernels;
using static ManagedClip.Tests.Kernels.TestValues;

namespace ManagedClip.Tests.Kernels;

/// <summary>
/// The int8 GEMM's outlier decomposition (<see cref="Int8Outliers"/>): activation values far above the rest of their
/// row are computed in float32 instead of setting the row's uint8 step.
/// </summary>
public class Int8OutlierTests
{
    /// <summary>
    /// X [m, k] uniform in [−1, 1) with outliers planted: in every third row 1 to 3 values of ±20…40, in row 1 (if
    /// there is one) more than the limit takes, so the cap is exercised too.
    /// </summary>
    private static float[] WithOutliers(int m, int k, int seed)
    {
        var x = Random(m * k, seed);
        var random = new Random(seed + 1);
        for (int row = 0; row < m; row += 3)
            for (int i = 0, count = 1 + row % 3; i < count; i++)
                x[row * k + random.Next(k)] = (random.Next(2) * 2 - 1) * (20 + 20 * random.NextSingle());
        if (m > 1 && k >= 8)
            for (int i = 0; i < Int8Outliers.For(k).Limit + 3; i++)
                x[k + random.Next(k)] = 10 + i;
        return x;
    }

    public static TheoryData<int, int> KernelsAndShapes()
    {
        var data = new TheoryData<int, int>();
        foreach (var kernel in Enum.GetValues<Int8Kernel>().Where(GemmInt8.IsSupported))
            for (int shape = 0; shape < LowPrecisionGemmTests.AwkwardShapes.Length; shape++)
                data.Add((int)kernel, shape);
        return data;
    }

    [Theory]
    [MemberData(nameof(KernelsAndShapes))]
    public void KernelsMatchTheDefinitionWithOutliers(int kernelIndex, int shape)
    {
        var kernel = (Int8Kernel)kernelIndex;
        var (m, n, k) = LowPrecisionGemmTests.AwkwardShapes[shape];
        var x = WithOutliers(m, k, seed: 91);
        var bias = Random(n, seed: 93);
        var weight = LowPrecisionGemmTests.Packed(Random(n * k, seed: 92), n, k, PanelElement.Int8, GemmInt8.WeightLevelsFor(kernel));
        foreach (var epilogue in new[] { GemmEpilogue.Store, GemmEpilogue.StoreGelu, GemmEpilogue.AddToOutput })
        {
            var residual = Random(m * n, seed: 94, scale: 3);
            var expected = epilogue == GemmEpilogue.AddToOutput ? (float[])residual.Clone() : new float[m * n];
            var actual = (float[])expected.Clone();
            Gemm.MultiplyLowPrecision(x, m, weight, bias, expected, epilogue, KernelPath.Reference, kernel);
            Gemm.MultiplyLowPrecision(x, m, weight, bias, actual, epilogue, KernelPath.Vector256, kernel);
            for (int row = 0; row < m; row++)
                for (int col = 0; col < n; col++)
                {
                    int i = row * n + col;
                    // The integer part as in LowPrecisionGemmTests (≤ 6u of the magnitudes); the float32 outlier sum is
                    // a chain of at most Limit FMAs, then ·sw and an add: ≤ (Limit + 2)·u·Σₖ|x[k]·W[n, k]|, k over
                    // the whole row (a superset of the outliers).
                    double rowMagnitude = 0;
                    for (int j = 0; j < k; j++) rowMagnitude += Math.Abs((double)x[row * k + j] * weight.Element(col, j));
                    double magnitude = Math.Abs(expected[i]) + Math.Abs(bias[col]) + Math.Abs(residual[i]) + 1e-30;
                    double bound = 6 * FloatUnitRoundoff * magnitude + (weight.Int8Outliers.Limit + 2) * FloatUnitRoundoff * rowMagnitude;
                    if (epilogue == GemmEpilogue.StoreGelu) bound = 1.13 * bound + 2e-7 * magnitude;
                    Assert.True(Math.Abs(actual[i] - expected[i]) <= bound,
                        $"{kernel} {epilogue} ({m}, {n}, {k}) [{row}, {col}]: {actual[i]} vs reference {expected[i]} (bound {bound:E2})");
                }
        }
    }

    [Fact]
    public void KernelsAgreeBitForBitWithOutliers()
    {
        const int m = 23, k = 131;
        LowPrecisionGemmTests.AssertInt8KernelsAgree(WithOutliers(m, k, seed: 101), m, k, seed: 102);
    }

    [Fact]
    public void ARowGivesTheSameBitsAloneAndInABatch()
    {
        // The rule looks at one row, so which channels the other rows take out must not change this row's result.
        const int m = 40, n = 70, k = 300;
        var x = WithOutliers(m, k, seed: 111);
        var weight = LowPrecisionGemmTests.Packed(Random(n * k, seed: 112), n, k, PanelElement.Int8);
        var batch = new float[m * n];
        Gemm.Multiply(x, m, weight, [], batch);
        for (int row = 0; row < m; row += 7)
        {
            var alone = new float[n];
            Gemm.Multiply(x.AsSpan(row * k, k), 1, weight, [], alone);
            Assert.Equal(batch.AsSpan(row * n, n).ToArray(), alone);
        }
    }

    [Fact]
    public void RowsWithoutOutliersKeepTheirPlainInt8Result()
    {
        // Uniform rows have no value beyond 4× their RMS (√3 at most): the product is the one without the rule, bit for bit.
        const int m = 13, n = 33, k = 200;
        var x = Random(m * k, seed: 121);
        var w = Random(n * k, seed: 122);
        var withRule = LowPrecisionGemmTests.Packed(w, n, k, PanelElement.Int8);
        var without = WeightMatrix.Packed(n, k, rowMajor => w.CopyTo(rowMajor), PanelElement.Int8, int8Outliers: new Int8Outliers(0, 0));
        var a = new float[m * n];
        var b = new float[m * n];
        Gemm.Multiply(x, m, withRule, [], a);
        Gemm.Multiply(x, m, without, [], b);
        Assert.Equal(b, a);
    }

    [Fact]
    public void TurningTheRuleOffOnAPackedWeightIsThePlainScheme()
    {
        // WithInt8Outliers (what ClipModelOptions.Int8OutlierDecomposition = false applies to every int8 weight) must
        // give the bits of a weight packed without the rule, and differ from the rule's on rows that have outliers.
        const int m = 17, n = 40, k = 256;
        var x = WithOutliers(m, k, seed: 151);
        var w = Random(n * k, seed: 152);
        var withRule = LowPrecisionGemmTests.Packed(w, n, k, PanelElement.Int8);
        var packedPlain = WeightMatrix.Packed(n, k, rowMajor => w.CopyTo(rowMajor), PanelElement.Int8, int8Outliers: new Int8Outliers(0, 0));
        var turnedOff = withRule.WithInt8Outliers(new Int8Outliers(0, 0));
        float[] Product(WeightMatrix weight)
        {
            var y = new float[m * n];
            Gemm.Multiply(x, m, weight, [], y);
            return y;
        }
        Assert.Equal(Product(packedPlain), Product(turnedOff));
        Assert.NotEqual(Product(withRule), Product(turnedOff));
        Assert.Equal(Product(withRule), Product(LowPrecisionGemmTests.Packed(w, n, k, PanelElement.Int8))); // the original is untouched
    }

    [Fact]
    public void AnOutlierChannelNoLongerCostsTheRowItsPrecision()
    {
        // Activations as a trained BERT's LayerNorm output has them: every row of unit scale, and one channel (k = 99)
        // 30× the rest in every row; the weights that read it are small in proportion (as trained weights are: the
        // channel does not drown the others' sum). One uint8 scale per row is then set by that channel (step ≈ 60/255),
        // so the rest of the row is coarse; taking it out restores a step of ≈ 2/255. Both are computed here against
        // float64, per row: the plain scheme must miss 0.999 (else this test shows nothing) and the decomposition must
        // reach it.
        const int m = 32, n = 256, k = 768, outlier = 99;
        var x = Random(m * k, seed: 131);
        for (int row = 0; row < m; row++) x[row * k + outlier] = 30 * (row % 2 == 0 ? 1 : -1);
        var w = Random(n * k, seed: 132);
        for (int col = 0; col < n; col++) w[col * k + outlier] /= 30;
        var (exact, _) = KernelReference.Gemm(x, m, w, n, k, []);
        var decomposed = LowPrecisionGemmTests.Packed(w, n, k, PanelElement.Int8);
        var plain = WeightMatrix.Packed(n, k, rowMajor => w.CopyTo(rowMajor), PanelElement.Int8, int8Outliers: new Int8Outliers(0, 0));
        double MinimumRowCosine(WeightMatrix weight)
        {
            var y = new float[m * n];
            Gemm.Multiply(x, m, weight, [], y);
            return Enumerable.Range(0, m).Min(row => Cosine(exact.AsSpan(row * n, n), y.AsSpan(row * n, n)));
        }
        double plainCosine = MinimumRowCosine(plain), decomposedCosine = MinimumRowCosine(decomposed);
        Assert.True(plainCosine < 0.999, $"one scale per row kept cosine {plainCosine:F6}: the planted outlier does not hurt, so this test checks nothing");
        Assert.True(decomposedCosine >= 0.999, $"with the outlier computed apart: cosine {decomposedCosine:F6} < 0.999 (plain: {plainCosine:F6})");
    }

    /// <summary>
    /// Rows the outlier selection and the quantizer must survive, each beside ordinary rows: NaN, +∞ and −∞ (alone, at
    /// the vector tail, and in a row that also has outliers), all zeros, one value repeated (positive, negative), and a
    /// finite value so large its row's sum of squares overflows float32. Returns X [rows.Length, k].
    /// </summary>
    private static (float[] X, string[] Rows) HostileRows(int k)
    {
        var rows = new List<(string Name, float[] Values)>();
        float[] Ordinary(int seed) => Random(k, seed);
        float[] With(float[] row, params (int Column, float Value)[] changes)
        {
            foreach (var (column, value) in changes) row[column] = value;
            return row;
        }
        rows.Add(("ordinary", Ordinary(141)));
        rows.Add(("NaN", With(Ordinary(142), (k / 2, float.NaN))));
        rows.Add(("+∞", With(Ordinary(143), (0, float.PositiveInfinity))));
        rows.Add(("−∞ at the last column", With(Ordinary(144), (k - 1, float.NegativeInfinity))));
        rows.Add(("outliers and a NaN", With(Ordinary(145), (1 % k, 40), (k / 3, -35), (k - 1, float.NaN))));
        rows.Add(("all zeros", new float[k]));
        rows.Add(("0.7 repeated", Enumerable.Repeat(0.7f, k).ToArray()));
        rows.Add(("−3 repeated", Enumerable.Repeat(-3f, k).ToArray()));
        rows.Add(("1e30 among ordinary values", With(Ordinary(146), (k / 4, 1e30f))));
        rows.Add(("ordinary with outliers", With(Ordinary(147), (k / 5, 30), (k / 2, -25))));
        return ([.. rows.SelectMany(r => r.Values)], [.. rows.Select(r => r.Name)]);
    }

    [Theory]
    [MemberData(nameof(KernelsAndShapes))]
    public void NonFiniteAndDegenerateRowsNeitherCrashNorLeakIntoOtherRows(int kernelIndex, int shape)
    {
        var kernel = (Int8Kernel)kernelIndex;
        var (_, n, k) = LowPrecisionGemmTests.AwkwardShapes[shape];
        var (x, names) = HostileRows(k);
        int m = names.Length;
        var bias = Random(n, seed: 148);
        var weight = LowPrecisionGemmTests.Packed(Random(n * k, seed: 149), n, k, PanelElement.Int8, GemmInt8.WeightLevelsFor(kernel));
        var reference = new float[m * n];
        var actual = new float[m * n];
        Gemm.MultiplyLowPrecision(x, m, weight, bias, reference, GemmEpilogue.Store, KernelPath.Reference, kernel);
        Gemm.MultiplyLowPrecision(x, m, weight, bias, actual, GemmEpilogue.Store, KernelPath.Vector256, kernel);
        for (int row = 0; row < m; row++)
        {
            var input = x.AsSpan(row * k, k);
            var output = actual.AsSpan(row * n, n).ToArray();
            bool finite = true;
            foreach (float v in input) finite &= float.IsFinite(v);
            // What float32 arithmetic gives for a row holding NaN or ±∞ (its products are NaN or ±∞, and the row's
            // scale is NaN): NaN in every output, for every kernel and the definition alike.
            if (!finite)
            {
                Assert.All(output, v => Assert.True(float.IsNaN(v), $"{kernel} ({n}, {k}) row '{names[row]}': {v}, not NaN"));
                Assert.All(reference.AsSpan(row * n, n).ToArray(), v => Assert.True(float.IsNaN(v), $"reference row '{names[row]}': {v}, not NaN"));
                continue;
            }
            // A finite row gives finite outputs, within the bound of KernelsMatchTheDefinitionWithOutliers of the
            // definition, and the bits it gives alone: the hostile rows beside it change nothing.
            var alone = new float[n];
            Gemm.MultiplyLowPrecision(x.AsSpan(row * k, k), 1, weight, bias, alone, GemmEpilogue.Store, KernelPath.Vector256, kernel);
            Assert.Equal(alone, output);
            for (int col = 0; col < n; col++)
            {
                Assert.True(float.IsFinite(output[col]), $"{kernel} ({n}, {k}) row '{names[row]}' [{col}]: {output[col]}");
                double rowMagnitude = 0;
                for (int j = 0; j < k; j++) rowMagnitude += Math.Abs((double)input[j] * weight.Element(col, j));
                double expected = reference[row * n + col];
                double bound = 6 * FloatUnitRoundoff * (Math.Abs(expected) + Math.Abs(bias[col]) + 1e-30)
                    + (weight.Int8Outliers.Limit + 2) * FloatUnitRoundoff * rowMagnitude;
                Assert.True(Math.Abs(output[col] - expected) <= bound,
                    $"{kernel} ({n}, {k}) row '{names[row]}' [{col}]: {output[col]} vs reference {expected} (bound {bound:E2})");
            }
            if (names[row] == "all zeros") Assert.Equal(bias, output); // 0 is exact in the uint8 grid: only the bias is left
        }
    }

    private static double Cosine(ReadOnlySpan<double> a, ReadOnlySpan<float> b)
    {
        double dot = 0, aa = 0, bb = 0;
        for (int i = 0; i < a.Length; i++)
        {
            dot += a[i] * b[i];
            aa += a[i] * a[i];
            bb += (double)b[i] * b[i];
        }
        return dot / Math.Sqrt(aa * bb);
    }
}
