using System.Diagnostics;
using BenchmarkDotNet.Attributes;
using ManagedClip.IO;
using ManagedClip.IO.Distribution;
using ManagedClip.IO.Formats;

namespace ManagedClip.Benchmarks;

/// <summary>
/// Loading the full-size synthetic model (784 MB safetensors) with a warm page cache: open the folder (config parse),
/// open + validate the weights, and fetch a span for every float tensor. MemoryDiagnoser's "Allocated" column shows
/// that no tensor data is copied (the spans are views of the memory map). The folder is generated once into
/// $TMPDIR/managedclip-synthetic-full (or $MANAGEDCLIP_BENCH_MODEL) if missing.
/// </summary>
[MemoryDiagnoser]
public class LoadBenchmarks
{
    private string folder = "";

    [GlobalSetup]
    public void Setup()
    {
        folder = Environment.GetEnvironmentVariable("MANAGEDCLIP_BENCH_MODEL")
            ?? Path.Combine(Path.GetTempPath(), "managedclip-synthetic-full");
        if (!File.Exists(Path.Combine(folder, SyntheticWeights.WeightsFileName)))
            SyntheticWeights.WriteModelDirectory(folder, vocabularySource: null);
        // Warm the page cache so the numbers measure mapping + validation, not disk reads.
        using (var stream = File.OpenRead(Path.Combine(folder, SyntheticWeights.WeightsFileName))) stream.CopyTo(Stream.Null);
        ReportCopies();
    }

    /// <summary>Open + validate + a span per float tensor (no page is touched).</summary>
    [Benchmark]
    public long OpenValidateAndViewEveryTensor()
    {
        using var store = ModelDirectory.Open(folder).OpenWeights();
        long elements = 0;
        foreach (var name in store.Names)
            if (store.Info(name).DType == TensorDType.F32) elements += store.GetFloat32(name).Length;
        return elements;
    }

    /// <summary>The same, then reading one float per 4 KiB page so every page of the mapping is faulted in.</summary>
    [Benchmark]
    public float OpenAndTouchEveryPage()
    {
        using var store = ModelDirectory.Open(folder).OpenWeights();
        return TouchEveryPage(store);
    }

    private static float TouchEveryPage(TensorStore store)
    {
        float sum = 0;
        foreach (var name in store.Names)
        {
            if (store.Info(name).DType != TensorDType.F32) continue;
            var values = store.GetFloat32(name);
            for (int i = 0; i < values.Length; i += 1024) sum += values[i];
        }
        return sum;
    }

    /// <summary>One-off evidence printed to the log: managed allocations and private memory around a full load.</summary>
    private void ReportCopies()
    {
        var process = Process.GetCurrentProcess();
        GC.Collect();
        process.Refresh();
        long privateBefore = process.PrivateMemorySize64, allocatedBefore = GC.GetTotalAllocatedBytes(precise: true);
        var clock = Stopwatch.StartNew();
        using (var store = ModelDirectory.Open(folder).OpenWeights())
        {
            TouchEveryPage(store);
            clock.Stop();
            process.Refresh();
            Console.WriteLine($"// load+touch: {clock.Elapsed.TotalMilliseconds:F1} ms, managed allocated " +
                $"{(GC.GetTotalAllocatedBytes(precise: true) - allocatedBefore) / 1024.0:F1} KiB, private memory " +
                $"{(process.PrivateMemorySize64 - privateBefore) / 1048576.0:F1} MiB, working set {process.WorkingSet64 / 1048576.0:F0} MiB " +
                $"(file {new FileInfo(Path.Combine(folder, SyntheticWeights.WeightsFileName)).Length / 1048576.0:F0} MiB)");
        }
    }
}
