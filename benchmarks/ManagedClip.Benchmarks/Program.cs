using BenchmarkDotNet.Running;
using ManagedClip.Benchmarks.Compare;
using ManagedClip.Benchmarks.Onnx;
using ManagedClip.Benchmarks.Profile;
using ManagedClip.Benchmarks.RealWeights;
using ManagedClip.Benchmarks.Retrieval;

// The ONNX commands prepare and check the ONNX Runtime baseline, `profile` splits the image tower's time by
// stage, `compare` times ManagedClip against ONNX Runtime interleaved in one process (`jpeg-compare` its JPEG
// decoder against ImageSharp's), `gemm-efficiency` the GEMM
// against the FMA peak interleaved, `host-check` how much of each core the host gives this VM; everything else
// goes to BenchmarkDotNet. The retrieval-* commands measure the index (see Retrieval/RetrievalCommands.cs), `index-throughput` the
// index pipeline's images/s against the model alone (Retrieval/IndexThroughput.cs).
try
{
    return args.FirstOrDefault() switch
    {
        OnnxCommands.ExportCommand => OnnxCommands.Export(args[1..]),
        OnnxCommands.ValidateCommand => OnnxCommands.Validate(args[1..]),
        VisionProfile.Command => VisionProfile.Run(args[1..]),
        InterleavedComparison.Command => InterleavedComparison.Run(args[1..]),
        JpegComparison.Command => JpegComparison.Run(args[1..]),
        GemmEfficiency.Command => GemmEfficiency.Run(args[1..]),
        PrecisionComparison.Command => PrecisionComparison.Run(args[1..]),
        PrecisionComparison.KernelCommand => PrecisionComparison.RunKernels(args[1..]),
        RealBertAccuracy.Command => RealBertAccuracy.Run(args[1..]),
        Int8OutlierComparison.Command => Int8OutlierComparison.Run(args[1..]),
        ClassifyEachComparison.Command => ClassifyEachComparison.Run(args[1..]),
        HostCheck.Command => HostCheck.Run(args[1..]),
        PackedWeightsComparison.Command => PackedWeightsComparison.Run(args[1..]),
        RetrievalCommands.Search => RetrievalCommands.RunSearch(args[1..]),
        RetrievalCommands.Merge => RetrievalCommands.RunMerge(args[1..]),
        RetrievalCommands.Index => RetrievalCommands.RunIndex(args[1..]),
        IndexThroughput.Command => IndexThroughput.Run(args[1..]),
        IndexThroughput.WalkCommand => IndexThroughput.RunWalk(args[1..]),
        _ => RunBenchmarks(args),
    };
}
catch (Exception e) when (e is IOException or InvalidDataException or ArgumentException or UnauthorizedAccessException)
{
    // Bad paths and bad files are the user's to fix: say what and where, without a stack trace.
    Console.Error.WriteLine($"error: {e.Message}");
    return 1;
}

static int RunBenchmarks(string[] args)
{
    BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
    return 0;
}
