namespace ManagedClip.ColdStart;

/// <summary>The command line of a cold-start measurement.</summary>
/// <param name="ModelDirectory">Model folder (open_clip_config.json, weights, vocab.txt) ManagedClip loads.</param>
/// <param name="OnnxDirectory">Folder with vision.onnx and text.onnx exported from the same weights.</param>
/// <param name="ImagePath">The image to classify, or null for a generated one.</param>
/// <param name="Runs">Measured runs per engine.</param>
/// <param name="Json">Print JSON instead of a markdown table.</param>
/// <param name="Processes">With more than 1: also measure the summed PSS of this many ManagedClip processes holding the model at once, against one alone.</param>
/// <param name="OtherBuilds">Other builds of this tool (ReadyToRun or native AOT publishes): each one's children run as one more engine (mapped packed weights), labelled with its kind and folder name.</param>
/// <param name="Precision">The precision ManagedClip loads the model in (ONNX Runtime runs its float32 graphs either way).</param>
internal sealed record ColdStartOptions(string ModelDirectory, string OnnxDirectory, string? ImagePath, int Runs, bool Json, int Processes,
    IReadOnlyList<(string Label, string Program)>? OtherBuilds = null, string Precision = "fp32")
{
    private const string Usage =
        "usage: ColdStart [--model DIR] [--onnx DIR] [--image PATH] [--runs N] [--processes N] [--ready-to-run PATH]... [--native-aot PATH]... [--precision fp32|bf16|int8] [--json]\n" +
        "  --model  model folder (default $MANAGEDCLIP_SYNTH_DIR, else " + DefaultModelDirectory + ")\n" +
        "  --onnx   folder with vision.onnx and text.onnx of the same weights (default: the model folder)\n" +
        "  --image  image to classify (default: a generated 640×480 PNG)\n" +
        "  --runs   measured runs per engine, 1 to 100 (default 5)\n" +
        "  --processes  also measure N ManagedClip processes holding the model at once: summed PSS vs one (2 to 16)\n" +
        "  --ready-to-run  also run the children of PATH, this tool published ReadyToRun (see docs/COLD-START.md); repeatable\n" +
        "  --native-aot    also run the children of PATH, this tool published with PublishAot=true; repeatable\n" +
        "  --precision  ManagedClip's precision (default fp32; each has its own packed-weights file, built by the warm-up run)\n" +
        "  --json   JSON instead of a markdown table";

    private const string DefaultModelDirectory = "/tmp/managedclip-test-synthetic-full-v1";

    public static ColdStartOptions Parse(string[] args)
    {
        string? model = null, onnx = null, image = null;
        var builds = new List<(string Label, string Program)>();
        string precision = "fp32";
        int runs = 5, processes = 1;
        bool json = false;
        for (int i = 0; i < args.Length; i++)
        {
            string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value.\n{Usage}");
            switch (args[i])
            {
                case "--model": model = Value(); break;
                case "--onnx": onnx = Value(); break;
                case "--image": image = Value(); break;
                case "--runs":
                    string text = Value();
                    if (!int.TryParse(text, out runs) || runs is < 1 or > 100)
                        throw new ArgumentException($"--runs must be a whole number from 1 to 100, got '{text}'.");
                    break;
                case "--processes":
                    string count = Value();
                    if (!int.TryParse(count, out processes) || processes is < 2 or > 16)
                        throw new ArgumentException($"--processes must be a whole number from 2 to 16, got '{count}'.");
                    break;
                case "--ready-to-run" or "--native-aot":
                    string kind = args[i] == "--ready-to-run" ? "ReadyToRun" : "native AOT", program = Value();
                    if (!File.Exists(program))
                        throw new FileNotFoundException($"'{program}' does not exist: publish it with `dotnet publish tools/ColdStart -c Release " +
                            $"-r linux-x64 -p:{(kind == "ReadyToRun" ? "PublishReadyToRun" : "PublishAot")}=true -o DIR` and pass DIR/ColdStart.", program);
                    builds.Add(($"{kind}: {Path.GetFileName(Path.GetDirectoryName(Path.GetFullPath(program)))}", program));
                    break;
                case "--precision":
                    precision = Value();
                    if (precision is not ("fp32" or "bf16" or "int8"))
                        throw new ArgumentException($"--precision must be fp32, bf16 or int8, got '{precision}'.");
                    break;
                case "--json": json = true; break;
                default: throw new ArgumentException($"unknown argument '{args[i]}'.\n{Usage}");
            }
        }

        model ??= Environment.GetEnvironmentVariable("MANAGEDCLIP_SYNTH_DIR") is { Length: > 0 } fromEnvironment
            ? fromEnvironment
            : Directory.Exists(DefaultModelDirectory)
                ? DefaultModelDirectory
                : throw new ArgumentException($"no model folder: pass --model DIR or set MANAGEDCLIP_SYNTH_DIR " +
                    "(make a full-size synthetic one with `managedclip synth --out DIR --vocab path/to/vocab.txt`).\n" + Usage);
        onnx ??= model;
        foreach (var graph in new[] { "vision.onnx", "text.onnx" })
            if (!File.Exists(Path.Combine(onnx, graph)))
                throw new FileNotFoundException($"'{Path.Combine(onnx, graph)}' does not exist: export the towers with " +
                    "`dotnet run -c Release --project benchmarks/ManagedClip.Benchmarks -- onnx-export --weights " +
                    $"{Path.Combine(model, "model.safetensors")} --out DIR` and pass --onnx DIR.");
        if (image is not null && !File.Exists(image)) throw new FileNotFoundException($"image '{image}' does not exist.", image);
        return new ColdStartOptions(model, onnx, image, runs, json, processes, builds, precision);
    }
}
