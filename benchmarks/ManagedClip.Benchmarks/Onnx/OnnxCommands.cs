namespace ManagedClip.Benchmarks.Onnx;

/// <summary>
/// The benchmark program's two non-benchmark commands:
/// <c>onnx-export --weights model.safetensors --out DIR</c> and
/// <c>onnx-validate [--shared DIR] [--full-weights model.safetensors]</c>.
/// </summary>
internal static class OnnxCommands
{
    public const string ExportCommand = "onnx-export";
    public const string ValidateCommand = "onnx-validate";

    public static int Export(string[] args)
    {
        var options = CommandSupport.ParseOptions(args, "--weights", "--out");
        if (options is null || !options.TryGetValue("--weights", out var weights) || !options.TryGetValue("--out", out var output))
            return Usage($"{ExportCommand} --weights model.safetensors --out DIR");
        OnnxExport.Export(weights, output);
        foreach (var file in OnnxExport.FileNames)
            Console.WriteLine($"{Path.Combine(output, file)}  {new FileInfo(Path.Combine(output, file)).Length:N0} bytes");
        return 0;
    }

    public static int Validate(string[] args)
    {
        var options = CommandSupport.ParseOptions(args, "--shared", "--full-weights");
        if (options is null) return Usage($"{ValidateCommand} [--shared DIR (default $MANAGEDCLIP_SHARED)] [--full-weights model.safetensors]");
        string? shared = options.GetValueOrDefault("--shared") ?? Environment.GetEnvironmentVariable("MANAGEDCLIP_SHARED");
        if (string.IsNullOrEmpty(shared)) return Usage($"{ValidateCommand} needs --shared DIR or $MANAGEDCLIP_SHARED");
        float worst = OnnxValidation.Run(shared, options.GetValueOrDefault("--full-weights"), Console.Out);
        bool pass = worst <= OnnxValidation.Tolerance;
        Console.WriteLine($"{(pass ? "PASS" : "FAIL")}: largest feature difference {worst:E2} (tolerance {OnnxValidation.Tolerance:E0})");
        return pass ? 0 : 1;
    }

    private static int Usage(string message)
    {
        Console.Error.WriteLine($"usage: {message}");
        return 2;
    }
}
