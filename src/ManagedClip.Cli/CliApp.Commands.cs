using System.CommandLine;
using ManagedClip.IO;
using ManagedClip.IO.Distribution;
using ManagedClip.IO.Formats;
using ManagedClip.Tokenization;

namespace ManagedClip.Cli;

internal static partial class CliApp
{
    private static Command EmbedCommand(TextWriter output)
    {
        var model = ModelOption();
        var weights = WeightsOption();
        var images = new Option<string[]>("--image") { Description = "Image files to embed.", AllowMultipleArgumentsPerToken = true };
        var texts = new Option<string[]>("--text") { Description = "Texts to embed.", AllowMultipleArgumentsPerToken = true };
        var outFile = new Option<string?>("--out") { Description = "Write a .safetensors file (tensor \"embeddings\" [N, E], inputs in its metadata) instead of JSON." };
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

            using var clip = LoadModel(parse, model, weights);
            bool isImage = imagePaths.Length > 0;
            var inputs = isImage ? imagePaths : textValues;
            var embeddings = isImage
                ? clip.EmbedImages(imagePaths.Select(ImageInput.FromFile).ToList())
                : clip.EmbedTexts(textValues);

            if (outPath != null)
            {
                EmbeddingFile.Write(outPath, isImage ? "image" : "text", inputs, embeddings, clip.EmbeddingSize, clip.Source);
                output.WriteLine($"wrote {embeddings.Length} embeddings [{embeddings.Length}, {clip.EmbeddingSize}] to {outPath}");
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
                    writer.WriteEndObject();
                }
                writer.WriteEndArray();
            });
            return 0;
        });
        return command;
    }

    private static Command TokenizeCommand(TextWriter output)
    {
        var model = ModelOption();
        var texts = new Argument<string[]>("TEXT") { Description = "Texts to tokenize.", Arity = ArgumentArity.OneOrMore };
        var command = new Command("tokenize", "Token ids as the text tower sees them: JSON array of id arrays, [CLS] … [SEP], truncated to the context length, unpadded.")
        {
            model, texts,
        };
        command.SetAction(parse =>
        {
            // Only the vocabulary and config are needed: the weights are not loaded.
            var directory = ModelDirectory.Resolve(parse.GetValue(model));
            var tokenizer = new OpenClipBertTokenizer(directory.VocabularyPath, directory.Config.Text.ContextLength);
            var ids = parse.GetValue(texts)!.Select(tokenizer.Encode).ToList();
            WriteJson(output, writer =>
            {
                writer.WriteStartArray();
                foreach (var row in ids)
                {
                    writer.WriteStartArray();
                    foreach (var id in row) writer.WriteNumberValue(id);
                    writer.WriteEndArray();
                }
                writer.WriteEndArray();
            });
            return 0;
        });
        return command;
    }

    private static Command IndexCommand(TextWriter output, TextWriter error)
    {
        var model = ModelOption();
        var weights = WeightsOption();
        var folder = new Argument<string>("FOLDER") { Description = "Folder of images, searched recursively." };
        var outFile = new Option<string>("--out") { Description = "Index file to create or update.", Required = true };
        var command = new Command("index", "Embed every image under a folder into an index file; unchanged files are not embedded again, unreadable ones are reported and skipped.")
        {
            model, weights, folder, outFile,
        };
        command.SetAction(parse =>
        {
            string root = parse.GetValue(folder)!;
            if (!Directory.Exists(root)) throw new DirectoryNotFoundException($"{root}: no such folder");
            using var clip = LoadModel(parse, model, weights);
            var report = ImageIndex.Build(clip, root, parse.GetValue(outFile)!, new CountProgress(error, "indexing"));
            WriteJson(output, report.Write);
            return 0;
        });
        return command;
    }

    private static Command SearchCommand(TextWriter output)
    {
        var model = ModelOption();
        var weights = WeightsOption();
        var index = new Option<string>("--index") { Description = "Index file made by 'managedclip index'.", Required = true };
        var text = new Option<string?>("--text") { Description = "Find images matching this text." };
        var image = new Option<string?>("--image") { Description = "Find images similar to this image." };
        var top = new Option<int>("-k", "--top") { Description = "Number of hits.", DefaultValueFactory = _ => 10 };
        var command = new Command("search", "Rank the images of an index against a text or an image: JSON array [{\"path\", \"score\"}], best first; score is the cosine similarity.")
        {
            model, weights, index, text, image, top,
        };
        command.SetAction(parse =>
        {
            string? query = parse.GetValue(text), queryImage = parse.GetValue(image);
            if ((query == null) == (queryImage == null)) throw new UsageException("give exactly one of --text or --image");
            int k = parse.GetValue(top);
            if (k < 1) throw new UsageException("-k must be at least 1");
            var loaded = ImageIndex.Load(parse.GetValue(index)!);
            using var clip = LoadModel(parse, model, weights);
            if (loaded.EmbeddingSize != clip.EmbeddingSize)
                throw new InvalidDataException($"{parse.GetValue(index)}: made with {loaded.EmbeddingSize}-d embeddings, this model has {clip.EmbeddingSize}");
            var queryEmbedding = query != null ? clip.EmbedText(query) : clip.EmbedImage(queryImage!);
            var hits = loaded.Search(queryEmbedding, k);
            WriteJson(output, writer =>
            {
                writer.WriteStartArray();
                foreach (var (path, score) in hits)
                {
                    writer.WriteStartObject();
                    writer.WriteString("path", path);
                    writer.WriteNumber("score", score);
                    writer.WriteEndObject();
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
        var command = new Command("download", "Fetch the real BiomedCLIP files from Hugging Face (resumable, SHA-256 verified against weights/manifest.json).")
        {
            outDir,
        };
        command.SetAction(async (parse, cancel) =>
        {
            var bar = new ProgressBar(error, redrawInPlace: ReferenceEquals(error, Console.Error) && !Console.IsErrorRedirected);
            IReadOnlyList<DownloadResult> results;
            try
            {
                results = await new ModelDownloader().DownloadAllAsync(parse.GetValue(outDir), bar, cancel);
            }
            finally
            {
                bar.Complete();
            }
            foreach (var r in results)
                output.WriteLine($"{(r.AlreadyComplete ? "present" : "fetched")}  {r.Path}");
            return 0;
        });
        return command;
    }

    private static Command ConvertCommand(TextWriter output)
    {
        var input = new Argument<string>("IN") { Description = "PyTorch checkpoint (open_clip_pytorch_model.bin)." };
        var result = new Argument<string>("OUT") { Description = "safetensors file to write." };
        var force = new Option<bool>("--force") { Description = "Replace an existing OUT." };
        var command = new Command("convert", "Convert a torch zip checkpoint to safetensors (read without executing anything; every tensor kept).")
        {
            input, result, force,
        };
        command.SetAction(parse =>
        {
            int count = CheckpointConverter.Convert(parse.GetValue(input)!, parse.GetValue(result)!, parse.GetValue(force));
            output.WriteLine($"wrote {count} tensors to {parse.GetValue(result)}");
            return 0;
        });
        return command;
    }

    private static Command SynthCommand(TextWriter output)
    {
        var outDir = new Option<string>("--out") { Description = "Folder to write the model into.", Required = true };
        var vocab = new Option<string?>("--vocab") { Description = "vocab.txt to copy into the folder (text commands need one)." };
        var force = new Option<bool>("--force") { Description = "Replace existing files in the folder." };
        var command = new Command("synth", "Write a full-size BiomedCLIP model directory with the reproducible synthetic weights (for benchmarks and parity tests).")
        {
            outDir, vocab, force,
        };
        command.SetAction(parse =>
        {
            string dir = parse.GetValue(outDir)!;
            SyntheticWeights.WriteModelDirectory(dir, parse.GetValue(vocab), parse.GetValue(force));
            output.WriteLine($"wrote synthetic BiomedCLIP to {dir}" + (parse.GetValue(vocab) == null ? " (no vocab.txt: pass --vocab for text commands)" : ""));
            return 0;
        });
        return command;
    }
}

/// <summary>"indexing 12/340" on one redrawn line (terminal) or every 10% (logs).</summary>
internal sealed class CountProgress(TextWriter output, string what)
{
    private readonly bool redraw = ReferenceEquals(output, Console.Error) && !Console.IsErrorRedirected;
    private int lastDecile = -1;

    public void Report(int done, int total)
    {
        if (redraw)
        {
            output.Write($"\r{what} {done}/{total}");
            if (done == total) output.WriteLine();
            return;
        }
        int decile = total == 0 ? 10 : done * 10 / total;
        if (decile == lastDecile) return;
        lastDecile = decile;
        output.WriteLine($"{what} {done}/{total}");
    }
}
