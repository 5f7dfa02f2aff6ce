using System.Diagnostics;
using System.Globalization;
using System.Text;
using ManagedClip.Benchmarks.RealWeights;
using ManagedClip.IO.Formats;
using ManagedClip.Kernels;
using ManagedClip.Model;

namespace ManagedClip.Benchmarks.Compare;

/// <summary>
/// <c>compare-int8-outliers [--rounds N] [--out FILE.md]</c>: what the int8 outlier decomposition
/// (<see cref="Int8Outliers"/>) costs. float32, int8 with the rule (the default) and int8 without it (one uint8 scale
/// per whole row, as before) take turns call by call, as in <see cref="PrecisionComparison"/>: one image, eight images
/// and a 12-token prompt on the full-size synthetic model, and a 12-token prompt on the real MiniLM weights
/// (<see cref="MiniLmPackage"/>), whose outlier channels make the rule do work.
/// </summary>
internal static class Int8OutlierComparison
{
    public const string Command = "compare-int8-outliers";
    private const int DefaultRounds = 15, MaxRounds = 1000, WarmUpCalls = 2;

    internal sealed record Variant(string Name, Func<string, ClipPrecision> Precision, Int8Outliers? Outliers);

    public static int Run(string[] args)
    {
        if (CommandSupport.ParseRoundsAndOut(args, Command, DefaultRounds, MaxRounds) is not { } options) return 2;
        int rounds = options.Rounds;
        string date = DateTime.UtcNow.ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture);
        string loadBefore = CommandSupport.LoadAverage();
        var variants = new Variant[]
        {
            new("fp32", _ => ClipPrecision.Float32, null),
            new("int8 (outliers in float32)", _ => ClipPrecision.Int8, null),
            new("int8 (one scale per row)", _ => ClipPrecision.Int8, new Int8Outliers(0, 0)),
        };

        var config = ClipConfig.BiomedClip;
        var store = SafeTensorsFile.Open(SyntheticModelFolder.WeightsPath);
        var minilm = new MiniLmCheckpoint(OnnxModelReader.Parse(MiniLmPackage.ReadOnnxModel(), "MiniLM model.onnx"),
            new ClipConfig(512, VisionConfig.VitBasePatch16_224, MiniLmPackage.Config, ClipConfig.OpenAiMean, ClipConfig.OpenAiStd));
        var pixels1 = BenchmarkInputs.Pixels(1);
        var pixels8 = BenchmarkInputs.Pixels(8);
        var (promptIds, promptLengths) = BenchmarkInputs.Prompt(padToContext: false).RealTokens();
        int[] minilmPrompt = [101, 2023, 2003, 1037, 6302, 1997, 2630, 4013, 1011, 23064, 1012, 102]; // 12 ids of MiniLM's vocabulary
        var calls = new Dictionary<(string Workload, string Variant), Func<float[]>>();
        foreach (var variant in variants)
        {
            var vision = VisionTransformer.Load(new Int8Variant(new StoreWeights(store, precision: ClipPrecision.Int8), store, variant), config.Vision, config.EmbedDim, store);
            var text = BertTextEncoder.Load(new Int8Variant(new StoreWeights(store, precision: ClipPrecision.Int8), store, variant), config.Text, config.EmbedDim, store);
            var real = BertTextEncoder.Load(new Int8Variant(new StoreWeights(minilm, precision: ClipPrecision.Int8), minilm, variant), MiniLmPackage.Config, 512, minilm);
            float[] one = new float[512], eight = new float[8 * 512], prompt = new float[512], realPrompt = new float[512];
            calls[("Image, 1", variant.Name)] = () => { vision.Forward(pixels1, 1, one); return one; };
            calls[("Images, 8", variant.Name)] = () => { vision.Forward(pixels8, 8, eight); return eight; };
            calls[("Text, 12 tokens", variant.Name)] = () => { text.Forward(promptIds, promptLengths, prompt); return prompt; };
            calls[("MiniLM text, 12 tokens (real weights)", variant.Name)] = () => { real.Forward(minilmPrompt, [minilmPrompt.Length], realPrompt); return realPrompt; };
        }

        var md = new StringBuilder();
        md.AppendLine($"int8 outlier decomposition, interleaved: {date}; {CommandSupport.MachineDescription()}; load average {loadBefore} before; " +
            $"int8 kernel {GemmInt8.KernelFor(KernelPaths.Best, GemmInt8.WeightLevels)}; `ManagedClip.Benchmarks {string.Join(' ', new[] { Command }.Concat(args))}`");
        md.AppendLine();
        md.AppendLine("| Workload | Rounds | " + string.Join(" | ", variants.Select(v => $"{v.Name} ms, median (min–max)")) +
            " | int8 speed-up, with rule (IQR) | int8 speed-up, without (IQR) | with / without time (IQR) | min cosine to fp32, with / without |");
        md.AppendLine("|---|---:|" + string.Concat(variants.Select(_ => "---:|")) + "---:|---:|---:|---:|");
        foreach (var workload in calls.Keys.Select(k => k.Workload).Distinct())
        {
            Console.Error.WriteLine($"// {workload}: {rounds} rounds");
            var exact = (float[])calls[(workload, variants[0].Name)]().Clone();
            var cosine = variants.Skip(1).Select(v => calls[(workload, v.Name)]()).Select(f => Enumerable.Range(0, exact.Length / 512)
                .Min(r => CommandSupport.Cosine(exact.AsSpan(r * 512, 512), f.AsSpan(r * 512, 512)))).ToArray();
            var times = variants.ToDictionary(v => v.Name, _ => new double[rounds]);
            foreach (var v in variants)
                for (int i = 0; i < WarmUpCalls; i++) calls[(workload, v.Name)]();
            for (int round = 0; round < rounds; round++)
                for (int turn = 0; turn < variants.Length; turn++)
                {
                    var v = variants[(round + turn) % variants.Length];
                    long start = Stopwatch.GetTimestamp();
                    calls[(workload, v.Name)]();
                    times[v.Name][round] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
                }
            string Ratio(string slow, string fast)
            {
                var ratios = times[slow].Zip(times[fast], (s, f) => s / f).ToArray();
                return $"{F(CommandSupport.Median(ratios), 3)}× ({F(CommandSupport.Quantile(ratios, 0.25), 3)}–{F(CommandSupport.Quantile(ratios, 0.75), 3)})";
            }
            md.AppendLine($"| {workload} | {rounds} | " + string.Join(" | ", variants.Select(v => Spread(times[v.Name]))) +
                $" | {Ratio(variants[0].Name, variants[1].Name)} | {Ratio(variants[0].Name, variants[2].Name)} | {Ratio(variants[1].Name, variants[2].Name)} | " +
                $"{F(cosine[0], 6)} / {F(cosine[1], 6)} |");
        }
        md.AppendLine();
        md.AppendLine("Each round times one call of each variant back to back, the order rotating; a ratio is the median of the rounds' ratios. " +
            "\"with / without time\" above 1 means the rule costs that much. Synthetic weights have no outlier channels (the rule only " +
            "looks); MiniLM's do (the rule takes them out). The MiniLM prompt is 12 fixed ids of its vocabulary; its cosine is of the " +
            "synthetic-head features.");
        Console.Write(md.ToString());
        if (options.MarkdownPath != null) File.WriteAllText(options.MarkdownPath, md.ToString());
        GC.KeepAlive(store);
        return 0;
    }

    private static string Spread(double[] ms) =>
        $"{F(CommandSupport.Median(ms), 1)} ({F(ms.Min(), 1)}–{F(ms.Max(), 1)})";

    private static string F(double value, int decimals) => value.ToString("F" + decimals, CultureInfo.InvariantCulture);

    /// <summary>The checkpoint with the quantized layers packed as <paramref name="variant"/> says (float32, or int8 with its outlier rule).</summary>
    internal sealed class Int8Variant(WeightSource inner, TensorStore store, Variant variant) : ForwardingWeightSource(inner)
    {
        protected override WeightSource Over(WeightSource innerAt) => new Int8Variant(innerAt, store, variant);

        public override WeightMatrix PackedAtModelPrecision(int inputs, params TensorRequest[] parts)
        {
            if (variant.Precision(Prefix) == ClipPrecision.Float32) return Inner.Packed(inputs, parts);
            int outputs = checked((int)parts.Sum(p => p.Shape[0]));
            return WeightMatrix.Packed(outputs, inputs, rowMajor =>
            {
                int offset = 0;
                foreach (var part in parts)
                {
                    int length = checked((int)part.ElementCount);
                    store.CopyFloat32(part.Name, rowMajor.Slice(offset, length));
                    offset += length;
                }
            }, PanelElement.Int8, int8Outliers: variant.Outliers);
        }
    }
}
