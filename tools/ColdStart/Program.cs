using ManagedClip.ColdStart;

// Cold start: process start → first zero-shot result (one image, five labels), for ManagedClip and for ONNX
// Runtime, with the model already on disk. The parent starts this same program again in a child mode per run,
// so every measurement includes runtime start-up, loading and the first (unjitted) inference.
//
//   dotnet run -c Release --project tools/ColdStart -- [--model DIR] [--onnx DIR] [--image PATH] [--runs N] [--json]
try
{
    return args.FirstOrDefault() switch
    {
        ChildRun.ManagedClipMode => ChildRun.ManagedClip(args[1..]),
        ChildRun.OnnxRuntimeMode => ChildRun.OnnxRuntime(args[1..]),
        _ => ColdStartRunner.Run(ColdStartOptions.Parse(args)),
    };
}
catch (Exception e) when (e is IOException or InvalidDataException or ArgumentException or UnauthorizedAccessException
    or InvalidOperationException)
{
    // Bad paths, bad files and failed child runs are the user's to fix: say what and where, without a stack trace.
    Console.Error.WriteLine($"error: {e.Message}");
    return 1;
}
