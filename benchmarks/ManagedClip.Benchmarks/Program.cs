using BenchmarkDotNet.Running;
using ManagedClip.Benchmarks.Onnx;

// The ONNX commands prepare and check the ONNX Runtime baseline; everything else goes to BenchmarkDotNet.
return args.FirstOrDefault() switch
{
    OnnxCommands.ExportCommand => OnnxCommands.Export(args[1..]),
    OnnxCommands.ValidateCommand => OnnxCommands.Validate(args[1..]),
    _ => RunBenchmarks(args),
};

static int RunBenchmarks(string[] args)
{
    BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
    return 0;
}
