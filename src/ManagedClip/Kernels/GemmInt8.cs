using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace ManagedClip.Kernels;

/// <summary>Which int8 micro-kernel runs (tests run each one the machine has).</summary>
internal enum Int8Kernel
{
    /// <summary>Plain loops over the packed layout: any CPU.</summary>
    Scalar,
    /// <summary>AVX2 without VNNI: bytes widened to 16 bits, vpmaddwd (<see cref="MicroKernelInt8Avx2"/>); any weight.</summary>
    Avx2,
    /// <summary>
    /// AVX2 without VNNI on 7-bit weights: vpmaddubsw, vpmaddwd with ones (<see cref="MicroKernelInt8Avx2Bytes"/>);
    /// needs weights packed with <see cref="Quantization.SevenBitWeightLevels"/>.
    /// </summary>
    Avx2Bytes,
    /// <summary>AVX-VNNI vpdpbusd, 256-bit (<see cref="MicroKernelInt8AvxVnni"/>).</summary>
    AvxVnni,
}

/// <summary>
/// Y[M,N] = X[M,K] · W[N,K]ᵀ + b with W int8 per output channel (<see cref="PanelElement.Int8"/>) and X quantized
/// per row to uint8 as the product starts (<see cref="Quantization"/>). With X ≈ sx·(qx − z) and W ≈ sw·qw:
/// <code>
///   Y[m, n] ≈ sx[m]·sw[n] · (Σₖ qx[m, k]·qw[n, k] − z[m]·Σₖ qw[n, k]) + b[n]
/// </code>
/// The sum over k is exact in int32 (|qx·qw| ≤ 255·127, K ≤ 65 000 keeps it inside 2³¹); Σₖ qw is stored with the
/// weight; the rest (scales, bias, GELU, the residual add) is float32.
/// </summary>
/// <remarks>
/// Every micro-kernel computes the same integer sums from the same packed weights, so the result does not depend on
/// the kernel. Without VNNI (AVX2 only) vpmaddubsw multiplies uint8 by int8 directly but adds pairs into a saturating
/// int16: 2·255·127 = 64 770 does not fit. Two answers, both here:
/// <list type="bullet">
/// <item><see cref="Int8Kernel.Avx2"/> (the default): both operands widened to int16, vpmaddwd (int16 pairs into
/// int32): exact 8-bit weights, 16 multiply-adds per instruction. Runs on weights of either range.</item>
/// <item><see cref="Int8Kernel.Avx2Bytes"/>: weights quantized to 7 bits (±63, as ONNX Runtime's reduce_range does for
/// the same reason), so a pair is at most 32 130 and vpmaddubsw is exact; 32 multiply-adds per vpmaddubsw + vpmaddwd
/// pair. Chosen only for weights packed with 7 bits, which the model does not do by default: the accuracy cost is
/// measured in docs/PRECISION.md.</item>
/// </list>
/// </remarks>
internal static unsafe class GemmInt8
{
    /// <summary>
    /// The largest |q| int8 weights are packed with: 127. (7-bit weights, which the faster vpmaddubsw kernel needs,
    /// flipped a zero-shot top-1 on the full-size synthetic model: docs/PRECISION.md. They are packed only on request.)
    /// </summary>
    public const int WeightLevels = Quantization.WeightLevels;

    /// <summary>The fastest kernel this machine has for <paramref name="path"/> and weights of at most <paramref name="levels"/>.</summary>
    public static Int8Kernel KernelFor(KernelPath path, int levels) =>
        path is not (KernelPath.Vector256 or KernelPath.Vector512) ? Int8Kernel.Scalar
        : AvxVnni.IsSupported ? Int8Kernel.AvxVnni
        : Avx2.IsSupported ? levels <= Quantization.SevenBitWeightLevels ? Int8Kernel.Avx2Bytes : Int8Kernel.Avx2
        : Int8Kernel.Scalar;

    /// <summary>The largest |q| <paramref name="kernel"/> can take.</summary>
    public static int WeightLevelsFor(Int8Kernel kernel) =>
        kernel == Int8Kernel.Avx2Bytes ? Quantization.SevenBitWeightLevels : Quantization.WeightLevels;

    /// <summary>True if <paramref name="kernel"/> can run here.</summary>
    public static bool IsSupported(Int8Kernel kernel) => kernel switch
    {
        Int8Kernel.Avx2 or Int8Kernel.Avx2Bytes => Avx2.IsSupported,
        Int8Kernel.AvxVnni => AvxVnni.IsSupported,
        _ => true,
    };

    /// <summary>Y = X·Wᵀ + b (then <paramref name="epilogue"/>), W an int8 weight; arguments checked by <see cref="Gemm"/>.</summary>
    public static void Multiply(float* x, int rowCount, WeightMatrix weight, float* bias, float* y, GemmEpilogue epilogue,
        KernelPath path, Int8Kernel kernel)
    {
        if (weight.Int8Levels > WeightLevelsFor(kernel))
            throw new InvalidOperationException($"the {kernel} int8 kernel needs weights of at most ±{WeightLevelsFor(kernel)}, not ±{weight.Int8Levels}");
        int k = weight.ColumnCount, paddedDepth = LowPrecisionPacking.PaddedDepth(k);
        int rowsPerStrip = RowsPerStrip(kernel);
        int paddedRows = (rowCount + rowsPerStrip - 1) / rowsPerStrip * rowsPerStrip; // the kernels always read whole strips
        int elementSize = kernel == Int8Kernel.Avx2 ? sizeof(short) : sizeof(byte);
        long activationBytes = (long)paddedRows * paddedDepth * elementSize;
        var outliers = weight.Int8Outliers;
        int limit = outliers.Ratio > 0 ? Math.Min(outliers.Limit, k) : 0;
        if (activationBytes > Array.MaxLength || (long)paddedRows * limit > Array.MaxLength)
            throw new InvalidOperationException($"{rowCount} rows of {k} are too many for one int8 product");
        var activations = ArrayPool<byte>.Shared.Rent((int)activationBytes);
        var scales = ArrayPool<float>.Shared.Rent(paddedRows);
        var zeroPoints = ArrayPool<int>.Shared.Rent(paddedRows);
        var outlierCounts = ArrayPool<int>.Shared.Rent(paddedRows);
        var outlierColumns = ArrayPool<int>.Shared.Rent(Math.Max(1, paddedRows * limit));
        var outlierValues = ArrayPool<float>.Shared.Rent(Math.Max(1, paddedRows * limit));
        sbyte[]? outlierWeights = null;
        float[]? outlierProducts = null;
        try
        {
            fixed (byte* qx = activations)
            fixed (float* sx = scales)
            fixed (int* zx = zeroPoints)
            fixed (int* counts = outlierCounts)
            fixed (int* columns = outlierColumns)
            fixed (float* values = outlierValues)
            fixed (float* sw = weight.ChannelScales)
            fixed (int* sumw = weight.ChannelSums)
            {
                var split = new Int8Outliers(outliers.Ratio, limit);
                var quantize = new QuantizeRows(x, k, paddedDepth, rowCount, paddedRows, qx, kernel == Int8Kernel.Avx2, sx, zx, split, counts, columns, values);
                Parallelism.For(quantize.TaskCount, quantize, (long)rowCount * k >= 1 << 16 ? Parallelism.MaxDegree : 1);
                if (limit > 0) outlierWeights = OutlierColumns(weight, rowCount, counts, columns, limit);
                if (outlierWeights != null) outlierProducts = ArrayPool<float>.Shared.Rent(rowCount * weight.RowCount);
                fixed (sbyte* table = outlierWeights)
                fixed (float* products = outlierProducts)
                {
                    if (table != null)
                    {
                        var outlierProduct = new OutlierProduct(counts, columns, values, limit, table, rowCount, weight.RowCount, products);
                        bool worth = (long)rowCount * limit * weight.RowCount >= 1 << 18;
                        Parallelism.For(outlierProduct.TaskCount, outlierProduct, worth ? Parallelism.MaxDegree : 1);
                    }
                    var product = new Product(qx, paddedDepth, rowCount, weight, sx, zx, sw, sumw, bias, y, epilogue, path, kernel,
                        outlierWeights == null ? default : new OutlierSums(counts, products));
                    bool worthWorkers = (long)rowCount * weight.RowCount * k >= GemmPlan.ParallelThreshold;
                    Parallelism.For(product.Plan.TaskCount, product, worthWorkers ? Parallelism.MaxDegree : 1);
                }
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(activations);
            ArrayPool<float>.Shared.Return(scales);
            ArrayPool<int>.Shared.Return(zeroPoints);
            ArrayPool<int>.Shared.Return(outlierCounts);
            ArrayPool<int>.Shared.Return(outlierColumns);
            ArrayPool<float>.Shared.Return(outlierValues);
            if (outlierWeights != null) ArrayPool<sbyte>.Shared.Return(outlierWeights);
            if (outlierProducts != null) ArrayPool<float>.Shared.Return(outlierProducts);
        }
    }

    /// <summary>
    /// The int8 weight columns q[·, k] [N] of every channel k that some row took out as an outlier, one after another:
    /// [U, N] for the U distinct channels; each row's column numbers become offsets into it. Null if no row has an
    /// outlier. The columns stay int8 (exact in float32 once widened, which the outlier product does as it reads
    /// them): a table spanning most of K is then a quarter of the bytes to write and read back.
    /// </summary>
    private static sbyte[]? OutlierColumns(WeightMatrix weight, int rowCount, int* counts, int* columns, int limit)
    {
        int n = weight.RowCount, k = weight.ColumnCount;
        var slotOf = ArrayPool<int>.Shared.Rent(k); // channel → its row in the table, or -1
        var channelOf = ArrayPool<int>.Shared.Rent(Math.Min(k, Math.Max(1, rowCount * limit))); // row in the table → channel
        try
        {
            slotOf.AsSpan(0, k).Fill(-1);
            int slots = 0;
            for (int row = 0; row < rowCount; row++)
                for (int o = 0; o < counts[row]; o++)
                {
                    ref int column = ref columns[row * limit + o];
                    int slot = slotOf[column];
                    if (slot < 0) { slotOf[column] = slot = slots++; channelOf[slot] = column; }
                    column = slot * n; // from here on: the offset of its weight column in the table
                }
            if (slots == 0) return null;
            var table = ArrayPool<sbyte>.Shared.Rent(slots * n);
            fixed (sbyte* destination = table)
                for (int slot = 0; slot < slots; slot++)
                    GatherInt8Column(weight.Int8Panels, n, k, channelOf[slot], destination + (nint)slot * n);
            return table;
        }
        finally
        {
            ArrayPool<int>.Shared.Return(slotOf);
            ArrayPool<int>.Shared.Return(channelOf);
        }
    }

    /// <summary>
    /// q[·, <paramref name="channel"/>] [N] of int8 panels [⌈N/16⌉, ⌈K/4⌉, 16, 4], contiguous. In a panel the 16
    /// outputs' values for one channel are one byte of each of 16 consecutive 4-byte groups: read the 64 bytes as
    /// sixteen int32, shift the wanted byte to the top and back (sign-extending), and narrow the sixteen back to bytes.
    /// </summary>
    private static void GatherInt8Column(sbyte* panels, int n, int k, int channel, sbyte* destination)
    {
        const int width = LowPrecisionPacking.Int8PanelWidth, group = LowPrecisionPacking.Int8GroupDepth;
        int depth = LowPrecisionPacking.PaddedDepth(k), up = 8 * (group - 1 - channel % group);
        sbyte* last = stackalloc sbyte[width];
        for (int panel = 0; panel * width < n; panel++)
        {
            sbyte* block = panels + ((long)panel * depth + channel / group * group) * width; // 16 groups of 4 bytes
            bool whole = (panel + 1) * width <= n;
            sbyte* output = whole ? destination + panel * width : last;
            if (Vector256.IsHardwareAccelerated)
            {
                var low = Vector256.ShiftRightArithmetic(Vector256.ShiftLeft(Vector256.Load((int*)block), up), 24);
                var high = Vector256.ShiftRightArithmetic(Vector256.ShiftLeft(Vector256.Load((int*)block + 8), up), 24);
                var words = Vector256.Narrow(low, high); // the 16 values as int16, in order
                Vector256.Narrow(words, words).GetLower().Store(output);
            }
            else
            {
                for (int j = 0; j < width; j++) output[j] = block[j * group + channel % group];
            }
            if (!whole) new ReadOnlySpan<sbyte>(last, n - panel * width).CopyTo(new Span<sbyte>(destination + panel * width, n - panel * width));
        }
    }

    private static int RowsPerStrip(Int8Kernel kernel) => kernel switch
    {
        Int8Kernel.AvxVnni => MicroKernelInt8AvxVnni.Rows,
        Int8Kernel.Avx2 => MicroKernelInt8Avx2.Rows,
        Int8Kernel.Avx2Bytes => MicroKernelInt8Avx2Bytes.Rows,
        _ => MicroKernelInt8Scalar.Rows,
    };

    /// <summary>
    /// Quantizes X [M, K] into qx [M′, K′] (M′ whole strips, K′ whole groups of 4; the padding is 0) as uint8, or
    /// as int16 for the AVX2 kernel, with each row's scale and zero point. Blocks of 32 rows, in parallel.
    /// </summary>
    private readonly struct QuantizeRows(float* x, int depth, int paddedDepth, int rowCount, int paddedRows, byte* qx,
        bool wide, float* scales, int* zeroPoints, Int8Outliers outliers, int* outlierCounts, int* outlierColumns, float* outlierValues)
        : Parallelism.IParallelBody
    {
        private const int RowsPerTask = 32;

        public int TaskCount => (paddedRows + RowsPerTask - 1) / RowsPerTask;

        public void Run(int task)
        {
            byte* narrow = stackalloc byte[wide ? paddedDepth : 0];
            for (int row = task * RowsPerTask; row < Math.Min(paddedRows, (task + 1) * RowsPerTask); row++)
            {
                byte* destination = wide ? narrow : qx + (nint)row * paddedDepth;
                new Span<byte>(destination, paddedDepth).Clear();
                (scales[row], zeroPoints[row], outlierCounts[row]) = row < rowCount
                    ? Quantization.QuantizeActivationRow(x + (nint)row * depth, depth, destination, outliers,
                        outlierColumns + (nint)row * outliers.Limit, outlierValues + (nint)row * outliers.Limit)
                    : (0, 0, 0);
                if (!wide) continue;
                short* output = (short*)qx + (nint)row * paddedDepth;
                int k = 0;
                if (Avx2.IsSupported)
                    for (; k + 16 <= paddedDepth; k += 16)
                        Avx2.ConvertToVector256Int16(narrow + k).Store(output + k); // vpmovzxbw: 0..255 stay 0..255
                for (; k < paddedDepth; k++) output[k] = narrow[k];
            }
        }
    }

    private readonly struct Product : Parallelism.IParallelBody
    {
        private readonly Int8Operands operands;
        private readonly Int8Kernel kernel;
        public readonly GemmPlan Plan;

        public Product(byte* qx, int paddedDepth, int rowCount, WeightMatrix weight, float* sx, int* zx, float* sw, int* sumw,
            float* bias, float* y, GemmEpilogue epilogue, KernelPath path, Int8Kernel kernel, OutlierSums outliers)
        {
            operands = new Int8Operands(qx, paddedDepth, rowCount, weight.Int8Panels, weight.RowCount, sx, zx, sw, sumw, bias, y, epilogue, path, outliers);
            this.kernel = kernel;
            int panelCount = (weight.RowCount + LowPrecisionPacking.Int8PanelWidth - 1) / LowPrecisionPacking.Int8PanelWidth;
            Plan = new GemmPlan(rowCount, panelCount, RowsPerStrip(kernel), Parallelism.MaxDegree);
        }

        public void Run(int task)
        {
            switch (kernel)
            {
                case Int8Kernel.AvxVnni: GemmDriver.RunTask(new Int8Tiles<MicroKernelInt8AvxVnni>(operands), Plan, task); break;
                case Int8Kernel.Avx2: GemmDriver.RunTask(new Int8Tiles<MicroKernelInt8Avx2>(operands), Plan, task); break;
                case Int8Kernel.Avx2Bytes: GemmDriver.RunTask(new Int8Tiles<MicroKernelInt8Avx2Bytes>(operands), Plan, task); break;
                default: GemmDriver.RunTask(new Int8Tiles<MicroKernelInt8Scalar>(operands), Plan, task); break;
            }
        }
    }
}

/// <summary>
/// Σₒ x[m, kₒ]·q[n, kₒ] over row m's outlier values (<see cref="Int8Outliers"/>), computed before the int8 product:
/// [M, N] at Products, for the epilogue to scale by s[n] and add. Rows without outliers (Counts[m] = 0) hold nothing
/// meaningful. Both null when no row has one.
/// </summary>
internal readonly unsafe struct OutlierSums(int* counts, float* products)
{
    public readonly int* Counts = counts;     // [M′] outliers per row
    public readonly float* Products = products; // [M, N]
}

/// <summary>
/// Forms the outlier sums of <see cref="OutlierSums"/>: for each row, its outlier values (ascending columns) times the
/// weight columns they meet (int8, widened to float32 exactly as they are read), accumulated by FMA in that order, N
/// outputs at a time; each weight column is streamed once per row that uses it. Blocks of rows, in parallel.
/// </summary>
internal readonly unsafe struct OutlierProduct(int* counts, int* offsets, float* values, int limit, sbyte* table,
    int rowCount, int columnCount, float* products) : Parallelism.IParallelBody
{
    private const int RowsPerTask = 8;

    public int TaskCount => (rowCount + RowsPerTask - 1) / RowsPerTask;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // optimised on first call: see KernelPaths
    public void Run(int task)
    {
        int n = columnCount;
        for (int row = task * RowsPerTask; row < Math.Min(rowCount, (task + 1) * RowsPerTask); row++)
        {
            int count = counts[row];
            if (count == 0) continue;
            float* output = products + (nint)row * n;
            int* rowOffsets = offsets + (nint)row * limit;
            float* rowValues = values + (nint)row * limit;
            new Span<float>(output, n).Clear();
            for (int i = 0; i < count; i++)
            {
                sbyte* column = table + rowOffsets[i];
                float x = rowValues[i];
                int j = 0;
                if (Avx2.IsSupported)
                    for (var xs = Vector256.Create(x); j + 8 <= n; j += 8)
                    {
                        var weights = Vector256.ConvertToSingle(Avx2.ConvertToVector256Int32(column + j)); // vpmovsxbd: 8 int8 → int32, exact
                        Vector256.FusedMultiplyAdd(xs, weights, Vector256.Load(output + j)).Store(output + j);
                    }
                for (; j < n; j++) output[j] = MathF.FusedMultiplyAdd(x, column[j], output[j]);
            }
        }
    }
}

/// <summary>The operands of an int8 GEMM: X already quantized, the int8 panels, the scales and sums of the epilogue.</summary>
internal readonly unsafe struct Int8Operands(byte* qx, int paddedDepth, int rowCount, sbyte* panels, int columnCount,
    float* sx, int* zx, float* sw, int* sumw, float* bias, float* y, GemmEpilogue epilogue, KernelPath path, OutlierSums outliers)
{
    public readonly OutlierSums Outliers = outliers; // the values computed in float32, or none
    public readonly byte* Qx = qx;                 // X quantized, [M′, K′], uint8 (int16 for the AVX2 kernel); M′ whole strips
    public readonly int PaddedDepth = paddedDepth; // K′
    public readonly int RowCount = rowCount;       // M
    public readonly sbyte* Panels = panels;        // W [⌈N/16⌉, K′/4, 16, 4]
    public readonly int ColumnCount = columnCount; // N
    public readonly float* Sx = sx;                // [M] activation scales
    public readonly int* Zx = zx;                  // [M] activation zero points
    public readonly float* Sw = sw;                // [N] weight scales
    public readonly int* SumW = sumw;              // [N] Σₖ qw
    public readonly float* Bias = bias;            // b [N] or null
    public readonly float* Y = y;                  // Y [M, N]
    public readonly GemmEpilogue Epilogue = epilogue;
    public readonly KernelPath Path = path;
}

/// <summary>
/// Tiles of an int8 GEMM for <see cref="GemmDriver"/>: one pass over all of K′ per tile (int32 sums need no k-blocks,
/// and a panel [K′/4, 16, 4] is K′·16 bytes: 12 KB at K = 768, 48 KB at 3072, read from memory once per task and
/// then from cache by every strip), then the float32 epilogue. X is quantized in whole strips with zero padding, so
/// only the output needs edge handling.
/// </summary>
internal readonly unsafe struct Int8Tiles<TKernel>(Int8Operands operands) : IGemmTiles where TKernel : struct, IInt8MicroKernel
{
    private readonly Int8Operands o = operands;

    public static int Rows => TKernel.Rows;
    public static int Columns => TKernel.Columns;
    public static int PanelWidth => LowPrecisionPacking.Int8PanelWidth;
    public int RowCount => o.RowCount;
    public int ColumnCount => o.ColumnCount;
    public int Depth => o.PaddedDepth;
    public int DepthBlock => o.PaddedDepth;
    public bool PackedWhole => true;

    /// <summary>Channels column .. of panel column / 16: the panel's start plus 4 bytes per channel into each group.</summary>
    public byte* Slice(int column, int k0, int blockDepth) =>
        (byte*)(o.Panels + (nint)(column / PanelWidth) * o.PaddedDepth * PanelWidth
                + column % PanelWidth * LowPrecisionPacking.Int8GroupDepth);

    public PanelPrefetch Prefetch(int column, int k0, int blockDepth, int steps) =>
        new(Slice(column, k0, blockDepth), o.PaddedDepth * PanelWidth, steps);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Tile(int row, int tileRows, int column, int tileColumns, int k0, int blockDepth, byte* slice, float* edgeX, float* edgeY)
    {
        nint rowBytes = (nint)o.PaddedDepth * TKernel.ActivationSize;
        int* sums = (int*)edgeY; // [Rows, Columns]
        TKernel.Run(o.Qx + row * rowBytes, rowBytes, (sbyte*)slice, o.PaddedDepth / LowPrecisionPacking.Int8GroupDepth, sums);
        Dequantize(sums, TKernel.Columns, row, tileRows, column, tileColumns);
    }

    /// <summary>
    /// Y[row.., column..] (+)= sx·sw·(sum − z·Σqw) [+ sw·Σₒ xₒ·qw[·, kₒ] over the row's outliers] + b, then GELU: the
    /// float32 epilogue of one tile.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // optimised on first call: see KernelPaths
    private void Dequantize(int* sums, int sumStride, int row, int tileRows, int column, int tileColumns)
    {
        float* bias = o.Bias;
        int* sumw = o.SumW;
        float* sw = o.Sw;
        for (int r = 0; r < tileRows; r++)
        {
            float* output = o.Y + (nint)(row + r) * o.ColumnCount + column;
            float rowScale = o.Sx[row + r];
            int zeroPoint = o.Zx[row + r];
            int outlierCount = o.Outliers.Products == null ? 0 : o.Outliers.Counts[row + r];
            float* outlierSums = o.Outliers.Products + (nint)(row + r) * o.ColumnCount;
            int j = 0;
            if (Vector256.IsHardwareAccelerated)
                for (; j + 8 <= tileColumns; j += 8)
                {
                    // The same operations, in the same order, as the scalar loop below.
                    int n = column + j;
                    var corrected = Vector256.Load(sums + r * sumStride + j) - Vector256.Create(zeroPoint) * Vector256.Load(sumw + n);
                    var value = Vector256.ConvertToSingle(corrected) * (Vector256.Create(rowScale) * Vector256.Load(sw + n));
                    if (outlierCount > 0) value += Vector256.Load(outlierSums + n) * Vector256.Load(sw + n);
                    if (bias != null) value += Vector256.Load(bias + n);
                    if (o.Epilogue == GemmEpilogue.AddToOutput) value = Vector256.Load(output + j) + value;
                    Vector256.Store(value, output + j);
                }
            for (; j < tileColumns; j++)
            {
                int n = column + j;
                float value = (sums[r * sumStride + j] - zeroPoint * sumw[n]) * (rowScale * sw[n]);
                if (outlierCount > 0) value += outlierSums[n] * sw[n];
                if (bias != null) value += bias[n];
                output[j] = o.Epilogue == GemmEpilogue.AddToOutput ? output[j] + value : value;
            }
            if (o.Epilogue == GemmEpilogue.StoreGelu) Activations.Gelu(new Span<float>(output, tileColumns), o.Path);
        }
    }
}

/// <summary>
/// An int8 micro-kernel: S[Rows, Columns] = qx[Rows, K′] · qwᵀ, whole K′ (groups of 4) in int32; qx uint8 (or
/// int16 where <see cref="ActivationSize"/> is 2) at row stride xStride bytes, qw from an int8 panel, 64 bytes a group.
/// </summary>
internal interface IInt8MicroKernel
{
    static abstract int Rows { get; }
    static abstract int Columns { get; }
    static abstract int ActivationSize { get; }
    static abstract unsafe void Run(byte* x, nint xStride, sbyte* panel, int groups, int* sums);
}

/// <summary>
/// 6 × 16 tile on AVX-VNNI: per group, two 256-bit loads hold the 16 channels' 4 weight bytes, and each row's 4
/// activation bytes, broadcast, meet them in two vpdpbusd (32 multiply-adds each, summed straight into int32).
/// 12 accumulators + 2 weights + 1 broadcast of the 16 registers.
/// </summary>
internal readonly struct MicroKernelInt8AvxVnni : IInt8MicroKernel
{
    public static int Rows => 6;
    public static int Columns => 16;
    public static int ActivationSize => 1;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // optimised on first call: see KernelPaths
    public static unsafe void Run(byte* x, nint xStride, sbyte* panel, int groups, int* sums)
    {
        Vector256<int> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector256<int> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        byte* x0 = x, x1 = x + xStride, x2 = x + 2 * xStride, x3 = x + 3 * xStride, x4 = x + 4 * xStride, x5 = x + 5 * xStride;
        for (int g = 0; g < groups; g++)
        {
            var w0 = Vector256.Load(panel);      // channels 0..8, 4 bytes each
            var w1 = Vector256.Load(panel + 32); // channels 8..16
            panel += 64;
            int k = 4 * g;
            Vector256<byte> a;
            a = Avx2.BroadcastScalarToVector256((int*)(x0 + k)).AsByte(); c00 = AvxVnni.MultiplyWideningAndAdd(c00, a, w0); c01 = AvxVnni.MultiplyWideningAndAdd(c01, a, w1);
            a = Avx2.BroadcastScalarToVector256((int*)(x1 + k)).AsByte(); c10 = AvxVnni.MultiplyWideningAndAdd(c10, a, w0); c11 = AvxVnni.MultiplyWideningAndAdd(c11, a, w1);
            a = Avx2.BroadcastScalarToVector256((int*)(x2 + k)).AsByte(); c20 = AvxVnni.MultiplyWideningAndAdd(c20, a, w0); c21 = AvxVnni.MultiplyWideningAndAdd(c21, a, w1);
            a = Avx2.BroadcastScalarToVector256((int*)(x3 + k)).AsByte(); c30 = AvxVnni.MultiplyWideningAndAdd(c30, a, w0); c31 = AvxVnni.MultiplyWideningAndAdd(c31, a, w1);
            a = Avx2.BroadcastScalarToVector256((int*)(x4 + k)).AsByte(); c40 = AvxVnni.MultiplyWideningAndAdd(c40, a, w0); c41 = AvxVnni.MultiplyWideningAndAdd(c41, a, w1);
            a = Avx2.BroadcastScalarToVector256((int*)(x5 + k)).AsByte(); c50 = AvxVnni.MultiplyWideningAndAdd(c50, a, w0); c51 = AvxVnni.MultiplyWideningAndAdd(c51, a, w1);
        }
        Vector256.Store(c00, sums + 0); Vector256.Store(c01, sums + 8);
        Vector256.Store(c10, sums + 16); Vector256.Store(c11, sums + 24);
        Vector256.Store(c20, sums + 32); Vector256.Store(c21, sums + 40);
        Vector256.Store(c30, sums + 48); Vector256.Store(c31, sums + 56);
        Vector256.Store(c40, sums + 64); Vector256.Store(c41, sums + 72);
        Vector256.Store(c50, sums + 80); Vector256.Store(c51, sums + 88);
    }
}

/// <summary>
/// 6 × 8 tile on AVX2 without VNNI. Activations come as int16 (0..255); per group, 16 weight bytes (4 channels × 4
/// steps of k) sign-extend to 16 int16 (vpmovsxbw), and a row's 4 activations, broadcast as one 64-bit value, meet them
/// in vpmaddwd: each int32 lane then holds one channel's sum over two steps, lanes (2c, 2c + 1) the two halves of
/// channel c. After the last group one vphaddd joins the halves and vpermq puts the channels in order.
/// 12 accumulators + 2 weights + 1 broadcast.
/// </summary>
internal readonly struct MicroKernelInt8Avx2 : IInt8MicroKernel
{
    public static int Rows => 6;
    public static int Columns => 8;
    public static int ActivationSize => 2;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // optimised on first call: see KernelPaths
    public static unsafe void Run(byte* x, nint xStride, sbyte* panel, int groups, int* sums)
    {
        Vector256<int> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector256<int> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        byte* x0 = x, x1 = x + xStride, x2 = x + 2 * xStride, x3 = x + 3 * xStride, x4 = x + 4 * xStride, x5 = x + 5 * xStride;
        for (int g = 0; g < groups; g++)
        {
            var w0 = Avx2.ConvertToVector256Int16(panel);      // channels 0..4 × 4 steps
            var w1 = Avx2.ConvertToVector256Int16(panel + 16); // channels 4..8
            panel += 64;
            int offset = 8 * g; // 4 int16 activations, 8 bytes, broadcast straight from memory (vpbroadcastq ymm, m64)
            Vector256<short> a;
            a = Avx2.BroadcastScalarToVector256((long*)(x0 + offset)).AsInt16(); c00 += Avx2.MultiplyAddAdjacent(a, w0); c01 += Avx2.MultiplyAddAdjacent(a, w1);
            a = Avx2.BroadcastScalarToVector256((long*)(x1 + offset)).AsInt16(); c10 += Avx2.MultiplyAddAdjacent(a, w0); c11 += Avx2.MultiplyAddAdjacent(a, w1);
            a = Avx2.BroadcastScalarToVector256((long*)(x2 + offset)).AsInt16(); c20 += Avx2.MultiplyAddAdjacent(a, w0); c21 += Avx2.MultiplyAddAdjacent(a, w1);
            a = Avx2.BroadcastScalarToVector256((long*)(x3 + offset)).AsInt16(); c30 += Avx2.MultiplyAddAdjacent(a, w0); c31 += Avx2.MultiplyAddAdjacent(a, w1);
            a = Avx2.BroadcastScalarToVector256((long*)(x4 + offset)).AsInt16(); c40 += Avx2.MultiplyAddAdjacent(a, w0); c41 += Avx2.MultiplyAddAdjacent(a, w1);
            a = Avx2.BroadcastScalarToVector256((long*)(x5 + offset)).AsInt16(); c50 += Avx2.MultiplyAddAdjacent(a, w0); c51 += Avx2.MultiplyAddAdjacent(a, w1);
        }
        Store(sums + 0, c00, c01);
        Store(sums + 8, c10, c11);
        Store(sums + 16, c20, c21);
        Store(sums + 24, c30, c31);
        Store(sums + 32, c40, c41);
        Store(sums + 40, c50, c51);
    }

    /// <summary>Channels 0..4 (half sums in pairs) and 4..8 → the 8 channel sums in order.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Store(int* sums, Vector256<int> low, Vector256<int> high)
    {
        var joined = Avx2.HorizontalAdd(low, high); // channels 0 1 4 5 | 2 3 6 7
        Vector256.Store(Avx2.Permute4x64(joined.AsInt64(), 0b11_01_10_00).AsInt32(), sums);
    }
}

/// <summary>
/// 6 × 16 tile on AVX2 without VNNI, the three instructions VNNI's vpdpbusd fuses: per group, two 256-bit loads hold
/// the 16 channels' 4 weight bytes (as in <see cref="MicroKernelInt8AvxVnni"/>); each row's 4 activation bytes,
/// broadcast, meet them in vpmaddubsw (uint8 × int8, adjacent pairs summed into int16: lanes 2c and 2c + 1 hold
/// channel c's steps 0 + 1 and 2 + 3), vpmaddwd with ones joins each lane pair into channel c's int32, and vpaddd
/// accumulates. vpmaddubsw saturates at ±32 767; with weights of at most ±63 a pair is at most 2·255·63 = 32 130, so
/// the sums are exact (the weights must be packed with <see cref="Quantization.SevenBitWeightLevels"/>).
/// 12 accumulators + 2 weights + 1 broadcast + 1 product; the ones come from memory.
/// </summary>
internal readonly struct MicroKernelInt8Avx2Bytes : IInt8MicroKernel
{
    public static int Rows => 6;
    public static int Columns => 16;
    public static int ActivationSize => 1;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // optimised on first call: see KernelPaths
    public static unsafe void Run(byte* x, nint xStride, sbyte* panel, int groups, int* sums)
    {
        Vector256<int> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector256<int> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        var ones = Vector256<short>.One;
        byte* x0 = x, x1 = x + xStride, x2 = x + 2 * xStride, x3 = x + 3 * xStride, x4 = x + 4 * xStride, x5 = x + 5 * xStride;
        for (int g = 0; g < groups; g++)
        {
            var w0 = Vector256.Load(panel);      // channels 0..8, 4 bytes each
            var w1 = Vector256.Load(panel + 32); // channels 8..16
            panel += 64;
            int k = 4 * g;
            Vector256<byte> a;
            a = Avx2.BroadcastScalarToVector256((int*)(x0 + k)).AsByte(); c00 += Dot(a, w0, ones); c01 += Dot(a, w1, ones);
            a = Avx2.BroadcastScalarToVector256((int*)(x1 + k)).AsByte(); c10 += Dot(a, w0, ones); c11 += Dot(a, w1, ones);
            a = Avx2.BroadcastScalarToVector256((int*)(x2 + k)).AsByte(); c20 += Dot(a, w0, ones); c21 += Dot(a, w1, ones);
            a = Avx2.BroadcastScalarToVector256((int*)(x3 + k)).AsByte(); c30 += Dot(a, w0, ones); c31 += Dot(a, w1, ones);
            a = Avx2.BroadcastScalarToVector256((int*)(x4 + k)).AsByte(); c40 += Dot(a, w0, ones); c41 += Dot(a, w1, ones);
            a = Avx2.BroadcastScalarToVector256((int*)(x5 + k)).AsByte(); c50 += Dot(a, w0, ones); c51 += Dot(a, w1, ones);
        }
        Vector256.Store(c00, sums + 0); Vector256.Store(c01, sums + 8);
        Vector256.Store(c10, sums + 16); Vector256.Store(c11, sums + 24);
        Vector256.Store(c20, sums + 32); Vector256.Store(c21, sums + 40);
        Vector256.Store(c30, sums + 48); Vector256.Store(c31, sums + 56);
        Vector256.Store(c40, sums + 64); Vector256.Store(c41, sums + 72);
        Vector256.Store(c50, sums + 80); Vector256.Store(c51, sums + 88);
    }

    /// <summary>8 channels' sums over one group of 4 steps: vpmaddubsw, then vpmaddwd with ones.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Dot(Vector256<byte> activations, Vector256<sbyte> weights, Vector256<short> ones) =>
        Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(activations, weights), ones);
}

/// <summary>One row × 16 channels in plain loops: the fallback, and the layout written out.</summary>
internal readonly struct MicroKernelInt8Scalar : IInt8MicroKernel
{
    public static int Rows => 1;
    public static int Columns => LowPrecisionPacking.Int8PanelWidth;
    public static int ActivationSize => 1;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // optimised on first call: see KernelPaths
    public static unsafe void Run(byte* x, nint xStride, sbyte* panel, int groups, int* sums)
    {
        new Span<int>(sums, Columns).Clear();
        for (int g = 0; g < groups; g++, panel += 64)
        for (int j = 0; j < Columns; j++)
        for (int t = 0; t < 4; t++)
            sums[j] += x[4 * g + t] * panel[4 * j + t];
    }
}
