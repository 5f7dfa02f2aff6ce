using ManagedClip.Kernels;
using static ManagedClip.Tests.Kernels.TestValues;

namespace ManagedClip.Tests.Kernels;

public class GemmTests
{
    // Awkward sizes: 1, below and above a vector, a panel (32) ±, the model's 197/768/3072, a k-block (256) + 1.
    // Each (M, N, K) row takes the sizes in a rotated order, so every size occurs once in every dimension
    // without the 729-case cross product.
    private static readonly int[] Sizes = [1, 3, 7, 16, 17, 197, 257, 768, 3072];

    public static TheoryData<int, int, int, int> Shapes()
    {
        var data = new TheoryData<int, int, int, int>();
        foreach (var path in ReferenceAndSupported())
            for (int i = 0; i < Sizes.Length; i++)
                data.Add((int)path, Sizes[i], Sizes[(i + 3) % Sizes.Length], Sizes[(i + 6) % Sizes.Length]);
        return data;
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void MatchesFloat64ReferenceOnAwkwardShapes(int path, int m, int n, int k)
    {
        var x = Random(m * k, seed: 1);
        var w = Random(n * k, seed: 2);
        var bias = Random(n, seed: 3);
        var y = new float[m * n];
        Gemm.Multiply(x, m, WeightMatrix.Create(w, n, k), bias, y, GemmEpilogue.Store, (KernelPath)path);

        var (expected, magnitude) = KernelReference.Gemm(x, m, w, n, k, bias);
        AssertWithinDotProductBound(y, expected, magnitude, k);
    }

    // 19 rows: whole strips and a partial one; 5 rows: a single partial strip. Both with a partial panel and two
    // k-blocks.
    public static TheoryData<int, int> PathsAndRowCounts()
    {
        var data = new TheoryData<int, int>();
        foreach (var path in ReferenceAndSupported())
            foreach (int m in new[] { 19, 5 })
                data.Add((int)path, m);
        return data;
    }

    [Theory]
    [MemberData(nameof(PathsAndRowCounts))]
    public void EpiloguesAddBiasApplyGeluAndAccumulate(int path, int m)
    {
        const int n = 70, k = 300;
        var x = Random(m * k, seed: 4);
        var w = Random(n * k, seed: 5, scale: 0.2f);
        var bias = Random(n, seed: 6);
        var residual = Random(m * n, seed: 7, scale: 3);
        var packed = WeightMatrix.Create(w, n, k);
        var (product, magnitude) = KernelReference.Gemm(x, m, w, n, k, bias);
        var (productWithoutBias, _) = KernelReference.Gemm(x, m, w, n, k, []);

        var noBias = new float[m * n];
        Gemm.Multiply(x, m, packed, [], noBias, GemmEpilogue.Store, (KernelPath)path);
        AssertWithinDotProductBound(noBias, productWithoutBias, magnitude, k);

        var gelu = new float[m * n];
        Gemm.Multiply(x, m, packed, bias, gelu, GemmEpilogue.StoreGelu, (KernelPath)path);
        for (int i = 0; i < gelu.Length; i++)
        {
            // GELU's slope is at most 1.13, so the product's error passes through scaled by ≤ 1.13; the float erf
            // adds ≤ 1.5e-7·|z|/2, and the final products a few roundings of the result.
            double z = product[i], bound = 1.13 * DotProductBound(magnitude[i], k) + 1e-7 * Math.Abs(z) + 4 * FloatUnitRoundoff * Math.Abs(z);
            Assert.True(Math.Abs(gelu[i] - KernelReference.Gelu(z)) <= bound, $"GELU element {i}: {gelu[i]} vs {KernelReference.Gelu(z)} (bound {bound:E2})");
        }

        var accumulated = (float[])residual.Clone();
        Gemm.Multiply(x, m, packed, bias, accumulated, GemmEpilogue.AddToOutput, (KernelPath)path);
        var expected = product.Select((v, i) => v + residual[i]).ToArray();
        var scale = magnitude.Select((v, i) => v + Math.Abs(residual[i])).ToArray();
        AssertWithinDotProductBound(accumulated, expected, scale, k + 1);
    }

    public static TheoryData<int, int> FastPathsAndRowCounts()
    {
        var data = new TheoryData<int, int>();
        foreach (var path in KernelPaths.Supported())
            foreach (int m in new[] { 19, 5, 1 })
                data.Add((int)path, m);
        return data;
    }

    [Theory]
    [MemberData(nameof(FastPathsAndRowCounts))]
    public void EveryPathMatchesTheReferenceKernel(int path, int m)
    {
        // Both are float32 sums of the same products in different orders, each within the float64 bound of the exact
        // result, so they are within twice that bound of each other (GELU passes the difference on scaled by its
        // slope, ≤ 1.13, plus a few roundings of its own in each). Weights read in place and packed whole, every
        // epilogue; a partial last panel and two k-blocks.
        const int n = 70, k = 300;
        var x = Random(m * k, seed: 40);
        var w = Random(n * k, seed: 41, scale: 0.2f);
        var bias = Random(n, seed: 42);
        var residual = Random(m * n, seed: 43, scale: 3);
        var (_, magnitude) = KernelReference.Gemm(x, m, w, n, k, bias);
        foreach (var (layout, weight) in new[] { ("in place", WeightMatrix.Create(w, n, k)), ("packed", WeightMatrix.Packed(n, k, w.CopyTo)) })
        foreach (var epilogue in Enum.GetValues<GemmEpilogue>())
        {
            var fast = (float[])residual.Clone();
            var reference = (float[])residual.Clone();
            Gemm.Multiply(x, m, weight, bias, fast, epilogue, (KernelPath)path);
            Gemm.Multiply(x, m, weight, bias, reference, epilogue, KernelPath.Reference);
            for (int i = 0; i < fast.Length; i++)
            {
                double scale = magnitude[i] + (epilogue == GemmEpilogue.AddToOutput ? Math.Abs(residual[i]) : 0);
                double bound = 2 * DotProductBound(scale, k + 1);
                if (epilogue == GemmEpilogue.StoreGelu) bound = 1.13 * bound + 8 * FloatUnitRoundoff * scale;
                Assert.True(Math.Abs(fast[i] - reference[i]) <= bound,
                    $"{epilogue}, {layout}, element {i}: {fast[i]} vs reference {reference[i]} (bound {bound:E2})");
            }
        }
    }

    [Theory]
    [MemberData(nameof(SupportedPaths), MemberType = typeof(TestValues))]
    public void StackedWeightsActAsOneMatrix(int path)
    {
        // Three separately stored parts of 17, 40 and 33 rows: panel boundaries (32) fall inside parts and parts
        // end inside panels; K = 300 spans two k-blocks and leaves a remainder that is not a multiple of 8.
        const int m = 13, k = 300;
        int[] partRows = [17, 40, 33];
        var parts = partRows.Select((rows, i) => Random(rows * k, seed: 20 + i)).ToArray();
        var whole = parts.SelectMany(p => p).ToArray(); // [90, K] the parts row after row
        int n = partRows.Sum();
        var x = Random(m * k, seed: 30);
        var bias = Random(n, seed: 31);

        var stacked = WeightMatrix.Stack(parts.Select((p, i) => WeightMatrix.Create(p, partRows[i], k)).ToArray());
        var y = new float[m * n];
        Gemm.Multiply(x, m, stacked, bias, y, GemmEpilogue.Store, (KernelPath)path);

        var (expected, magnitude) = KernelReference.Gemm(x, m, whole, n, k, bias);
        AssertWithinDotProductBound(y, expected, magnitude, k);
        Assert.Throws<ArgumentException>(() => WeightMatrix.Stack(WeightMatrix.Create(new float[6], 2, 3), WeightMatrix.Create(new float[8], 2, 4)));
    }

    [Theory]
    [InlineData(197, 800, 520)] // slices packed just before use, or the weight packed whole: the same sums in the same order
    [InlineData(60, 33, 1000)]  // a partial last panel (its padding lanes must be zero) and a partial k-block
    public void WeightPackedWholeGivesTheSameBitsAsOneReadInPlace(int m, int n, int k)
    {
        var x = Random(m * k, seed: 11);
        var w = Random(n * k, seed: 12);
        var bias = Random(n, seed: 13);
        var inPlace = new float[m * n];
        Gemm.Multiply(x, m, WeightMatrix.Create(w, n, k), bias, inPlace, GemmEpilogue.StoreGelu);

        int reads = 0;
        var weight = WeightMatrix.Packed(n, k, values => { reads++; w.CopyTo(values); });
        var packed = new float[m * n];
        Gemm.Multiply(x, m, weight, bias, packed, GemmEpilogue.StoreGelu);

        Assert.Equal(1, reads);
        Assert.True(weight.IsPacked);
        Assert.Equal(inPlace, packed);
    }

    public static TheoryData<int, int> PathsAndShortRowCounts()
    {
        var data = new TheoryData<int, int>();
        foreach (var path in KernelPaths.Supported())
            foreach (int m in new[] { 1, 5, 7, 12 }) // one or two strips: a packed weight is walked panel by panel
                data.Add((int)path, m);
        return data;
    }

    [Theory]
    [MemberData(nameof(PathsAndShortRowCounts))]
    public void OneStripAgainstAPackedWeightMatchesFloat64Reference(int path, int m)
    {
        const int n = 70, k = 600; // a partial last panel and a partial last k-block
        var x = Random(m * k, seed: 14);
        var w = Random(n * k, seed: 15);
        var bias = Random(n, seed: 16);
        var residual = Random(m * n, seed: 17, scale: 3);
        var weight = WeightMatrix.Packed(n, k, w.CopyTo);
        var (product, magnitude) = KernelReference.Gemm(x, m, w, n, k, bias);

        var stored = new float[m * n];
        Gemm.Multiply(x, m, weight, bias, stored, GemmEpilogue.Store, (KernelPath)path);
        AssertWithinDotProductBound(stored, product, magnitude, k);

        var accumulated = (float[])residual.Clone();
        Gemm.Multiply(x, m, weight, bias, accumulated, GemmEpilogue.AddToOutput, (KernelPath)path);
        var expected = product.Select((v, i) => v + residual[i]).ToArray();
        var scale = magnitude.Select((v, i) => v + Math.Abs(residual[i])).ToArray();
        AssertWithinDotProductBound(accumulated, expected, scale, k + 1);
    }

    public static TheoryData<int, int, int> PathsShortRowCountsAndPanelElements()
    {
        var data = new TheoryData<int, int, int>();
        foreach (var path in KernelPaths.Supported())
            foreach (int m in new[] { 1, 5, 7, 12 })
                foreach (var element in new[] { PanelElement.Float32, PanelElement.BFloat16 })
                    data.Add((int)path, m, (int)element);
        return data;
    }

    [Theory]
    [MemberData(nameof(PathsShortRowCountsAndPanelElements))]
    public void RowsComeOutTheSameBitsAloneAsInABiggerProduct(int path, int m, int element)
    {
        // Alone, m rows take the few-strips route (panel by panel, on AVX2 with the prefetching kernel); among 40 they
        // take the k-block-major route. Both cut k into the same 256-step blocks and add the block sums in order, so a
        // prompt's features do not depend on its batch, in float32 and in bf16.
        const int n = 70, k = 600, big = 40;
        var x = Random(big * k, seed: 18);
        var w = Random(n * k, seed: 19);
        var bias = Random(n, seed: 20);
        var weight = WeightMatrix.Packed(n, k, w.CopyTo, (PanelElement)element);
        foreach (var epilogue in new[] { GemmEpilogue.StoreGelu, GemmEpilogue.AddToOutput })
        {
            var residual = Random(big * n, seed: 21);
            var alone = residual[..(m * n)];
            var among = (float[])residual.Clone();
            Gemm.Multiply(x.AsSpan(0, m * k), m, weight, bias, alone, epilogue, (KernelPath)path);
            Gemm.Multiply(x, big, weight, bias, among, epilogue, (KernelPath)path);
            Assert.Equal(alone, among[..(m * n)]);
        }
    }

    [Theory]
    [InlineData(197)] // an image: one block of rows, panels in shrinking groups
    [InlineData(12)]  // a prompt: one strip
    public void ParallelResultIsBitwiseEqualToSingleThreaded(int m)
    {
        // Planned for 4 workers and run on 2, whatever this machine's core count (on a one-CPU runner
        // Parallelism.MaxDegree is 1 and the public overload would never go parallel): the tasks of the 4-worker
        // plan cut the panels differently from the serial plan's, and tasks run on two threads in any order.
        const int n = 800, k = 520;
        var x = Random(m * k, seed: 8);
        var packed = WeightMatrix.Create(Random(n * k, seed: 9), n, k);
        var bias = Random(n, seed: 10);
        var parallel = new float[m * n];
        var serial = new float[m * n];
        unsafe
        {
            fixed (float* px = x, pb = bias, pp = parallel, ps = serial)
            {
                var product = new GemmProduct(px, k, m, packed, pb, pp, n, GemmEpilogue.StoreGelu, KernelPaths.Best, degree: 4);
                Assert.True(product.TaskCount > 1, $"{product.TaskCount} task(s): nothing to run in parallel");
                Gemm.Run(product, maxDegree: 2);
                Gemm.Run(new GemmProduct(px, k, m, packed, pb, ps, n, GemmEpilogue.StoreGelu, KernelPaths.Best, degree: 1), maxDegree: 1);
            }
        }
        Assert.Equal(serial, parallel);
    }

    [Theory]
    [InlineData(197, 24, 2)]  // one image: shrinking groups
    [InlineData(197, 96, 4)]
    [InlineData(197, 1, 2)]
    [InlineData(12, 24, 2)]   // one strip: equal groups
    [InlineData(1576, 72, 2)] // several row blocks: equal groups
    [InlineData(197, 24, 1)]
    public void PlanCoversEveryPanelOfEveryRowBlockOnce(int rows, int panels, int degree)
    {
        var plan = new GemmPlan(rows, panels, rowsPerStrip: 8, degree);
        var covered = new int[panels];
        int previousCount = int.MaxValue;
        for (int task = 0; task < plan.PanelTaskCount; task++)
        {
            var (first, count) = plan.PanelsOfTask(task);
            Assert.InRange(count, 1, 4);
            Assert.True(count <= previousCount, $"group {task} ({count} panels) is larger than the one before");
            previousCount = count;
            for (int p = first; p < first + count; p++) covered[p]++;
        }
        Assert.All(covered, c => Assert.Equal(1, c));
        Assert.Equal(plan.TaskCount, plan.PanelTaskCount * ((rows + 8 * plan.StripsPerTask - 1) / (8 * plan.StripsPerTask)));
    }

    [Fact]
    public void InputMayBeASliceOfALargerBuffer()
    {
        const int m = 9, n = 33, k = 40;
        var buffer = Random(5 + m * k + 7, seed: 11);
        var packed = WeightMatrix.Create(Random(n * k, seed: 12), n, k);
        var fromSlice = new float[m * n];
        Gemm.Multiply(buffer.AsSpan(5, m * k), m, packed, [], fromSlice);
        var fromCopy = new float[m * n];
        Gemm.Multiply(buffer.AsSpan(5, m * k).ToArray(), m, packed, [], fromCopy);
        Assert.Equal(fromCopy, fromSlice);
    }

    [Fact]
    public void SteadyStateCallsAllocateNothingOnTheCallingThread()
    {
        const int m = 197, n = 768, k = 768;
        var x = Random(m * k, seed: 13);
        var packed = WeightMatrix.Create(Random(n * k, seed: 14), n, k);
        var bias = Random(n, seed: 15);
        var y = new float[m * n];
        Parallelism.StartWorkers(); // the pool's threads are made once per process, maybe inside the window below
        Gemm.Multiply(x, m, packed, bias, y, GemmEpilogue.StoreGelu); // warm-up: per-thread state
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 3; i++) Gemm.Multiply(x, m, packed, bias, y, GemmEpilogue.StoreGelu);
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    [Fact]
    public void BadShapesAreRejectedWithMessages()
    {
        var packed = WeightMatrix.Create(new float[6], 2, 3);
        Assert.Contains("expected 4×2", Assert.Throws<ArgumentException>(() => WeightMatrix.Create(new float[6], 4, 2)).Message);
        Assert.Throws<ArgumentException>(() => WeightMatrix.Create([], 0, 3));
        Assert.Contains("input", Assert.Throws<ArgumentException>(() => Gemm.Multiply(new float[5], 2, packed, [], new float[4])).Message);
        Assert.Contains("output", Assert.Throws<ArgumentException>(() => Gemm.Multiply(new float[6], 2, packed, [], new float[3])).Message);
        Assert.Contains("bias", Assert.Throws<ArgumentException>(() => Gemm.Multiply(new float[6], 2, packed, new float[3], new float[4])).Message);
        var shared = new float[20];
        Assert.Throws<ArgumentException>(() => Gemm.Multiply(shared.AsSpan(0, 6), 2, packed, [], shared.AsSpan(4, 4)));
    }

    /// <summary>
    /// Any order of summing K products in float is within (K + 1)·u·Σ|x||w| of the exact sum (the classic bound
    /// γ_K; the +1 is the bias), so this holds however the kernel blocks and vectorises the reduction.
    /// </summary>
    private static double DotProductBound(double magnitude, int k) => (k + 2) * FloatUnitRoundoff * magnitude + 1e-30;

    private static void AssertWithinDotProductBound(float[] actual, double[] expected, double[] magnitude, int k)
    {
        double worstRatio = 0;
        int worst = -1;
        for (int i = 0; i < actual.Length; i++)
        {
            double ratio = Math.Abs(actual[i] - expected[i]) / DotProductBound(magnitude[i], k);
            if (!(ratio <= worstRatio)) (worstRatio, worst) = (ratio, i);
        }
        Assert.True(worstRatio <= 1, $"element {worst}: {actual[worst]} vs {expected[worst]}, {worstRatio:F2}× the bound");
    }
}
