using System.CommandLine;
using System.CommandLine.Help;
using System.Text;
using System.Text.Json;
using ManagedClip.IO;

namespace ManagedClip.Cli;

/// <summary>
/// The <c>managedclip</c> command line. Commands, options and JSON output are a contract for scripts:
/// keep them stable and documented here and in the README.
/// </summary>
internal static partial class CliApp
{
    /// <summary>Runs one command line; errors go to <paramref name="error"/> as one line with a non-zero exit code.</summary>
    public static int Run(string[] args, TextWriter output, TextWriter error)
    {
        // A plain Command named "managedclip" as the root, so help shows the installed command's name rather than
        // the assembly's (ManagedClip.Cli).
        var root = new Command("managedclip", "BiomedCLIP (microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224) in pure managed C#.")
        {
            new HelpOption(),
            new VersionOption(),
            ClassifyCommand(output),
            ScoreCommand(output),
            EmbedCommand(output),
            TokenizeCommand(output),
            IndexCommand(output, error),
            SearchCommand(output),
            ServeCommand(output),
            DownloadCommand(output, error),
            ConvertCommand(output),
            SynthCommand(output),
        };
        var parse = root.Parse(args);
        if (parse.Errors.Count > 0 && !args.Any(a => a is "-h" or "--help" or "-?"))
        {
            // A command line that does not parse is a usage error (exit 2), said in one line per problem.
            foreach (var problem in parse.Errors) error.WriteLine($"managedclip: {OneLine(problem.Message)}");
            error.WriteLine("managedclip: see 'managedclip --help'");
            return 2;
        }
        try
        {
            return parse.Invoke(new InvocationConfiguration { Output = output, Error = error, EnableDefaultExceptionHandler = false });
        }
        catch (UsageException e)
        {
            error.WriteLine($"managedclip: {CliErrors.Describe(e)}");
            return 2;
        }
        catch (Exception e) when (CliErrors.IsUserError(e))
        {
            error.WriteLine($"managedclip: {CliErrors.Describe(e)}");
            return 1;
        }
        catch (Exception e)
        {
            error.WriteLine($"managedclip: internal error ({e.GetType().Name}): {OneLine(e.Message)}");
            if (Environment.GetEnvironmentVariable("MANAGEDCLIP_DEBUG") == "1") error.WriteLine(e);
            else error.WriteLine("managedclip: set MANAGEDCLIP_DEBUG=1 for details and please report it.");
            return 70;
        }
    }

    /// <summary>Largest request file or standard input <c>score</c> reads (its images are inline base64 or paths).</summary>
    private const long MaxRequestFileBytes = 256L << 20;

    private static string OneLine(string message) => UserText.OneLine(message);

    // Options shared by every command that loads the model.
    private static Option<string?> ModelOption() => new("--model")
    {
        Description = "Model directory (open_clip_config.json, weights, vocab.txt). Default: $MANAGEDCLIP_MODEL, " +
                      "the 'managedclip download' cache, then the Hugging Face hub cache.",
    };

    private static Option<string?> WeightsOption() => new("--weights")
    {
        Description = "Use this weights file (.bin or .safetensors) with the model directory's configs.",
    };

    /// <summary>Writes a JSON value followed by a newline.</summary>
    private static void WriteJson(TextWriter output, Action<Utf8JsonWriter> write)
    {
        var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = false })) write(writer);
        output.WriteLine(Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length));
    }

    private static ClipModel LoadModel(ParseResult parse, Option<string?> model, Option<string?> weights) =>
        ClipModel.Load(parse.GetValue(model), parse.GetValue(weights));

    private static Command ClassifyCommand(TextWriter output)
    {
        var model = ModelOption();
        var weights = WeightsOption();
        var labels = new Option<string>("--labels") { Description = "Comma-separated candidate labels, e.g. \"brain MRI, chest X-ray\".", Required = true };
        var template = new Option<string>("--template") { Description = "Prompt template; {} is replaced by each label.", DefaultValueFactory = _ => ClipModel.DefaultTemplate };
        var images = new Argument<string[]>("IMAGE") { Description = "Image files.", Arity = ArgumentArity.OneOrMore };
        var command = new Command("classify", "Zero-shot classification: JSON array of {\"image\", \"labels\", \"probs\"}, one object per image, labels in the order given.")
        {
            model, weights, labels, template, images,
        };
        command.SetAction(parse =>
        {
            var labelList = ScoringSchema.SplitLabels(parse.GetValue(labels)!, "--labels");
            string tmpl = parse.GetValue(template)!;
            if (!tmpl.Contains("{}")) throw new UsageException("--template must contain {} where the label goes");
            var paths = parse.GetValue(images)!;
            using var clip = LoadModel(parse, model, weights);
            var results = clip.Classify(paths.Select(ImageInput.FromFile).ToList(), labelList, tmpl);
            WriteJson(output, writer =>
            {
                writer.WriteStartArray();
                for (int i = 0; i < paths.Length; i++) ClassifyOutput.WriteOne(writer, paths[i], results[i]);
                writer.WriteEndArray();
            });
            return 0;
        });
        return command;
    }

    private static Command ScoreCommand(TextWriter output)
    {
        var model = ModelOption();
        var weights = WeightsOption();
        var request = new Option<string>("--request") { Description = "Request JSON file in the model card's schema, or - for standard input.", Required = true };
        var command = new Command("score", "Answer a model-card scoring request ({\"input_data\": {\"columns\": [\"image\",\"text\"], \"data\": [[image, \"l1, l2\"], ...]}}) with [{\"probs\", \"labels\"}, ...].")
        {
            model, weights, request,
        };
        command.SetAction(parse =>
        {
            string source = parse.GetValue(request)!;
            string name = source == "-" ? "standard input" : UserText.Quote(source);
            JsonDocument document;
            try
            {
                // Read through the guarded path (a regular file, or standard input), capped, and checked as UTF-8
                // as Python's json.loads would decode it.
                byte[] bytes;
                if (source == "-")
                {
                    using var input = Console.OpenStandardInput();
                    bytes = GuardedFile.ReadCapped(input, MaxRequestFileBytes, name, "request");
                }
                else bytes = GuardedFile.ReadAllBytes(source, MaxRequestFileBytes, "request file");
                GuardedFile.DecodeUtf8(bytes, name, "request");
                document = JsonDocument.Parse(bytes);
            }
            catch (JsonException e)
            {
                throw new RequestException($"{name}: malformed JSON: {JsonErrors.Describe(e)}");
            }
            using (document)
            {
                var rows = ScoringSchema.ParseRequest(document.RootElement, allowFilePaths: true);
                using var clip = LoadModel(parse, model, weights);
                var results = rows.Select(row => clip.Classify([row.Image], row.Labels)[0]).ToList();
                WriteJson(output, writer => ScoringSchema.WriteResponse(writer, results));
            }
            return 0;
        });
        return command;
    }

    private static Command ServeCommand(TextWriter output)
    {
        var model = ModelOption();
        var weights = WeightsOption();
        var urls = new Option<string>("--urls") { Description = "Address to listen on.", DefaultValueFactory = _ => "http://127.0.0.1:8080" };
        var maxRequest = new Option<int>("--max-request-mb") { Description = "Largest accepted request body, in MB.", DefaultValueFactory = _ => (int)(ScoringServer.DefaultMaxRequestBytes >> 20) };
        var maxQueue = new Option<int>("--max-queue") { Description = "Requests admitted at once (one runs the model, the rest wait); more get 503 with Retry-After.", DefaultValueFactory = _ => ModelWorkQueue.DefaultCapacity };
        var command = new Command("serve", "HTTP scoring endpoint: POST /score (model card schema), POST /classify (multipart image + labels), GET /healthz.")
        {
            model, weights, urls, maxRequest, maxQueue,
        };
        command.SetAction(async (parse, cancel) =>
        {
            int megabytes = parse.GetValue(maxRequest);
            if (megabytes < 1) throw new UsageException("--max-request-mb must be at least 1");
            int queueCapacity = parse.GetValue(maxQueue);
            if (queueCapacity < 1) throw new UsageException("--max-queue must be at least 1");
            using var clip = LoadModel(parse, model, weights);
            var app = ScoringServer.Build(clip, parse.GetValue(urls)!, (long)megabytes << 20, queueCapacity);
            await app.StartAsync(cancel);
            output.WriteLine($"managedclip: serving {clip.Source} on {string.Join(", ", app.Urls)} (Ctrl+C stops)");
            await app.WaitForShutdownAsync(cancel);
            return 0;
        });
        return command;
    }
}
