using System.CommandLine;
using ManagedClip.IO;
using ManagedClip.IO.Distribution;
using ManagedClip.IO.Formats;
using ManagedClip.Tokenization;

namespace ManagedClip.Cli;

internal static partial class CliApp
{
    private static Command EmbedCommand(TextWriter output, TextWriter error)
    {
        var model = ModelOption();
        var weights = WeightsOption();
        var images = new Option<string[]>("--image") { Description = "Image files to embed.", AllowMultipleArgumentsPerToken = true };
        var texts = new Option<string[]>("--text") { Description = "Texts to embed.", AllowMultipleArgumentsPerToken = true };
        var outFile = new Option<string?>("--out") { Description = "Write a .safetensors file (tensor \"embeddings\" [N, E], inputs in its metadata) and print {\"out\", \"count\", \"dim\", \"kind\"}." };
        var force = new Option<bool>("--force") { Description = "Replace an existing --out file." };
        var command = new Command("embed", "L2-normalised embeddings: JSON array [{\"input\", \"embedding\"}] in input order, or a safetensors file.")
        {
            model, weights, images, texts, outFile, force,
        };
        command.SetAction(parse =>
        {
            var imagePaths = parse.GetValue(images) ?? [];
            var textValues = parse.GetValue(texts) ?? [];
            if ((imagePaths.Length == 0) == (textValues.Length == 0))
                throw new UsageException("give either --image PATH... or --text TEXT... (one kind per call)");
            string? outPath = parse.GetValue(outFile);
            if (outPath != null && File.Exists(outPath) && !parse.GetValue(force))
                throw new UsageException($"{outPath} exists; pass --force to replace it");

            var clock = System.Diagnostics.Stopwatch.StartNew();
            using var clip = LoadModel(parse, model, weights, error);
            var loaded = clock.Elapsed;
            bool isImage = imagePaths.Length > 0;
            var inputs = isImage ? imagePaths : textValues;
            float[][] embeddings;
            if (isImage && Environment.GetEnvironmentVariable(TimingVariable) == "1")
                embeddings = EmbedImagesTimed(clip, imagePaths, loaded, error);
            else
                embeddings = isImage
                    ? clip.EmbedImages(imagePaths.Select(ImageInput.FromFile).ToList())
                    : clip.EmbedTexts(textValues);

            if (outPath != null)
            {
                EmbeddingFile.Write(outPath, isImage ? "image" : "text", inputs, embeddings, clip.EmbeddingSize, clip.Source);
                WriteJson(output, writer =>
                {
                    writer.WriteStartObject();
                    writer.WriteString("out", outPath);
                    writer.WriteNumber("count", embeddings.Length);
                    writer.WriteNumber("dim", clip.EmbeddingSize);
                    writer.WriteString("kind", isImage ? "image" : "text");
                    writer.WriteString("precision", PrecisionName(clip.Precision));
                    writer.WriteEndObject();
                });
                return 0;
            }
            WriteJson(output, writer =>
            {
                writer.WriteStartArray();
                for (int i = 0; i < inputs.Length; i++)
                {
                    writer.WriteStartObject();
                    writer.WriteString("input", inputs[i]);
                    writer.WriteStartArray("embedding");
                    foreach (var v in embeddings[i]) writer.WriteNumberValue(v);
                    writer.WriteEndArray();
                    writer.WriteString("precision", PrecisionName(clip.Precision));
                    writer.WriteEndObject();
                }
                writer.WriteEndArray();
            });
            return 0;
        });
        return command;
    }

    /// <summary>With <c>MANAGEDCLIP_TIMING=1</c>, <c>embed --image</c> reports its load and per-pass times on stderr.</summary>
    public const string TimingVariable = "MANAGEDCLIP_TIMING";

    /// <summary>
    /// Embeds in passes of eight (the model's own pass size, so the result is the same) and reports each pass's wall
    /// time as one JSON line on stderr: <c>{"timing": {"load_ms", "pass_ms": [...], "images_per_pass": 8}}</c>.
    /// The benchmark comparing the native AOT and JIT builds reads it (benchmarks/aot/compare.py).
    /// </summary>
    private static float[][] EmbedImagesTimed(ClipModel clip, string[] paths, TimeSpan loaded, TextWriter error)
    {
        const int perPass = 8;
        var rows = new List<float[]>();
        var passes = new List<double>();
        for (int first = 0; first < paths.Length; first += perPass)
        {
            var clock = System.Diagnostics.Stopwatch.StartNew();
            rows.AddRange(clip.EmbedImages(paths.Skip(first).Take(perPass).Select(ImageInput.FromFile).ToList()));
            passes.Add(clock.Elapsed.TotalMilliseconds);
        }
        WriteJson(error, writer =>
        {
            writer.WriteStartObject();
            writer.WriteStartObject("timing");
            writer.WriteNumber("load_ms", Math.Round(loaded.TotalMilliseconds, 1));
            writer.WriteStartArray("pass_ms");
            foreach (var ms in passes) writer.WriteNumberValue(Math.Round(ms, 1));
            writer.WriteEndArray();
            writer.WriteNumber("images_per_pass", perPass);
            writer.WriteString("kernel_path", Kernels.KernelPaths.Best.ToString());
            writer.WriteEndObject();
            writer.WriteEndObject();
        });
        return rows.ToArray();
    }

    private static Command TokenizeCommand(TextWriter output, TextWriter error)
    {
        var model = ModelOption();
        var tokens = new Option<bool>("--tokens") { Description = "Print the WordPiece strings ([CLS], this, ##s, …, [SEP]) instead of their ids." };
        var texts = new Argument<string[]>("TEXT") { Description = "Texts to tokenize.", Arity = ArgumentArity.OneOrMore };
        var command = new Command("tokenize", "Tokens as the text tower sees them: JSON array of id arrays (or, with --tokens, of WordPiece strings), [CLS] … [SEP], truncated to the context length, unpadded.")
        {
            model, tokens, texts,
        };
        command.SetAction(parse =>
        {
            // Only the vocabulary and config are needed: the weights are not loaded.
            var directory = ModelDirectory.Resolve(FirstUse.ModelFolder(parse.GetValue(model), error));
            var tokenizer = new OpenClipBertTokenizer(directory.VocabularyPath, directory.Config.Text.ContextLength);
            var values = parse.GetValue(texts)!;
            bool asStrings = parse.GetValue(tokens);
            WriteJson(output, writer =>
            {
                writer.WriteStartArray();
                foreach (var text in values)
                {
                    writer.WriteStartArray();
                    if (asStrings)
                        foreach (var piece in tokenizer.TokenStrings(text)) writer.WriteStringValue(piece);
                    else
                        foreach (var id in tokenizer.Encode(text)) writer.WriteNumberValue(id);
                    writer.WriteEndArray();
                }
                writer.WriteEndArray();
            });
            return 0;
        });
        return command;
    }

    private static Command DownloadCommand(TextWriter output, TextWriter error)
    {
        var outDir = new Option<string?>("--out") { Description = $"Target folder (default {CachePaths.DownloadDirectory})." };
        var command = new Command("download",
            "Fetch the real BiomedCLIP files from Hugging Face into the cache (what any command does on first use when no " +
            "model is found): resumable, retried, SHA-256 verified against weights/manifest.json before a file appears. " +
            "Honours HF_ENDPOINT (a mirror), HF_TOKEN (or the huggingface-cli login token) and HF_HUB_OFFLINE=1. " +
            "Prints {\"folder\", \"files\": [{\"name\", \"path\", \"status\": \"present\"|\"fetched\"}]}.")
        {
            outDir,
        };
        command.SetAction(async (parse, cancel) =>
        {
            var folder = Path.GetFullPath(parse.GetValue(outDir) ?? CachePaths.DownloadDirectory);
            var results = await FirstUse.DownloadAsync(folder, error, cancel);
            WriteJson(output, writer =>
            {
                writer.WriteStartObject();
                writer.WriteString("folder", folder);
                writer.WriteStartArray("files");
                foreach (var r in results)
                {
                    writer.WriteStartObject();
                    writer.WriteString("name", r.File.Name);
                    writer.WriteString("path", r.Path);
                    writer.WriteString("status", r.AlreadyComplete ? "present" : "fetched");
                    writer.WriteEndObject();
                }
                writer.WriteEndArray();
                writer.WriteEndObject();
            });
            return 0;
        });
        return command;
    }

    private static Command ConvertCommand(TextWriter output)
    {
        var input = new Argument<string>("IN") { Description = "PyTorch checkpoint (open_clip_pytorch_model.bin)." };
        var result = new Argument<string>("OUT") { Description = "safetensors file to write." };
        var force = new Option<bool>("--force") { Description = "Replace an existing OUT." };
        var command = new Command("convert", "Convert a torch zip checkpoint to safetensors (read without executing anything; every tensor kept). Prints {\"out\", \"tensors\"}.")
        {
            input, result, force,
        };
        command.SetAction(parse =>
        {
            int count = CheckpointConverter.Convert(parse.GetValue(input)!, parse.GetValue(result)!, parse.GetValue(force));
            WriteJson(output, writer =>
            {
                writer.WriteStartObject();
                writer.WriteString("out", parse.GetValue(result));
                writer.WriteNumber("tensors", count);
                writer.WriteEndObject();
            });
            return 0;
        });
        return command;
    }

    private static Command SynthCommand(TextWriter output, TextWriter error)
    {
        var outDir = new Option<string>("--out") { Description = "Folder to write the model into.", Required = true };
        var vocab = new Option<string?>("--vocab") { Description = "vocab.txt to copy into the folder (text commands need one)." };
        var force = new Option<bool>("--force") { Description = "Replace existing files in the folder." };
        var command = new Command("synth", "Write a full-size BiomedCLIP model directory with the reproducible synthetic weights (for benchmarks and parity tests). Prints {\"model\", \"vocab\"}.")
        {
            outDir, vocab, force,
        };
        command.SetAction(parse =>
        {
            string dir = parse.GetValue(outDir)!;
            SyntheticWeights.WriteModelDirectory(dir, parse.GetValue(vocab), parse.GetValue(force));
            if (parse.GetValue(vocab) == null) error.WriteLine("managedclip: no vocab.txt written: pass --vocab FILE for the text commands");
            WriteJson(output, writer =>
            {
                writer.WriteStartObject();
                writer.WriteString("model", Path.GetFullPath(dir));
                writer.WriteBoolean("vocab", parse.GetValue(vocab) != null);
                writer.WriteEndObject();
            });
            return 0;
        });
        return command;
    }

    private static Command PrepareCommand(TextWriter output, TextWriter error)
    {
        var model = ModelOption();
        var weights = WeightsOption();
        var packedDir = new Option<string?>("--packed-dir")
        {
            Description = "Folder for the packed-weights file (default: next to the weights if writable, else ~/.cache/managedclip/packed-weights; " +
                          "other commands read $" + PackedDirectoryVariable + ").",
        };
        var precision = new Option<string>(PrecisionOptionName)
        {
            Description = "The precision the file is for (each has its own file): fp32 (the default), bf16, int8, or all three.",
            DefaultValueFactory = _ => "fp32",
        };
        precision.AcceptOnlyFromAmong("fp32", "bf16", "int8", "all");
        var command = new Command("prepare", "Build the packed-weights file ahead of time (every later load maps it instead of packing ~700 MB), " +
            "or check every panel of an existing one and rebuild it if it is damaged or stale. Prints {\"precision\", \"path\", \"size\", " +
            "\"seconds\", \"built\", \"source_sha256\"}; with --precision all, an array of three.")
        {
            model, weights, packedDir, precision,
        };
        command.SetAction(parse =>
        {
            string asked = parse.GetValue(precision)!;
            var directory = ModelDirectory.Resolve(FirstUse.ModelFolder(parse.GetValue(model), error), parse.GetValue(weights));
            var prepared = new List<PreparedWeights>();
            foreach (var mode in asked == "all" ? [ClipPrecision.Float32, ClipPrecision.BFloat16, ClipPrecision.Int8] : new[] { PrecisionOf(parse) })
            {
                var options = WithPackedWeightsSetting(new ClipModelOptions { WeightsFile = parse.GetValue(weights), Precision = mode });
                if (parse.GetValue(packedDir) is { } folder) options.PackedWeightsDirectory = folder;
                prepared.Add(PackedWeightsCache.Prepare(directory, options, note => error.WriteLine($"managedclip: {OneLine(note)}")));
            }
            WriteJson(output, writer =>
            {
                if (asked == "all") writer.WriteStartArray();
                foreach (var file in prepared)
                {
                    writer.WriteStartObject();
                    writer.WriteString("precision", PrecisionName(file.Precision));
                    writer.WriteString("path", file.Path);
                    writer.WriteNumber("size", file.Bytes);
                    writer.WriteNumber("seconds", Math.Round(file.Seconds, 3));
                    writer.WriteBoolean("built", file.Built);
                    writer.WriteString("source_sha256", file.SourceSha256);
                    writer.WriteEndObject();
                }
                if (asked == "all") writer.WriteEndArray();
            });
            return 0;
        });
        return command;
    }
}
