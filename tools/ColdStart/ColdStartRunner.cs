using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using ManagedClip.IO.Distribution;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace ManagedClip.ColdStart;

/// <summary>One engine's measured child runs.</summary>
internal sealed class EngineRuns(string engine, string[] childArguments, long weightBytes, string? program = null)
{
    public string Engine => engine;
    public string[] ChildArguments => childArguments;

    /// <summary>The program the child runs, when not this one (a ReadyToRun-published copy).</summary>
    public string? Program => program;

    /// <summary>Bytes of the weight files the engine loads (safetensors, or both .onnx graphs).</summary>
    public long WeightBytes => weightBytes;

    /// <summary>Process start → result line, per run.</summary>
    public List<double> Milliseconds { get; } = [];

    /// <summary>Where each run's time went.</summary>
    public List<ChildPhases> Phases { get; } = [];

    /// <summary>The child's memory at exit, per run.</summary>
    public List<PeakMemory> Memory { get; } = [];

    /// <summary>The label probabilities of the last run.</summary>
    public float[] Probabilities { get; set; } = [];

    public long MedianPeakBytes => (long)Statistics.Median(Memory.Select(m => (double)m.PeakKiB)) * 1024;
}

/// <summary>
/// Runs each engine's child once untimed (which reads the model files into the page cache: "already on disk"),
/// then N times per engine, alternating engines so that load from other processes hits both alike, and reports.
/// </summary>
internal static class ColdStartRunner
{
    // Both engines get the same image and prompts through the same preprocessing, so their probabilities differ
    // only by fp32 summation order in the towers (~1e-6); 1e-3 flags different weights or inputs, which differ by O(0.1).
    private const float AgreementTolerance = 1e-3f;

    public static int Run(ColdStartOptions options)
    {
        var model = ModelDirectory.Open(options.ModelDirectory);
        float logitScaleLog;
        using (var weights = model.OpenWeights()) logitScaleLog = weights.GetFloat32("logit_scale")[0];
        string image = options.ImagePath ?? GeneratedImage();
        string loadBefore = LoadAverage();

        string p = options.Precision == "fp32" ? "" : options.Precision + ", ";
        var engines = new[]
        {
            new EngineRuns($"ManagedClip ({p}mapped packed weights)", [ChildRun.ManagedClipMode, model.Root, image, ChildRun.PackedFile, options.Precision], new FileInfo(model.WeightsPath).Length),
        }.Concat((options.OtherBuilds ?? []).Select(build =>
            new EngineRuns($"ManagedClip ({p}mapped, {build.Label})", [ChildRun.ManagedClipMode, model.Root, image, ChildRun.PackedFile, options.Precision], new FileInfo(model.WeightsPath).Length, build.Program)))
        .Concat(new[]
        {
            new EngineRuns($"ManagedClip ({p}packing in memory)", [ChildRun.ManagedClipMode, model.Root, image, ChildRun.InMemory, options.Precision], new FileInfo(model.WeightsPath).Length),
            new EngineRuns("ONNX Runtime",
                [ChildRun.OnnxRuntimeMode, options.OnnxDirectory, model.VocabularyPath, image, logitScaleLog.ToString("R", CultureInfo.InvariantCulture)],
                new[] { "vision.onnx", "text.onnx" }.Sum(graph => new FileInfo(Path.Combine(options.OnnxDirectory, graph)).Length)),
        }).ToArray();
        foreach (var engine in engines) RunChild(engine);
        for (int run = 0; run < options.Runs; run++)
            foreach (var engine in engines)
            {
                var (milliseconds, phases, memory) = RunChild(engine);
                engine.Milliseconds.Add(milliseconds);
                engine.Phases.Add(phases);
                engine.Memory.Add(memory);
            }

        float difference = engines[..^1].Max(e => e.Probabilities.Zip(engines[^1].Probabilities, (a, b) => MathF.Abs(a - b)).Max());
        var residency = options.Processes > 1
            ? new[] { ChildRun.PackedFile, ChildRun.InMemory }.Select(mode => SharedResidency.Measure(model.Root, image, mode, options.Precision, options.Processes)).ToArray()
            : [];
        var report = new ColdStartReport(options, image, loadBefore, LoadAverage(), engines, difference, residency);
        Console.WriteLine(options.Json ? report.ToJson() : report.ToMarkdown());
        // bf16 and int8 are compared with ONNX Runtime's float32 graphs: their difference is the precision's own error.
        if (options.Precision == "fp32" && !(difference <= AgreementTolerance))
            throw new InvalidDataException($"the engines disagree by {difference:G3} in a probability: are the ONNX graphs in " +
                $"'{options.OnnxDirectory}' exported from '{model.WeightsPath}'?");
        return 0;
    }

    /// <summary>Starts the child, times it to its result line, reads its memory line, and checks it succeeded.</summary>
    private static (double Milliseconds, ChildPhases Phases, PeakMemory Memory) RunChild(EngineRuns engine)
    {
        var start = ChildStart(engine.ChildArguments, engine.Program);
        long started = Stopwatch.GetTimestamp();
        start.Environment[ChildPhases.StartVariable] = started.ToString(CultureInfo.InvariantCulture);
        using var child = Process.Start(start) ?? throw new InvalidOperationException($"{engine.Engine}: the child did not start");
        var errors = child.StandardError.ReadToEndAsync();
        double? milliseconds = null;
        ChildPhases? phases = null;
        PeakMemory? memory = null;
        for (string? line; (line = child.StandardOutput.ReadLine()) is not null;)
        {
            if (milliseconds is null && ChildRun.ParseResult(line) is { } probabilities)
            {
                milliseconds = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
                engine.Probabilities = probabilities;
            }
            phases ??= ChildPhases.FromLine(line);
            memory ??= PeakMemory.FromLine(line);
        }
        child.WaitForExit();
        if (child.ExitCode != 0 || milliseconds is null || phases is null || memory is null)
            throw new InvalidOperationException($"{engine.Engine} child run failed (exit code {child.ExitCode}): {errors.Result.Trim()}");
        return (milliseconds.Value, phases, memory);
    }

    /// <summary>
    /// How to start this program again (or <paramref name="program"/>, another build of it) as a child with
    /// <paramref name="arguments"/>, its output redirected.
    /// </summary>
    public static ProcessStartInfo ChildStart(IEnumerable<string> arguments, string? program = null)
    {
        var start = new ProcessStartInfo
        {
            FileName = program ?? Environment.ProcessPath ?? throw new InvalidOperationException("cannot tell which program to start as the child"),
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        // Started as `dotnet ColdStart.dll`, the child needs the assembly path too.
        if (program is null && Path.GetFileNameWithoutExtension(start.FileName) == "dotnet") start.ArgumentList.Add(typeof(ColdStartRunner).Assembly.Location);
        foreach (var argument in arguments) start.ArgumentList.Add(argument);
        return start;
    }

    /// <summary>A 640×480 colour gradient PNG in the temp folder: decoded, resized and cropped like any photo.</summary>
    private static string GeneratedImage()
    {
        string path = Path.Combine(Path.GetTempPath(), "managedclip-coldstart-640x480.png");
        if (File.Exists(path)) return path;
        using var image = new Image<Rgb24>(640, 480);
        for (int y = 0; y < image.Height; y++)
            for (int x = 0; x < image.Width; x++)
                image[x, y] = new Rgb24((byte)(x * 255 / 639), (byte)(y * 255 / 479), (byte)((x + y) % 256));
        string partial = path + ".partial";
        image.SaveAsPng(partial);
        File.Move(partial, path, overwrite: true);
        return path;
    }

    private static string LoadAverage() =>
        File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "unknown";
}
