using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Running;
using ManagedClip.Kernels;

namespace ManagedClip.Benchmarks;

// Run all kernel benchmarks in one table (short job: 3 warm-ups, 3 measurements):
//   dotnet run -c Release --project benchmarks/ManagedClip.Benchmarks -- --filter '*KernelFmaPeak*' '*KernelGemm*' --job short --inProcess --join

/// <summary>One GEMM problem: Y[Rows, Outputs] = X[Rows, Inputs] · W[Outputs, Inputs]ᵀ + b.</summary>
public sealed record GemmShape(string Model, int Rows, int Inputs, int Outputs)
{
    public double FlopCount => 2.0 * Rows * Inputs * Outputs;
    public override string ToString() => $"{Model} {Rows}×{Inputs}→{Outputs}";
}

/// <summary>
/// The machine's FMA peak: 12 independent accumulator chains (more than FMA latency × FMA ports), no memory
/// traffic, on one core and on all cores. The GEMM's GFLOPS are read against these.
/// </summary>
[Config(typeof(KernelBenchmarkConfig))]
public class KernelFmaPeakBenchmarks
{
    private const int Iterations = 1 << 22; // per core: 4M steps × 12 FMAs

    private float[] sinks = [];

    public static IEnumerable<int> CoreCounts() => new[] { 1, Environment.ProcessorCount }.Distinct();

    [ParamsSource(nameof(CoreCounts))]
    public int Cores { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        Parallelism.MaxDegree = Cores;
        sinks = new float[Cores];
    }

    [Benchmark]
    public void Vector512Fma() => Parallelism.For(Cores, core => sinks[core] = Fma512(Iterations));

    [Benchmark]
    public void Vector256Fma() => Parallelism.For(Cores, core => sinks[core] = Fma256(Iterations));

    public static double FlopCount(BenchmarkCase benchmarkCase)
    {
        int lanes = benchmarkCase.Descriptor.WorkloadMethod.Name == nameof(Vector512Fma) ? 16 : 8;
        return 2.0 * 12 * lanes * Iterations * (int)benchmarkCase.Parameters["Cores"];
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    internal static float Fma512(int iterations)
    {
        var m = Vector512.Create(0.999f);
        var a = Vector512.Create(1e-7f);
        Vector512<float> c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default,
            c6 = default, c7 = default, c8 = default, c9 = default, c10 = default, c11 = default;
        for (int i = 0; i < iterations; i++)
        {
            c0 = Vector512.FusedMultiplyAdd(c0, m, a); c1 = Vector512.FusedMultiplyAdd(c1, m, a);
            c2 = Vector512.FusedMultiplyAdd(c2, m, a); c3 = Vector512.FusedMultiplyAdd(c3, m, a);
            c4 = Vector512.FusedMultiplyAdd(c4, m, a); c5 = Vector512.FusedMultiplyAdd(c5, m, a);
            c6 = Vector512.FusedMultiplyAdd(c6, m, a); c7 = Vector512.FusedMultiplyAdd(c7, m, a);
            c8 = Vector512.FusedMultiplyAdd(c8, m, a); c9 = Vector512.FusedMultiplyAdd(c9, m, a);
            c10 = Vector512.FusedMultiplyAdd(c10, m, a); c11 = Vector512.FusedMultiplyAdd(c11, m, a);
        }
        return Vector512.Sum(c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    internal static float Fma256(int iterations)
    {
        var m = Vector256.Create(0.999f);
        var a = Vector256.Create(1e-7f);
        Vector256<float> c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default,
            c6 = default, c7 = default, c8 = default, c9 = default, c10 = default, c11 = default;
        for (int i = 0; i < iterations; i++)
        {
            c0 = Vector256.FusedMultiplyAdd(c0, m, a); c1 = Vector256.FusedMultiplyAdd(c1, m, a);
            c2 = Vector256.FusedMultiplyAdd(c2, m, a); c3 = Vector256.FusedMultiplyAdd(c3, m, a);
            c4 = Vector256.FusedMultiplyAdd(c4, m, a); c5 = Vector256.FusedMultiplyAdd(c5, m, a);
            c6 = Vector256.FusedMultiplyAdd(c6, m, a); c7 = Vector256.FusedMultiplyAdd(c7, m, a);
            c8 = Vector256.FusedMultiplyAdd(c8, m, a); c9 = Vector256.FusedMultiplyAdd(c9, m, a);
            c10 = Vector256.FusedMultiplyAdd(c10, m, a); c11 = Vector256.FusedMultiplyAdd(c11, m, a);
        }
        return Vector256.Sum(c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11);
    }

    /// <summary>
    /// The int8 peak without VNNI, the instruction the AVX2 int8 GEMM is made of: vpmaddwd (16 int16 products summed
    /// in pairs, 16 multiply-adds) plus the vpaddd into the accumulator, 12 chains. Multiply-adds per call: 12·16·iterations.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    internal static int Int8Avx2(int iterations)
    {
        // Each chain multiplies its own accumulator (reinterpreted as int16) by b: twelve different products per step.
        // With one shared product (c += a·b in every chain) the JIT computes it once and the loop times only vpaddd.
        var b = Vector256.Create((short)-2);
        Vector256<int> c0 = Vector256.Create(1), c1 = Vector256.Create(2), c2 = Vector256.Create(3), c3 = Vector256.Create(4),
            c4 = Vector256.Create(5), c5 = Vector256.Create(6), c6 = Vector256.Create(7), c7 = Vector256.Create(8),
            c8 = Vector256.Create(9), c9 = Vector256.Create(10), c10 = Vector256.Create(11), c11 = Vector256.Create(12);
        for (int i = 0; i < iterations; i++)
        {
            c0 += Avx2.MultiplyAddAdjacent(c0.AsInt16(), b); c1 += Avx2.MultiplyAddAdjacent(c1.AsInt16(), b);
            c2 += Avx2.MultiplyAddAdjacent(c2.AsInt16(), b); c3 += Avx2.MultiplyAddAdjacent(c3.AsInt16(), b);
            c4 += Avx2.MultiplyAddAdjacent(c4.AsInt16(), b); c5 += Avx2.MultiplyAddAdjacent(c5.AsInt16(), b);
            c6 += Avx2.MultiplyAddAdjacent(c6.AsInt16(), b); c7 += Avx2.MultiplyAddAdjacent(c7.AsInt16(), b);
            c8 += Avx2.MultiplyAddAdjacent(c8.AsInt16(), b); c9 += Avx2.MultiplyAddAdjacent(c9.AsInt16(), b);
            c10 += Avx2.MultiplyAddAdjacent(c10.AsInt16(), b); c11 += Avx2.MultiplyAddAdjacent(c11.AsInt16(), b);
        }
        return Vector256.Sum(c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11);
    }

    /// <summary>
    /// The uint8 × int8 peak without VNNI (the 3-instruction sequence VNNI replaces): vpmaddubsw (32 byte products summed
    /// in pairs into saturating int16), vpmaddwd with ones (pairs of those into int32), vpaddd into the accumulator;
    /// 12 chains. Multiply-adds per call: 12·32·iterations.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    internal static int Int8Avx2Bytes(int iterations)
    {
        // As in Int8Avx2: each chain's products take its own accumulator as the uint8 operand, so none is shared.
        var b = Vector256.Create((sbyte)-2);
        var ones = Vector256<short>.One;
        Vector256<int> c0 = Vector256.Create(1), c1 = Vector256.Create(2), c2 = Vector256.Create(3), c3 = Vector256.Create(4),
            c4 = Vector256.Create(5), c5 = Vector256.Create(6), c6 = Vector256.Create(7), c7 = Vector256.Create(8),
            c8 = Vector256.Create(9), c9 = Vector256.Create(10), c10 = Vector256.Create(11), c11 = Vector256.Create(12);
        for (int i = 0; i < iterations; i++)
        {
            c0 += Dot(c0, b, ones); c1 += Dot(c1, b, ones); c2 += Dot(c2, b, ones); c3 += Dot(c3, b, ones);
            c4 += Dot(c4, b, ones); c5 += Dot(c5, b, ones); c6 += Dot(c6, b, ones); c7 += Dot(c7, b, ones);
            c8 += Dot(c8, b, ones); c9 += Dot(c9, b, ones); c10 += Dot(c10, b, ones); c11 += Dot(c11, b, ones);
        }
        return Vector256.Sum(c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11);

        static Vector256<int> Dot(Vector256<int> c, Vector256<sbyte> b, Vector256<short> ones) =>
            Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(c.AsByte(), b), ones);
    }

    /// <summary>The int8 peak with AVX-VNNI: vpdpbusd, 32 multiply-adds into int32, 12 chains. Multiply-adds: 12·32·iterations.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    internal static int Int8AvxVnni(int iterations)
    {
        // Each chain's uint8 operand is its own accumulator (see Int8Avx2): no product shared between chains.
        var b = Vector256.Create((sbyte)-2);
        Vector256<int> c0 = Vector256.Create(1), c1 = Vector256.Create(2), c2 = Vector256.Create(3), c3 = Vector256.Create(4),
            c4 = Vector256.Create(5), c5 = Vector256.Create(6), c6 = Vector256.Create(7), c7 = Vector256.Create(8),
            c8 = Vector256.Create(9), c9 = Vector256.Create(10), c10 = Vector256.Create(11), c11 = Vector256.Create(12);
        for (int i = 0; i < iterations; i++)
        {
            c0 = AvxVnni.MultiplyWideningAndAdd(c0, c0.AsByte(), b); c1 = AvxVnni.MultiplyWideningAndAdd(c1, c1.AsByte(), b);
            c2 = AvxVnni.MultiplyWideningAndAdd(c2, c2.AsByte(), b); c3 = AvxVnni.MultiplyWideningAndAdd(c3, c3.AsByte(), b);
            c4 = AvxVnni.MultiplyWideningAndAdd(c4, c4.AsByte(), b); c5 = AvxVnni.MultiplyWideningAndAdd(c5, c5.AsByte(), b);
            c6 = AvxVnni.MultiplyWideningAndAdd(c6, c6.AsByte(), b); c7 = AvxVnni.MultiplyWideningAndAdd(c7, c7.AsByte(), b);
            c8 = AvxVnni.MultiplyWideningAndAdd(c8, c8.AsByte(), b); c9 = AvxVnni.MultiplyWideningAndAdd(c9, c9.AsByte(), b);
            c10 = AvxVnni.MultiplyWideningAndAdd(c10, c10.AsByte(), b); c11 = AvxVnni.MultiplyWideningAndAdd(c11, c11.AsByte(), b);
        }
        return Vector256.Sum(c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11);
    }
}

/// <summary>
/// The machine's read bandwidth from DRAM: every core streams its own share of a buffer far larger than the last-level
/// cache, adding 256-bit vectors into 8 independent accumulators (so the adds never limit it): a weight-streaming GEMM
/// cannot read faster than this.
/// </summary>
internal static unsafe class MemoryBandwidthLoop
{
    /// <summary>256 MB: 32× this VM's 8 MB L3, and the size of a prompt's float32 weight stream (340 MB) in order.</summary>
    public const long BufferBytes = 256L << 20;

    /// <summary>Sums <paramref name="floatCount"/> floats from <paramref name="start"/> (64-byte aligned, a multiple of 64 floats).</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static float Read(float* start, long floatCount)
    {
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
        for (float* p = start, end = start + floatCount; p < end; p += 64) // two cache lines per step
        {
            a0 += Vector256.LoadAligned(p); a1 += Vector256.LoadAligned(p + 8);
            a2 += Vector256.LoadAligned(p + 16); a3 += Vector256.LoadAligned(p + 24);
            a4 += Vector256.LoadAligned(p + 32); a5 += Vector256.LoadAligned(p + 40);
            a6 += Vector256.LoadAligned(p + 48); a7 += Vector256.LoadAligned(p + 56);
        }
        return Vector256.Sum(a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7);
    }
}

/// <summary>
/// The model's GEMMs (ViT-B/16: 197 tokens per image, 1 and 8 images; BERT-base: 12 and 64 tokens) on one core
/// and on all: the micro-kernel with the weight read in place (row-major, each 256×32 slice packed just before
/// use) and with the weight packed once (as both towers run from their second pass on).
/// </summary>
/// <remarks>
/// In a forward pass every weight comes from DRAM (a tower's weights are 340 MB), so each call here uses the next
/// of several copies of W, together at least 64 MB: more than any cache, as in the model.
/// </remarks>
[Config(typeof(KernelBenchmarkConfig))]
public class KernelGemmBenchmarks
{
    private const long WeightBytesCycled = 64L << 20;

    private ArraySegment<float> x, y;
    private float[] bias = [];
    private float[][] rowMajor = [];       // copies of W [N, K]
    private WeightMatrix[] inPlace = [];    // views of those copies
    private WeightMatrix[] packed = [];     // the same weights, packed whole
    private int next;

    public static IEnumerable<GemmShape> Shapes() =>
        from model in new[] { ("ViT", 197), ("ViT×8", 197 * 8), ("BERT", 12), ("BERT", 64) }
        from layer in new[] { (768, 2304), (768, 768), (768, 3072), (3072, 768) }
        select new GemmShape(model.Item1, model.Item2, layer.Item1, layer.Item2);

    [ParamsSource(nameof(Shapes))]
    public GemmShape Shape { get; set; } = null!;

    [ParamsSource(nameof(KernelFmaPeakBenchmarks.CoreCounts))]
    public int Cores { get; set; }

    public static IEnumerable<int> CoreCounts() => KernelFmaPeakBenchmarks.CoreCounts();

    [GlobalSetup]
    public void Setup()
    {
        Parallelism.MaxDegree = Cores;
        (x, bias, y, rowMajor) = Operands(Shape);
        inPlace = Weights(Shape, rowMajor, packed: false);
        packed = Weights(Shape, rowMajor, packed: true);
    }

    /// <summary>A <see cref="WeightMatrix"/> of each copy of W: row-major as stored, or packed whole once.</summary>
    internal static WeightMatrix[] Weights(GemmShape shape, float[][] rowMajor, bool packed) => rowMajor.Select(w => packed
        ? WeightMatrix.Packed(shape.Outputs, shape.Inputs, w.CopyTo)
        : WeightMatrix.Create(w, shape.Outputs, shape.Inputs)).ToArray();

    /// <summary>X [M, K], b [N], Y [M, N] and enough copies of W [N, K] to fill 64 MB, random in [−0.5, 0.5).</summary>
    /// <remarks>X and Y start on a 64-byte line, as the towers' activations do (see ActivationArena).</remarks>
    internal static (ArraySegment<float> X, float[] Bias, ArraySegment<float> Y, float[][] Weights) Operands(GemmShape shape)
    {
        var random = new Random(1);
        float[] Values(long count)
        {
            var values = new float[count];
            for (long i = 0; i < count; i++) values[i] = random.NextSingle() - 0.5f;
            return values;
        }
        long weightLength = (long)shape.Outputs * shape.Inputs;
        int copies = (int)Math.Max(2, (WeightBytesCycled + 4 * weightLength - 1) / (4 * weightLength));
        var x = LineAligned(shape.Rows * shape.Inputs);
        Values(x.Count).CopyTo(x.AsSpan());
        return (x, Values(shape.Outputs), LineAligned(shape.Rows * shape.Outputs),
            Enumerable.Range(0, copies).Select(_ => Values(weightLength)).ToArray());
    }

    /// <summary>Zeroed floats starting on a 64-byte boundary (a pinned array never moves, so it stays there).</summary>
    internal static unsafe ArraySegment<float> LineAligned(int count)
    {
        var array = GC.AllocateArray<float>(count + 16, pinned: true);
        nint address = (nint)Unsafe.AsPointer(ref array[0]);
        return new ArraySegment<float>(array, (int)((64 - address % 64) % 64) / sizeof(float), count);
    }

    [Benchmark(Baseline = true)]
    public void WeightInPlace() => Gemm.Multiply(x, Shape.Rows, inPlace[Next()], bias, y);

    [Benchmark]
    public void WeightPackedOnce() => Gemm.Multiply(x, Shape.Rows, packed[Next()], bias, y);

    private int Next() => next = (next + 1) % rowMajor.Length;

    public static double FlopCount(BenchmarkCase benchmarkCase) => ((GemmShape)benchmarkCase.Parameters["Shape"]).FlopCount;
}

/// <summary>
/// What the hand-written micro-kernel buys: the same GEMMs as one TensorPrimitives dot product per output element
/// (<see cref="TensorPrimitivesGemm"/>), at the one-image ViT shapes and a 12-token prompt's largest, weights
/// cycled through 64 MB as in <see cref="KernelGemmBenchmarks"/>. (Fewer shapes: the slow baseline would
/// otherwise dominate the suite's run time.)
/// </summary>
[Config(typeof(KernelBenchmarkConfig))]
public class KernelGemmBaselineBenchmarks
{
    private ArraySegment<float> x, y;
    private float[] bias = [];
    private float[][] rowMajor = []; // copies of W [N, K]
    private int next;

    public static IEnumerable<GemmShape> Shapes() =>
        KernelGemmBenchmarks.Shapes().Where(s => s.Rows == 197 || (s.Rows == 12 && s.Outputs == 2304));

    [ParamsSource(nameof(Shapes))]
    public GemmShape Shape { get; set; } = null!;

    [ParamsSource(nameof(KernelFmaPeakBenchmarks.CoreCounts))]
    public int Cores { get; set; }

    public static IEnumerable<int> CoreCounts() => KernelFmaPeakBenchmarks.CoreCounts();

    [GlobalSetup]
    public void Setup()
    {
        Parallelism.MaxDegree = Cores;
        (x, bias, y, rowMajor) = KernelGemmBenchmarks.Operands(Shape);
    }

    [Benchmark]
    public void TensorPrimitivesDot() =>
        TensorPrimitivesGemm.Multiply(x, Shape.Rows, rowMajor[next = (next + 1) % rowMajor.Length], Shape.Outputs, Shape.Inputs, bias, y);

    public static double FlopCount(BenchmarkCase benchmarkCase) => ((GemmShape)benchmarkCase.Parameters["Shape"]).FlopCount;
}

/// <summary>Self-attention at the model's sequence lengths (12 heads of 64), all cores.</summary>
[Config(typeof(KernelBenchmarkConfig))]
public class KernelAttentionBenchmarks
{
    private const int Heads = 12, HeadSize = 64;
    private float[] qkv = [], output = [];

    [Params(12, 64, 197)]
    public int Tokens { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        Parallelism.MaxDegree = Environment.ProcessorCount;
        var random = new Random(2);
        qkv = Enumerable.Range(0, Tokens * 3 * Heads * HeadSize).Select(_ => random.NextSingle() * 2 - 1).ToArray();
        output = new float[Tokens * Heads * HeadSize];
    }

    [Benchmark]
    public void SelfAttention() => Attention.SelfAttention(qkv, Tokens, Heads, HeadSize, output);

    /// <summary>Q·Kᵀ and P·V: 2 × T² × headSize multiply-adds per head (softmax not counted).</summary>
    public static double FlopCount(BenchmarkCase benchmarkCase)
    {
        int tokens = (int)benchmarkCase.Parameters["Tokens"];
        return 2.0 * 2 * tokens * tokens * HeadSize * Heads;
    }
}

/// <summary>The cheap kernels at ViT-B/16 sizes (one image), for scale: LayerNorm, GELU, softmax.</summary>
[Config(typeof(KernelBenchmarkConfig))]
public class KernelElementwiseBenchmarks
{
    private float[] tokens = [], hiddenInput = [], hidden = [], scores = [], gamma = [], beta = [];

    [GlobalSetup]
    public void Setup()
    {
        var random = new Random(3);
        float[] Values(int count) => Enumerable.Range(0, count).Select(_ => random.NextSingle() * 4 - 2).ToArray();
        tokens = Values(197 * 768);   // [T, D]
        hiddenInput = Values(197 * 3072); // [T, 4D]
        hidden = new float[hiddenInput.Length];
        scores = Values(197 * 197);   // [T, T]
        gamma = Values(768);
        beta = Values(768);
    }

    [Benchmark]
    public void LayerNorm197x768() => LayerNorm.Apply(tokens, gamma, beta, 1e-6f, tokens, 768);

    [Benchmark]
    public void Gelu197x3072()
    {
        // Fresh inputs each call (a 2.4 MB copy, ~5% of the time): GELU applied over and over would drive the
        // negative values into denormals.
        hiddenInput.CopyTo(hidden, 0);
        Activations.Gelu(hidden);
    }

    [Benchmark]
    public void Softmax197Rows()
    {
        for (int t = 0; t < 197; t++) Softmax.Apply(scores.AsSpan(t * 197, 197));
    }
}
