using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;
using System.Text;
using ManagedClip.Benchmarks.Onnx;
using ManagedClip.Kernels;

namespace ManagedClip.Benchmarks.Compare;

/// <summary>
/// <c>compare-precision [--rounds N] [--out FILE.md] [--only TEXT]</c>: the towers in float32, bf16 and int8 (<see cref="ClipPrecision"/>)
/// and their peers, ONNX Runtime float32 and ONNX Runtime int8 (dynamic quantization), loaded side by side in one
/// process, taking turns call by call on one image, eight images and a 12-token prompt (<c>--only Text</c>: the prompt
/// alone); with the resident memory each
/// ManagedClip load added. <c>precision-kernels [--rounds N] [--out FILE.md]</c>: the three GEMMs at
/// the model's shapes against the measured float32 FMA peak and int8 multiply-add peak, interleaved the same way.
/// </summary>
/// <remarks>
/// Interleaving as in <see cref="InterleavedComparison"/>: every round times one call of each mode back to back, the
/// order rotating from round to round, and a mode's speed-up is the median of the rounds' float32 / mode ratios, so
/// the minute-to-minute drift of a shared VM cancels.
/// </remarks>
internal static unsafe class PrecisionComparison
{
    public const string Command = "compare-precision";
    public const string KernelCommand = "precision-kernels";

    private const int DefaultRounds = 15, MaxRounds = 1000, WarmUpCalls = 2;
    private static readonly TimeSpan SwitchPause = TimeSpan.FromMilliseconds(150);
    private static readonly ClipPrecision[] Modes = [ClipPrecision.Float32, ClipPrecision.BFloat16, ClipPrecision.Int8];

    /// <summary>One engine at one precision: the three workloads' calls, each returning its features.</summary>
    private sealed record Engine(string Name, Func<float[]> Image1, Func<float[]> Images8, Func<float[]> Prompt)
    {
        public bool IsOrt => Name.StartsWith("ORT", StringComparison.Ordinal);
    }

    public static int Run(string[] args)
    {
        if (CommandSupport.ParseRoundsAndOut(args, Command, DefaultRounds, MaxRounds, "--only") is not { } options) return 2;
        int rounds = options.Rounds;
        string? markdownPath = options.MarkdownPath;
        string? only = options.All.GetValueOrDefault("--only"); // only the workloads whose name contains this, e.g. "Text"
        string date = DateTime.UtcNow.ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture);
        string loadBefore = CommandSupport.LoadAverage();

        // Loaded int8 first: the first load also fills the shared staging pool, which is then counted against int8,
        // the mode whose memory claim is the boldest.
        var towers = new Dictionary<ClipPrecision, ManagedTowers>();
        var residentMb = new Dictionary<ClipPrecision, double>();
        foreach (var mode in Modes.Reverse())
        {
            long before = ResidentBytes();
            towers[mode] = new ManagedTowers(SyntheticModelFolder.WeightsPath, mode);
            residentMb[mode] = (ResidentBytes() - before) / 1e6;
            Console.Error.WriteLine($"// {mode}: +{residentMb[mode]:F0} MB resident");
        }
        // The peers: the project's ONNX graphs of the same weights (float32, and dynamically quantized int8).
        string onnxDirectory = OnnxExport.EnsureExported(SyntheticModelFolder.WeightsPath);
        using var ortFloat32 = new OrtTowers(onnxDirectory);
        using var ortInt8 = new OrtTowers(onnxDirectory, int8: true);

        var pixels1 = BenchmarkInputs.Pixels(1);
        var pixels8 = BenchmarkInputs.Pixels(8);
        var prompt = BenchmarkInputs.Prompt(padToContext: false);
        var engines = Modes.Select(mode =>
        {
            var t = towers[mode];
            float[] one = new float[512], eight = new float[8 * 512], text = new float[512]; // features [1, E], [8, E], [1, E]
            return new Engine(Name(mode), () => { t.EmbedImages(pixels1, 1, one); return one; },
                () => { t.EmbedImages(pixels8, 8, eight); return eight; }, () => { t.EmbedTexts(prompt, text); return text; });
        }).Concat(new[] { ("ORT fp32", ortFloat32), ("ORT int8", ortInt8) }.Select(e => new Engine(e.Item1,
            () => e.Item2.EmbedImages(pixels1, 1), () => e.Item2.EmbedImages(pixels8, 8),
            () => e.Item2.EmbedTexts(prompt.InputIds, prompt.AttentionMask, prompt.Count, prompt.Length)))).ToList();
        var workloads = new (string Name, Func<Engine, Func<float[]>> Call)[]
        {
            ("Image, 1", e => e.Image1), ("Images, 8", e => e.Images8), ("Text, 12 tokens", e => e.Prompt),
        }.Where(w => only == null || w.Name.Contains(only, StringComparison.OrdinalIgnoreCase)).ToArray();

        // Each engine's features against ManagedClip float32's on these inputs: the speed is only worth reporting next to them.
        var cosines = new Dictionary<(string, string), double>();
        foreach (var (name, call) in workloads)
        {
            var exact = (float[])call(engines[0])().Clone();
            int rows = exact.Length / 512;
            foreach (var engine in engines)
            {
                var features = call(engine)();
                // The smallest cosine over the call's rows.
                cosines[(name, engine.Name)] = Enumerable.Range(0, rows)
                    .Min(r => CommandSupport.Cosine(exact.AsSpan(r * 512, 512), features.AsSpan(r * 512, 512)));
            }
        }

        var md = new StringBuilder();
        md.AppendLine($"Precision modes, interleaved: {date}; {CommandSupport.MachineDescription()}; load average {loadBefore} before; " +
            $"kernel path {KernelPaths.Best}, int8 kernel {GemmInt8.KernelFor(KernelPaths.Best, GemmInt8.WeightLevels)}; " +
            $"`ManagedClip.Benchmarks {string.Join(' ', new[] { Command }.Concat(args))}`");
        md.AppendLine();
        md.AppendLine("| Workload | Rounds | " + string.Join(" | ", engines.Select(e => $"{e.Name} ms, median (min–max)")) +
            " | bf16 speed-up (IQR) | int8 speed-up (IQR) | ORT int8 / ORT fp32 speed-up | int8 time / ORT int8 time (IQR) | min cosine to fp32 (bf16 / int8 / ORT fp32 / ORT int8) |");
        md.AppendLine("|---|---:|" + string.Concat(engines.Select(_ => "---:|")) + "---:|---:|---:|---:|---:|");
        foreach (var (name, call) in workloads)
        {
            Console.Error.WriteLine($"// {name}: {rounds} rounds");
            var times = engines.ToDictionary(e => e.Name, _ => new double[rounds]);
            foreach (var engine in engines)
                for (int i = 0; i < WarmUpCalls; i++) call(engine)();
            for (int round = 0; round < rounds; round++)
                for (int turn = 0; turn < engines.Count; turn++)
                {
                    var engine = engines[(round + turn) % engines.Count];
                    // ONNX Runtime's pool keeps spinning after a call (see InterleavedComparison): let it stop first.
                    if (engine.IsOrt || engines[(round + turn + engines.Count - 1) % engines.Count].IsOrt) Thread.Sleep(SwitchPause);
                    long start = Stopwatch.GetTimestamp();
                    call(engine)();
                    times[engine.Name][round] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
                }
            string Ratio(string slow, string fast, bool bold)
            {
                var ratios = times[slow].Zip(times[fast], (f, m) => f / m).ToArray();
                string median = F(CommandSupport.Median(ratios), 2);
                return $"{(bold ? $"**{median}×**" : median + "×")} ({F(CommandSupport.Quantile(ratios, 0.25), 2)}–{F(CommandSupport.Quantile(ratios, 0.75), 2)})";
            }
            md.AppendLine($"| {name} | {rounds} | " + string.Join(" | ", engines.Select(e => Spread(times[e.Name]))) +
                $" | {Ratio("fp32", "bf16", true)} | {Ratio("fp32", "int8", true)} | {Ratio("ORT fp32", "ORT int8", false)} | {Ratio("int8", "ORT int8", true)} | " +
                string.Join(" / ", engines.Skip(1).Select(e => F(cosines[(name, e.Name)], 6))) + " |");
        }
        md.AppendLine();
        md.AppendLine("| Mode | Resident memory added by loading both towers | vs float32 |");
        md.AppendLine("|---|---:|---:|");
        foreach (var mode in Modes)
            md.AppendLine($"| {Name(mode)} | {F(residentMb[mode], 0)} MB | {F(residentMb[mode] / residentMb[ClipPrecision.Float32], 2)}× |");
        md.AppendLine();
        md.AppendLine($"Each round times one call of each engine back to back, the order rotating, after {WarmUpCalls} warm-up calls each, " +
            $"with a {SwitchPause.TotalMilliseconds:F0} ms pause before and after every ONNX Runtime call (its pool spins on after a call); " +
            "a speed-up is the median of the rounds' time ratios (fp32 / mode; ManagedClip int8 / ORT int8 below 1 means ManagedClip is faster). " +
            "ORT: ONNX Runtime on the project's ONNX graphs of the same weights (`onnx-export`), every graph optimisation, all cores; " +
            "ORT int8 is the dynamically quantized graph (com.microsoft DynamicQuantizeMatMul: int8 weights per output channel, " +
            "activations quantized per tensor at run time) of the same eight GEMMs per block. Resident memory: VmRSS after a load " +
            "minus before it (int8 loaded first, so its figure also holds the load's shared staging buffers). The heads and word " +
            "embeddings are read in place from the mapped checkpoint in every mode and are not in these figures. Cosines: features " +
            "of each workload's inputs against ManagedClip float32's, text tower for the prompt.");
        Console.Write(md.ToString());
        if (markdownPath != null) File.WriteAllText(markdownPath, md.ToString());
        GC.KeepAlive(towers);
        return 0;
    }

    private static readonly GemmShape[] KernelShapes =
    [
        new("ViT", 197, 768, 2304), new("ViT", 197, 768, 3072), new("ViT", 197, 3072, 768), new("BERT", 12, 768, 3072),
    ];

    private const int PeakIterations = 1 << 20;

    public static int RunKernels(string[] args)
    {
        if (CommandSupport.ParseRoundsAndOut(args, KernelCommand, DefaultRounds, MaxRounds) is not { } options) return 2;
        int rounds = options.Rounds;
        string? markdownPath = options.MarkdownPath;
        string date = DateTime.UtcNow.ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture);
        int cores = Environment.ProcessorCount;
        var int8Kernel = GemmInt8.KernelFor(KernelPaths.Best, GemmInt8.WeightLevels);

        var md = new StringBuilder();
        md.AppendLine($"Precision GEMMs against the measured peaks, interleaved: {date}; {CommandSupport.MachineDescription()}, " +
            $"{cores} cores, int8 kernel {int8Kernel}; `ManagedClip.Benchmarks {string.Join(' ', new[] { KernelCommand }.Concat(args))}`");
        md.AppendLine();
        // The read-bandwidth loop's buffer, touched once so its pages exist before any timing.
        float* stream = (float*)NativeMemory.AlignedAlloc((nuint)MemoryBandwidthLoop.BufferBytes, 64);
        new Span<float>(stream, (int)(MemoryBandwidthLoop.BufferBytes / sizeof(float))).Fill(1f);
        var fmaAll = new List<double>();
        var int8PeakAll = new List<double>();
        var bandwidth1 = new double[rounds];
        var bandwidth2 = new double[rounds];
        for (int round = 0; round < rounds; round++)
        {
            bandwidth1[round] = ReadBandwidth(stream, 1);
            bandwidth2[round] = ReadBandwidth(stream, cores);
        }

        md.AppendLine($"| Shape (M × K→N) | FMA peak GFLOP/s | vpmaddwd peak GOP/s | vpmaddubsw peak GOP/s | {int8Kernel} kernel's peak GOP/s | fp32 GFLOP/s (% FMA peak) | bf16 GFLOP/s (% FMA peak) | int8 GOP/s (% its kernel's peak) | int8, 7-bit weights, vpmaddubsw kernel GOP/s (% its peak) | int8 / fp32 time | int8 7-bit / fp32 time |");
        md.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var shape in KernelShapes)
        {
            Console.Error.WriteLine($"// {shape}: {rounds} rounds");
            var (x, bias, y, weights) = KernelGemmBenchmarks.Operands(shape);
            var byMode = Modes.ToDictionary(m => m, m => weights.Select(w => WeightMatrix.Packed(shape.Outputs, shape.Inputs, w.CopyTo,
                m switch { ClipPrecision.BFloat16 => PanelElement.BFloat16, ClipPrecision.Int8 => PanelElement.Int8, _ => PanelElement.Float32 })).ToArray());
            int next = 0;
            double Gemm(ClipPrecision mode) => TimedRate(shape.FlopCount,
                () => Kernels.Gemm.Multiply(x, shape.Rows, byMode[mode][next = (next + 1) % weights.Length], bias, y));
            var fma = new double[rounds];
            var int8Peak = new double[rounds];
            var bytesPeak = new double[rounds];
            var wordsPeak = new double[rounds];
            // The same weights packed with 7 bits on the vpmaddubsw kernel (AVX2 without VNNI): what that kernel would give.
            var sevenBit = weights.Select(w => WeightMatrix.Packed(shape.Outputs, shape.Inputs, w.CopyTo, PanelElement.Int8,
                Quantization.SevenBitWeightLevels)).ToArray();
            var bytesRates = new double[rounds];
            double BytesKernelGemm() => !Avx2.IsSupported ? double.NaN : TimedRate(shape.FlopCount,
                () => Kernels.Gemm.MultiplyLowPrecision(x, shape.Rows, sevenBit[next = (next + 1) % weights.Length], bias, y,
                    GemmEpilogue.Store, KernelPaths.Best, Int8Kernel.Avx2Bytes));
            var rates = Modes.ToDictionary(m => m, _ => new double[rounds]);
            foreach (var mode in Modes) Gemm(mode); // warm-up: JIT, first touch
            BytesKernelGemm();
            for (int round = 0; round < rounds; round++)
            {
                fma[round] = FmaPeak(cores);
                wordsPeak[round] = Int8Peak(cores, Int8Kernel.Avx2);
                bytesPeak[round] = Int8Peak(cores, Int8Kernel.Avx2Bytes);
                int8Peak[round] = int8Kernel switch
                {
                    Int8Kernel.Avx2 => wordsPeak[round],
                    Int8Kernel.Avx2Bytes => bytesPeak[round],
                    _ => Int8Peak(cores, int8Kernel),
                };
                fmaAll.Add(fma[round]);
                int8PeakAll.Add(int8Peak[round]);
                foreach (var mode in Modes) rates[mode][round] = Gemm(mode);
                bytesRates[round] = BytesKernelGemm();
            }
            double Share(ClipPrecision mode, double[] peak) => 100 * CommandSupport.Median(rates[mode].Zip(peak, (r, p) => r / p));
            md.AppendLine($"| {shape} | {F(CommandSupport.Median(fma), 1)} | {F(CommandSupport.Median(wordsPeak), 1)} | {F(CommandSupport.Median(bytesPeak), 1)} | {F(CommandSupport.Median(int8Peak), 1)} | " +
                $"{F(CommandSupport.Median(rates[ClipPrecision.Float32]), 1)} ({F(Share(ClipPrecision.Float32, fma), 0)}%) | " +
                $"{F(CommandSupport.Median(rates[ClipPrecision.BFloat16]), 1)} ({F(Share(ClipPrecision.BFloat16, fma), 0)}%) | " +
                $"{F(CommandSupport.Median(rates[ClipPrecision.Int8]), 1)} ({F(Share(ClipPrecision.Int8, int8Peak), 0)}%) | " +
                $"{F(CommandSupport.Median(bytesRates), 1)} ({F(100 * CommandSupport.Median(bytesRates.Zip(bytesPeak, (r, p) => r / p)), 0)}%) | " +
                $"{F(CommandSupport.Median(rates[ClipPrecision.Float32].Zip(rates[ClipPrecision.Int8], (f, i) => f / i)), 2)} | " +
                $"{F(CommandSupport.Median(rates[ClipPrecision.Float32].Zip(bytesRates, (f, i) => f / i)), 2)} |");
        }
        md.AppendLine();
        md.AppendLine($"{rounds} rounds per shape; each round measures the FMA loop and the int8 loop on all {cores} cores, then " +
            "the three GEMMs (weights packed in their mode, cycling through 64 MB of copies so they come from memory). " +
            "Operations count a multiply-add as 2, for float and int8 alike; the int8 GEMM's activation quantization is inside " +
            "its time. Peak loops, 12 independent chains each: FMA (vfmadd ymm, 8 multiply-adds), vpmaddwd + vpaddd (16), " +
            "vpmaddubsw + vpmaddwd with ones + vpaddd (32; the sequence VNNI's vpdpbusd fuses), and vpdpbusd where the CPU has " +
            "it; the int8 GEMM's share is of the loop of the instructions its kernel is built on. Medians over rounds; shares are medians of per-round ratios.");
        md.AppendLine();
        AppendPromptFloors(md, CommandSupport.Median(bandwidth1), CommandSupport.Median(bandwidth2), bandwidth2,
            CommandSupport.Median([.. fmaAll]), CommandSupport.Median([.. int8PeakAll]), int8Kernel, cores);
        NativeMemory.AlignedFree(stream);
        Console.Write(md.ToString());
        if (markdownPath != null) File.WriteAllText(markdownPath, md.ToString());
        return 0;
    }

    /// <summary>
    /// GB/s read from DRAM by <paramref name="cores"/> cores, each streaming its own share of the 256 MB buffer once.
    /// </summary>
    private static double ReadBandwidth(float* stream, int cores)
    {
        long floats = MemoryBandwidthLoop.BufferBytes / sizeof(float), share = floats / cores;
        var sinks = new float[cores];
        return TimedRate(MemoryBandwidthLoop.BufferBytes,
            () => Parallelism.For(cores, core => sinks[core] = MemoryBandwidthLoop.Read(stream + core * share, share), cores));
    }

    /// <summary>
    /// The 12-token prompt's time floors per mode: its block weights read once from DRAM at the measured bandwidth, and
    /// its multiply-adds at the measured peak of the instructions the mode's kernel is made of. Whichever is larger bounds
    /// the pass (if the two overlapped perfectly); the sum is what a pass that does not overlap them would take.
    /// </summary>
    private static void AppendPromptFloors(StringBuilder md, double bandwidth1, double bandwidth2, double[] bandwidth2Rounds,
        double fmaPeak, double int8Peak, Int8Kernel int8Kernel, int cores)
    {
        // BERT-base text tower, one prompt of T = 12 tokens: 11 layers on every row; the last one's qkv on every row and
        // the rest on its [CLS] row alone (BertTextEncoder.ForwardClassTokens). Block GEMMs [N, K]: qkv [2304, 768],
        // attention.output.dense [768, 768], intermediate [3072, 768], output [768, 3072].
        const int T = 12, D = 768, Ffn = 3072, Layers = 12;
        long qkv = 3L * D * D, rest = (long)D * D + 2L * D * Ffn;
        long macs = (Layers - 1) * T * (qkv + rest) + T * qkv + rest;
        long weights = Layers * (qkv + rest);
        long headBytes = ((D + 512) / 2 * (long)D + 512L * (D + 512) / 2) * sizeof(float); // text.proj, float32 in every mode
        md.AppendLine($"Time floors of the 12-token text pass ({macs / 1e9:F3} G multiply-adds; {weights / 1e6:F1} M block weights, each read once, " +
            $"plus the {headBytes / 1e6:F1} MB float32 head): read bandwidth (256 MB buffer, 8 accumulators) {F(bandwidth1, 1)} GB/s on 1 core, " +
            $"{F(bandwidth2, 1)} GB/s on {cores} (rounds {F(bandwidth2Rounds.Min(), 1)}–{F(bandwidth2Rounds.Max(), 1)}); " +
            $"peaks over all shapes' rounds: FMA {F(fmaPeak, 1)} GFLOP/s, {int8Kernel} loop {F(int8Peak, 1)} GOP/s.");
        md.AppendLine();
        md.AppendLine("| Mode | Bytes read | DRAM floor ms | Compute floor ms | Bound | Larger floor ms | Sum ms | Best speed-up vs fp32 (larger floors) |");
        md.AppendLine("|---|---:|---:|---:|---|---:|---:|---:|");
        double float32Floor = 0;
        foreach (var mode in Modes)
        {
            double bytes = weights * (mode switch { ClipPrecision.BFloat16 => 2, ClipPrecision.Int8 => 1, _ => 4 }) + headBytes;
            double memory = bytes / bandwidth2 / 1e6;                                                   // ms
            double compute = 2.0 * macs / (mode == ClipPrecision.Int8 ? int8Peak : fmaPeak) / 1e6;    // ms
            double floor = Math.Max(memory, compute);
            if (mode == ClipPrecision.Float32) float32Floor = floor;
            md.AppendLine($"| {Name(mode)} | {bytes / 1e6:F0} MB | {F(memory, 1)} | {F(compute, 1)} | {(memory > compute ? "memory" : "compute")} | " +
                $"{F(floor, 1)} | {F(memory + compute, 1)} | {F(float32Floor / floor, 2)}× |");
        }
        md.AppendLine();
        md.AppendLine("bf16's compute floor is float32's: its kernel widens each weight to float32 and issues the same FMAs (plus the " +
            "widening). int8's uses the loop of its kernel's multiply instructions, counting a multiply-add as 2 operations.");
    }

    private static double FmaPeak(int cores)
    {
        var sinks = new float[cores];
        return TimedRate(2.0 * 12 * 8 * PeakIterations * cores,
            () => Parallelism.For(cores, core => sinks[core] = KernelFmaPeakBenchmarks.Fma256(PeakIterations)));
    }

    private static double Int8Peak(int cores, Int8Kernel kernel)
    {
        var sinks = new int[cores];
        if (kernel == Int8Kernel.AvxVnni)
            return TimedRate(2.0 * 12 * 32 * PeakIterations * cores,
                () => Parallelism.For(cores, core => sinks[core] = KernelFmaPeakBenchmarks.Int8AvxVnni(PeakIterations)));
        if (!Avx2.IsSupported) return double.NaN;
        if (kernel == Int8Kernel.Avx2Bytes)
            return TimedRate(2.0 * 12 * 32 * PeakIterations * cores,
                () => Parallelism.For(cores, core => sinks[core] = KernelFmaPeakBenchmarks.Int8Avx2Bytes(PeakIterations)));
        return TimedRate(2.0 * 12 * 16 * PeakIterations * cores,
            () => Parallelism.For(cores, core => sinks[core] = KernelFmaPeakBenchmarks.Int8Avx2(PeakIterations)));
    }

    private static double TimedRate(double operationsPerCall, Action call)
    {
        int calls = 0;
        long start = Stopwatch.GetTimestamp();
        do
        {
            call();
            calls++;
        }
        while (Stopwatch.GetElapsedTime(start) < TimeSpan.FromMilliseconds(15));
        return operationsPerCall * calls / Stopwatch.GetElapsedTime(start).TotalSeconds / 1e9;
    }

    private static long ResidentBytes()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        foreach (var line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
        return Environment.WorkingSet;
    }

    private static string Name(ClipPrecision mode) => mode switch
    {
        ClipPrecision.BFloat16 => "bf16",
        ClipPrecision.Int8 => "int8",
        _ => "fp32",
    };

    private static string Spread(double[] ms) =>
        string.Create(CultureInfo.InvariantCulture, $"{CommandSupport.Median(ms):F1} ({ms.Min():F1}–{ms.Max():F1})");

    private static string F(double value, int decimals) => value.ToString("F" + decimals, CultureInfo.InvariantCulture);
}
