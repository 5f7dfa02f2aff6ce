using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Invocation;
using System.CommandLine.Parsing;
using System.Text.Json;
using ManagedClip.IO;
using ManagedClip.IO.Distribution;
using ManagedClip.Retrieval;

namespace ManagedClip.Cli;

/// <summary>
/// The <c>managedclip</c> command line. Commands, options and JSON output are a contract for scripts:
/// keep them stable and documented here and in the README. Stdout carries only machine-readable output
/// (JSON, JSON lines or CSV); progress, notes and errors go to stderr.
/// Exit codes: 0 done, 1 bad input (a file, a model, an image that failed), 2 a command line that cannot work.
/// </summary>
internal static partial class CliApp
{
    /// <summary>Runs one command line; errors go to <paramref name="error"/> as one line with a non-zero exit code.</summary>
    public static int Run(string[] args, TextWriter output, TextWriter error)
    {
        var examples = new Dictionary<Command, string[]>();
        // A plain Command named "managedclip" as the root, so help shows the installed command's name rather than
        // the assembly's (ManagedClip.Cli).
        var help = new HelpOption();
        var root = new Command("managedclip", "BiomedCLIP (microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224) in pure managed C#.")
        {
            help,
            new VersionOption(),
            ClassifyCommand(output, error),
            ScoreCommand(output, error),
            EmbedCommand(output, error),
            PreprocessCommand(output, error),
            TokenizeCommand(output, error),
            IndexCommand(output, error),
            MergeCommand(output, error),
            SearchCommand(output, error),
            ServeCommand(output, error),
            DownloadCommand(output, error),
            ConvertCommand(output),
            SynthCommand(output, error),
            PrepareCommand(output, error),
        };
        // Every command that loads the model (the ones that take --weights) takes --precision too; prepare has its
        // own, which also takes "all".
        foreach (var command in root.Subcommands.Where(c => c.Name != "prepare" && c.Options.Any(o => o.Name == "--weights")))
            command.Add(PrecisionOption());
        examples[root] = RootExamples;
        foreach (var command in root.Subcommands) examples[command] = Examples[command.Name];
        help.Action = new HelpWithExamples((HelpAction)help.Action!, examples);

        // No response files: a text, label or path that starts with '@' is meant literally.
        var parse = root.Parse(args, new ParserConfiguration { ResponseFileTokenReplacer = null });
        bool helpAsked = parse.Action is HelpWithExamples;
        var problems = helpAsked ? [] : parse.Errors.Select(UsageProblem).Concat(UnknownOptions(parse, args)).ToList();
        if (problems.Count > 0)
        {
            // A command line that does not parse is a usage error (exit 2), said in one line per problem.
            foreach (var problem in problems) error.WriteLine($"managedclip: {OneLine(problem)}");
            var command = parse.CommandResult.Command;
            error.WriteLine($"managedclip: see 'managedclip {(command == root ? "" : command.Name + " ")}--help'");
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

    /// <summary>
    /// Words that look like options but are not one of the command's: System.CommandLine would take them as a
    /// positional value (an image path, a text), so <c>--top 3</c> for <c>--top-k 3</c> would become a file that
    /// does not exist. After <c>--</c> everything is a value, as usual (<c>managedclip tokenize -- -1 mg</c>).
    /// </summary>
    private static IEnumerable<string> UnknownOptions(ParseResult parse, string[] args)
    {
        int doubleDash = Array.IndexOf(args, "--");
        var positional = parse.CommandResult.Children.OfType<ArgumentResult>().SelectMany(a => a.Tokens).Select(t => t.Value);
        foreach (var value in positional.Distinct())
        {
            if (!LooksLikeOption(value)) continue;
            int at = Array.IndexOf(args, value);
            if (doubleDash < 0 || at < doubleDash)
                yield return $"unknown option '{value}' for '{parse.CommandResult.Command.Name}' (a value that starts with '-' goes after '--')";
        }
    }

    // "-k", "--top", "--top-k=3": a dash, a letter (or a second dash and a letter), no spaces; "-5", "- item" are values.
    private static bool LooksLikeOption(string value) =>
        value.Length >= 2 && value[0] == '-' && !value.Contains(' ') &&
        (char.IsAsciiLetter(value[1]) || (value[1] == '-' && value.Length >= 3 && char.IsAsciiLetter(value[2])));


    /// <summary>Largest request file or standard input <c>score</c> reads (its images are inline base64 or paths).</summary>
    private const long MaxRequestFileBytes = 256L << 20;

    private static string OneLine(string message) => UserText.OneLine(message);

    // The parser lists allowed values on lines of their own ("… Must be one of:\n\t'fp32'\n\t'bf16'"): joined here
    // into one line, led by the option it is about.
    private static string UsageProblem(ParseError problem)
    {
        var lines = problem.Message.Split('\n', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        string message = lines.Length <= 1 ? problem.Message : lines[0] + " " + string.Join(", ", lines[1..]);
        return problem.SymbolResult is OptionResult { Option.Name: var name } && !message.Contains(name, StringComparison.Ordinal)
            ? $"{name}: {message}"
            : message;
    }

    // Options shared by every command that loads the model.
    private static Option<string?> ModelOption() => new("--model")
    {
        Description = "Model directory (open_clip_config.json, weights, vocab.txt). Default: $MANAGEDCLIP_MODEL, " +
                      "the download cache, the Hugging Face hub cache; if none has the model, it is downloaded there " +
                      "on first use (see 'managedclip download --help').",
    };

    private static Option<string?> WeightsOption() => new("--weights")
    {
        Description = "Use this weights file (.bin or .safetensors) with the model directory's configs.",
    };

    private const string PrecisionOptionName = "--precision";

    private static Option<string> PrecisionOption()
    {
        var option = new Option<string>(PrecisionOptionName)
        {
            Description = "Number format of the block weights: fp32 (exact, the default), bf16 (half the weight memory) " +
                          "or int8 (a quarter; fastest). docs/PRECISION.md has the measured accuracy of each.",
            DefaultValueFactory = _ => "fp32",
        };
        option.AcceptOnlyFromAmong("fp32", "bf16", "int8");
        return option;
    }

    /// <summary>The --precision value naming <paramref name="precision"/>: what the JSON outputs report as "precision".</summary>
    internal static string PrecisionName(ClipPrecision precision) => precision switch
    {
        ClipPrecision.BFloat16 => "bf16",
        ClipPrecision.Int8 => "int8",
        _ => "fp32",
    };

    private static ClipPrecision PrecisionOf(ParseResult parse) => parse.GetValue<string>(PrecisionOptionName) switch
    {
        "bf16" => ClipPrecision.BFloat16,
        "int8" => ClipPrecision.Int8,
        _ => ClipPrecision.Float32,
    };

    /// <summary>Writes one JSON value and a newline.</summary>
    private static void WriteJson(TextWriter output, Action<Utf8JsonWriter> write) => CliJson.WriteLine(output, write);

    private static ClipModel LoadModel(ParseResult parse, Option<string?> model, Option<string?> weights, TextWriter error) =>
        ClipModel.Load(WithPackedWeightsSetting(new ClipModelOptions
        {
            ModelDirectory = FirstUse.ModelFolder(parse.GetValue(model), error),
            WeightsFile = parse.GetValue(weights),
            Notes = note => error.WriteLine($"managedclip: {OneLine(note)}"),
            Precision = PrecisionOf(parse),
        }));

    /// <summary><c>$MANAGEDCLIP_PACKED_DIR</c>: the folder for packed-weights files, or <c>off</c> to pack in memory.</summary>
    public const string PackedDirectoryVariable = "MANAGEDCLIP_PACKED_DIR";

    private static ClipModelOptions WithPackedWeightsSetting(ClipModelOptions options)
    {
        var setting = Environment.GetEnvironmentVariable(PackedDirectoryVariable);
        if (string.Equals(setting, "off", StringComparison.OrdinalIgnoreCase)) options.UsePackedWeightsFile = false;
        else if (!string.IsNullOrEmpty(setting)) options.PackedWeightsDirectory = setting;
        return options;
    }

    private static Command ScoreCommand(TextWriter output, TextWriter error)
    {
        var model = ModelOption();
        var weights = WeightsOption();
        var request = new Option<string>("--request") { Description = "Request JSON file in the model card's schema, or - for standard input.", Required = true };
        var command = new Command("score", "Answer a model-card scoring request ({\"input_data\": {\"columns\": [\"image\",\"text\"], \"data\": [[image, \"l1, l2\"], ...]}}) with [{\"probs\", \"labels\"}, ...]; " +
                                           "with several rows, a row whose image cannot be read is {\"labels\", \"error\"} in its place, the others go on, and the exit code is 1.")
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
                using var clip = LoadModel(parse, model, weights, error);
                string precision = PrecisionName(clip.Precision);
                if (rows.Count == 1)
                {
                    // One row: its image's error is the command's (exit 1, nothing on stdout), as before.
                    var result = clip.Classify([rows[0].Image], rows[0].Labels)[0];
                    WriteJson(output, writer => ScoringSchema.WriteResponse(writer, [result], precision));
                    return 0;
                }
                // Several rows, as the server's /score: a row whose image cannot be read or decoded is answered
                // {"labels", "error"} in its place, the others are scored, and the exit code says some failed.
                var answered = rows.Select(row => clip.ClassifyEach([row.Image], row.Labels, ClipModel.DefaultTemplate, CancellationToken.None)[0]).ToList();
                WriteJson(output, writer => ScoringSchema.WriteResponse(writer, rows, answered, precision));
                int failed = answered.Count(a => a.Error is not null);
                if (failed == 0) return 0;
                error.WriteLine($"managedclip: {failed} of {rows.Count} rows could not be scored (their objects carry \"error\")");
                return 1;
            }
        });
        return command;
    }

    private static Command ServeCommand(TextWriter output, TextWriter error)
    {
        var model = ModelOption();
        var weights = WeightsOption();
        var urls = new Option<string?>("--urls") { Description = $"Addresses to listen on, ';'-separated (port 0: any free port). Precedence: --urls, then --port, then $ASPNETCORE_URLS, then {ScoringServer.DefaultUrls}." };
        var port = new Option<int?>("--port") { Description = "Listen on http://127.0.0.1:PORT (loopback only; use --urls http://0.0.0.0:PORT for every interface)." };
        var index = new Option<string?>("--index") { Description = "An index made by 'managedclip index' for POST /search (and the page's search box)." };
        var maxRequest = new Option<int>("--max-request-mb") { Description = "Largest accepted request body, in MB.", DefaultValueFactory = _ => (int)(ScoringServer.DefaultMaxRequestBytes >> 20) };
        var maxQueue = new Option<int>("--max-queue") { Description = "Requests admitted at once (one runs the model, the rest wait); more get 503 with Retry-After.", DefaultValueFactory = _ => ModelWorkQueue.DefaultCapacity };
        var command = new Command("serve", "HTTP server: the web page at /, POST /classify, /embed, /search, /score (model card schema), /preprocess; " +
                                           "GET /healthz, /readyz, /metrics (Prometheus), /openapi/v1.json; one log line per request on stderr. " +
                                           "Prints {\"urls\": [...], \"model\"} on stdout once the model is loaded.")
        {
            model, weights, urls, port, index, maxRequest, maxQueue,
        };
        command.SetAction(async (parse, cancel) =>
        {
            int megabytes = parse.GetValue(maxRequest);
            if (megabytes < 1) throw new UsageException("--max-request-mb must be at least 1");
            int queueCapacity = parse.GetValue(maxQueue);
            if (queueCapacity < 1) throw new UsageException("--max-queue must be at least 1");
            string listen = ListenUrls(parse.GetValue(urls), parse.GetValue(port));

            // An index is opened and checked against the model's files before anything is loaded or listened on.
            string? indexPath = parse.GetValue(index);
            ImageIndexReader? reader = null;
            if (indexPath != null)
            {
                reader = ImageIndexReader.Open(indexPath);
                foreach (var warning in reader.Warnings) error.WriteLine($"managedclip: note: {warning}");
                reader.RequireModel(ModelIdentity.Of(ModelDirectory.Resolve(parse.GetValue(model), parse.GetValue(weights))));
            }

            // Listen first, load meanwhile: /healthz answers at once, /readyz once the model is in.
            var served = ServedModel.LoadInBackground(() => LoadModel(parse, model, weights, error), reader);
            await using var app = ScoringServer.Build(served, new ServerOptions { Urls = listen, MaxRequestBytes = (long)megabytes << 20, QueueCapacity = queueCapacity, WarmUp = true });
            try
            {
                await app.StartAsync(cancel);
                ClipModel clip;
                try
                {
                    // A failed load ends the command with the load's own one-line error, as every command reports it.
                    await served.Loaded.WaitAsync(cancel);
                    clip = served.Current!;
                    await app.Services.GetRequiredService<ServerWarmUp>().Done.WaitAsync(cancel);
                }
                catch (OperationCanceledException) when (cancel.IsCancellationRequested)
                {
                    return 130; // stopped (Ctrl+C) before the model was in
                }
                WriteJson(output, writer =>
                {
                    writer.WriteStartObject();
                    writer.WriteStartArray("urls");
                    foreach (var url in app.Urls) writer.WriteStringValue(url);
                    writer.WriteEndArray();
                    writer.WriteString("model", clip.Source);
                    writer.WriteString("precision", PrecisionName(clip.Precision));
                    writer.WriteEndObject();
                });
                error.WriteLine($"managedclip: serving {clip.Source} on {string.Join(", ", app.Urls)} (Ctrl+C stops)");
                await app.WaitForShutdownAsync(cancel);
                return 0;
            }
            finally
            {
                if (served.Loaded.IsCompletedSuccessfully) served.Current?.Dispose();
            }
        });
        return command;
    }

    /// <summary>--urls, else --port on loopback, else $ASPNETCORE_URLS (as every ASP.NET Core app reads it), else the default.</summary>
    internal static string ListenUrls(string? urls, int? port)
    {
        if (!string.IsNullOrWhiteSpace(urls)) return urls;
        if (port is { } p)
        {
            if (p is < 0 or > 65535) throw new UsageException($"--port {p} is not a TCP port (0 to 65535; 0 picks a free one)");
            return $"http://127.0.0.1:{p}";
        }
        string? environment = Environment.GetEnvironmentVariable("ASPNETCORE_URLS");
        return string.IsNullOrWhiteSpace(environment) ? ScoringServer.DefaultUrls : environment;
    }

    /// <summary>Help as System.CommandLine writes it, then the command's examples.</summary>
    private sealed class HelpWithExamples(HelpAction help, Dictionary<Command, string[]> examples) : SynchronousCommandLineAction
    {
        public override int Invoke(ParseResult parseResult)
        {
            int code = help.Invoke(parseResult);
            var output = parseResult.InvocationConfiguration.Output;
            if (examples.TryGetValue(parseResult.CommandResult.Command, out var lines) && lines.Length > 0)
            {
                output.WriteLine("Examples:");
                foreach (var line in lines) output.WriteLine("  " + line);
                output.WriteLine();
            }
            return code;
        }
    }
}
