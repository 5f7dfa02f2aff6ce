using System.Text;
using ManagedClip.IO.Formats;
using ManagedClip.Kernels;
using ManagedClip.Model;

namespace ManagedClip.Benchmarks.RealWeights;

/// <summary>
/// Why int8 loses accuracy on real BERT weights, measured two ways for <see cref="RealBertAccuracy"/>:
/// <list type="number">
/// <item>Outlier channels: every quantized GEMM's input, per layer, in the float32 run: the largest |x|, a typical
/// row's RMS, and the channels (input columns k) that exceed 6× their row's RMS; these set the uint8 step of the rows
/// they appear in.</item>
/// <item>Which GEMMs' error matters: the int8 tower with one GEMM type, or one layer, kept in float32, against float32
/// (cosine of the [CLS] state).</item>
/// </list>
/// </summary>
internal static class Int8Diagnosis
{
    /// <summary>The four quantized GEMMs of a BERT layer: short name, module suffix, and the step whose output is its input.</summary>
    public static readonly (string Name, string Module, Func<int, string> InputStep)[] Gemms =
    [
        ("qkv (attention.self)", "attention.self", i => i == 0 ? "text.transformer.embeddings.LayerNorm" : $"text.transformer.encoder.layer.{i - 1}"),
        ("attention.output.dense", "attention.output.dense", i => $"text.transformer.encoder.layer.{i}.attention.self.scaled_dot_product_attention"),
        ("intermediate.dense (FFN in)", "intermediate.dense", i => $"text.transformer.encoder.layer.{i}.attention.output.LayerNorm"),
        ("output.dense (FFN out)", "output.dense", i => $"text.transformer.encoder.layer.{i}.intermediate.dense"),
    ];

    /// <summary>Ratio to the row's RMS above which a value is counted as an outlier here.</summary>
    private const double OutlierRatio = 6;

    /// <summary>Per layer and GEMM: the statistics of its input over every token of every text (float32 run).</summary>
    public static void OutlierTable(StringBuilder md, IReadOnlyList<Dictionary<string, float[]>> exactSteps, int layerCount)
    {
        md.AppendLine("### Outlier channels: the inputs of the quantized GEMMs (float32 run, every token of every text)");
        md.AppendLine();
        md.AppendLine($"A channel is an outlier in a row when |x| > {OutlierRatio}× the row's RMS. \"Step ratio\" is the uint8 step one " +
            "scale per row gives, (max − min)/255, against the step the row would get without its outlier values (median over rows).");
        md.AppendLine();
        md.AppendLine("| Layer | GEMM input of | Max \\|x\\| | Median row RMS | Rows with an outlier | Channels ever outliers | Largest channels (k: max \\|x\\|) | Median step ratio |");
        md.AppendLine("|---:|---|---:|---:|---:|---:|---|---:|");
        for (int layer = 0; layer < layerCount; layer++)
            foreach (var (name, _, inputStep) in Gemms)
            {
                string step = inputStep(layer);
                double largest = 0;
                var rms = new List<double>();
                var stepRatios = new List<double>();
                var channelMax = new Dictionary<int, double>();
                var outlierChannels = new HashSet<int>();
                int rowsWithOutlier = 0, rows = 0;
                foreach (var steps in exactSteps)
                {
                    var x = steps[step];
                    int k = name.StartsWith("output.dense", StringComparison.Ordinal) ? MiniLmPackage.Config.Intermediate : MiniLmPackage.Config.Hidden;
                    for (int row = 0; row < x.Length / k; row++, rows++)
                    {
                        var values = x.AsSpan(row * k, k);
                        double sumSquares = 0, min = 0, max = 0, restMin = 0, restMax = 0;
                        foreach (float v in values) sumSquares += (double)v * v;
                        double rowRms = Math.Sqrt(sumSquares / k);
                        rms.Add(rowRms);
                        bool any = false;
                        for (int c = 0; c < k; c++)
                        {
                            double v = values[c], magnitude = Math.Abs(v);
                            largest = Math.Max(largest, magnitude);
                            channelMax[c] = Math.Max(channelMax.GetValueOrDefault(c), magnitude);
                            min = Math.Min(min, v);
                            max = Math.Max(max, v);
                            if (magnitude > OutlierRatio * rowRms)
                            {
                                any = true;
                                outlierChannels.Add(c);
                            }
                            else
                            {
                                restMin = Math.Min(restMin, v);
                                restMax = Math.Max(restMax, v);
                            }
                        }
                        if (any) rowsWithOutlier++;
                        stepRatios.Add((max - min) / Math.Max(restMax - restMin, 1e-30));
                    }
                }
                var top = channelMax.OrderByDescending(p => p.Value).Take(4).Select(p => $"{p.Key}: {p.Value:F1}");
                md.AppendLine($"| {layer} | {name} | {largest:F1} | {CommandSupport.Median(rms):F2} | {rowsWithOutlier}/{rows} | " +
                    $"{outlierChannels.Count} | {string.Join(", ", top)} | {CommandSupport.Median(stepRatios):F1} |");
            }
        md.AppendLine();
    }

    /// <summary>
    /// A tower whose quantized GEMMs are int8 except where <paramref name="keepFloat32"/> says (module prefix → true):
    /// those are packed float32, so their error is gone and what remains is the others'.
    /// </summary>
    public static BertTextEncoder TowerWithFloat32Where(TensorStore checkpoint, TextConfig config, int embedDim, Func<string, bool> keepFloat32) =>
        BertTextEncoder.Load(new SelectivePrecision(new StoreWeights(checkpoint, precision: ClipPrecision.Int8), keepFloat32), config, embedDim, checkpoint);

    /// <summary>A tower whose quantized GEMMs hold int8-rounded weights as float32 (no activation quantization).</summary>
    public static BertTextEncoder TowerWithWeightRoundingOnly(TensorStore checkpoint, TextConfig config, int embedDim) =>
        BertTextEncoder.Load(new WeightRounding(new SelectivePrecision(new StoreWeights(checkpoint, precision: ClipPrecision.Int8), _ => false)), config, embedDim, checkpoint);

    private sealed class WeightRounding(SelectivePrecision inner) : ForwardingWeightSource(inner)
    {
        protected override WeightSource Over(WeightSource innerAt) => new WeightRounding((SelectivePrecision)innerAt);
        public override WeightMatrix PackedAtModelPrecision(int inputs, params TensorRequest[] parts) => ((SelectivePrecision)Inner).WeightRoundingOnly(inputs, parts);
    }

    /// <summary>Int8 except the modules <paramref name="keepFloat32"/> picks, which are packed float32.</summary>
    private sealed class SelectivePrecision(WeightSource inner, Func<string, bool> keepFloat32) : ForwardingWeightSource(inner)
    {
        protected override WeightSource Over(WeightSource innerAt) => new SelectivePrecision(innerAt, keepFloat32);
        public override WeightMatrix PackedAtModelPrecision(int inputs, params TensorRequest[] parts) =>
            keepFloat32(Prefix) ? Inner.Packed(inputs, parts) : Inner.PackedAtModelPrecision(inputs, parts);

        /// <summary>Only the weights' int8 rounding: s·q as a float32 weight, so the activations stay float32.</summary>
        public WeightMatrix WeightRoundingOnly(int inputs, TensorRequest[] parts)
        {
            var int8 = Inner.PackedAtModelPrecision(inputs, parts);
            return WeightMatrix.Packed(int8.RowCount, int8.ColumnCount, rowMajor =>
            {
                for (int n = 0; n < int8.RowCount; n++)
                    for (int k = 0; k < int8.ColumnCount; k++)
                        rowMajor[n * int8.ColumnCount + k] = int8.Element(n, k);
            });
        }
    }
}
