namespace ManagedClip.Kernels;

/// <summary>The element type of a packed weight's panels (see <see cref="WeightMatrix.Packed"/>).</summary>
internal enum PanelElement
{
    /// <summary>float32, [⌈N/32⌉, K, 32] (<see cref="PanelPacking"/>).</summary>
    Float32,
    /// <summary>bfloat16, the same layout as float32 at half the bytes (<see cref="GemmBFloat16"/>).</summary>
    BFloat16,
    /// <summary>int8 per output channel, [⌈N/16⌉, ⌈K/4⌉, 16, 4] (<see cref="GemmInt8"/>).</summary>
    Int8,
}

/// <summary>
/// Packing of whole weights into the reduced-precision panel layouts: pure functions from the row-major float32
/// weight W [N, K] to the destination span, rounding on the way (<see cref="Quantization"/>).
/// </summary>
/// <remarks>
/// <b>bf16</b> keeps float32's panel layout, P[panel][k][j] = W[32·panel + j, k]: the micro-kernel widens the 32
/// lanes of row k to float32 and uses them as the float32 kernel does.
/// <b>int8</b> groups four steps of k: P[panel][g][j][t] = q[16·panel + j, 4g + t]. The 4 bytes of one output
/// channel at one group are adjacent, which is what VPDPBUSD multiplies with 4 activation bytes and sums into one
/// int32 lane; one group of a panel is 64 bytes, one cache line. Padding (rows past N, steps past K) is zero, so it
/// adds nothing to any sum.
/// </remarks>
internal static class LowPrecisionPacking
{
    /// <summary>
    /// Version of the bf16 and int8 layouts and of what is quantized how (levels, scales, rounding, any per-matrix
    /// array). A packed-weights file records it and is rebuilt when it differs: bump it with any change that alters a
    /// bf16 or int8 weight's bytes.
    /// </summary>
    public const uint LayoutVersion = 1;

    /// <summary>Output channels per int8 panel: 16 int32 sums, two 256-bit vectors.</summary>
    public const int Int8PanelWidth = 16;

    /// <summary>Steps of k per int8 group: the 4 bytes VPDPBUSD sums into one int32.</summary>
    public const int Int8GroupDepth = 4;

    /// <summary>Elements of a bf16 weight's panels: ⌈N/32⌉·K·32.</summary>
    public static long BFloat16Length(int n, int k) => (long)PanelCount(n, PanelPacking.PanelWidth) * k * PanelPacking.PanelWidth;

    /// <summary>Bytes of an int8 weight's panels: ⌈N/16⌉·⌈K/4⌉·16·4.</summary>
    public static long Int8Length(int n, int k) => (long)PanelCount(n, Int8PanelWidth) * PaddedDepth(k) * Int8PanelWidth;

    /// <summary>K rounded up to whole groups of 4.</summary>
    public static int PaddedDepth(int k) => (k + Int8GroupDepth - 1) / Int8GroupDepth * Int8GroupDepth;

    /// <summary>Where W[n, k] is in a bf16 weight's panels.</summary>
    public static long BFloat16Index(int n, int k, int depth) =>
        ((long)(n / PanelPacking.PanelWidth) * depth + k) * PanelPacking.PanelWidth + n % PanelPacking.PanelWidth;

    /// <summary>Where q[n, k] is in an int8 weight's panels.</summary>
    public static long Int8Index(int n, int k, int depth) =>
        ((long)(n / Int8PanelWidth) * PaddedDepth(depth) + k / Int8GroupDepth * Int8GroupDepth) * Int8PanelWidth
        + n % Int8PanelWidth * Int8GroupDepth + k % Int8GroupDepth;

    /// <summary>W [n, k] row-major → bf16 panels (<see cref="BFloat16Length"/> elements), rounded to nearest even.</summary>
    public static void PackBFloat16(ReadOnlySpan<float> weight, int n, int k, Span<ushort> panels)
    {
        int width = PanelPacking.PanelWidth;
        for (int panel = 0; panel < PanelCount(n, width); panel++)
        {
            var destination = panels.Slice(panel * k * width, k * width); // [K, 32]
            for (int j = 0; j < width; j++)
            {
                int row = panel * width + j;
                var source = row < n ? weight.Slice(row * k, k) : default;
                for (int step = 0; step < k; step++)
                    destination[step * width + j] = row < n ? Quantization.ToBFloat16(source[step]) : (ushort)0;
            }
        }
    }

    /// <summary>
    /// W [n, k] row-major → int8 panels (<see cref="Int8Length"/> bytes), each row with its own scale
    /// (<paramref name="scales"/> [n]) and the sum of its quantized values (<paramref name="sums"/> [n]); q in
    /// [−<paramref name="levels"/>, <paramref name="levels"/>].
    /// </summary>
    public static void PackInt8(ReadOnlySpan<float> weight, int n, int k, Span<sbyte> panels, Span<float> scales, Span<int> sums,
        int levels = Quantization.WeightLevels)
    {
        int width = Int8PanelWidth, depth = PaddedDepth(k);
        panels.Slice(0, (int)Int8Length(n, k)).Clear(); // padding rows and steps
        var quantized = new sbyte[k]; // q[row, ..]
        for (int row = 0; row < n; row++)
        {
            scales[row] = Quantization.QuantizeWeightRow(weight.Slice(row * k, k), quantized, levels);
            int sum = 0;
            var destination = panels.Slice(row / width * depth * width); // this row's panel, [⌈K/4⌉, 16, 4]
            for (int step = 0; step < k; step++)
            {
                sum += quantized[step];
                destination[(step / Int8GroupDepth * width + row % width) * Int8GroupDepth + step % Int8GroupDepth] = quantized[step];
            }
            sums[row] = sum;
        }
    }

    private static int PanelCount(int n, int width) => (n + width - 1) / width;
}
