using System.CommandLine;
using ManagedClip.Imaging;

namespace ManagedClip.Cli;

internal static partial class CliApp
{
    // Images per Classify call: the model's own pass size, so a bad image costs at most this many retried alone.
    private const int ImagesPerBatch = 8;

    private static Command ClassifyCommand(TextWriter output, TextWriter error)
    {
        var model = ModelOption();
        var weights = WeightsOption();
        var labels = new Option<string?>("--labels")
        {
            Description = "Comma-separated candidate labels, e.g. \"brain MRI, chest X-ray\". A label with a comma goes in " +
                          "double quotes: 'a, \"b, c\", d' (a quote inside quotes is doubled).",
        };
        var labelsFile = new Option<string?>("--labels-file") { Description = "UTF-8 file with one label per line (blank lines skipped; commas are part of the label)." };
        var template = new Option<string>("--template") { Description = "Prompt template; {} is replaced by each label.", DefaultValueFactory = _ => ClipModel.DefaultTemplate };
        var topK = new Option<int?>("--top-k") { Description = "Show only the N most probable labels of each image, best first (default: all, in the order given)." };
        var format = new Option<string>("--format")
        {
            Description = "json: one array; jsonl: one object per line; csv: image,label,prob,rank,error (one line per label).",
            DefaultValueFactory = _ => "json",
        };
        format.AcceptOnlyFromAmong(ClassifyOutput.Formats);
        var images = new Argument<string[]>("IMAGE") { Description = "Image files, or folders (searched recursively for image files, as 'index' does).", Arity = ArgumentArity.OneOrMore };
        var command = new Command("classify",
            "Zero-shot classification: one row per image, {\"image\", \"labels\", \"probs\"} (labels in the order given), " +
            "or {\"image\", \"error\"} for an image that failed; the others go on, and the exit code is 1 if any failed.")
        {
            model, weights, labels, labelsFile, template, topK, format, images,
        };
        command.SetAction(parse =>
        {
            var labelList = (parse.GetValue(labels), parse.GetValue(labelsFile)) switch
            {
                ({ } text, null) => LabelList.Parse(text),
                (null, { } file) => LabelList.ReadFile(file),
                (null, null) => throw new UsageException("give the candidate labels with --labels \"a, b, c\" or --labels-file FILE"),
                _ => throw new UsageException("give either --labels or --labels-file, not both"),
            };
            string tmpl = parse.GetValue(template)!;
            if (!tmpl.Contains("{}")) throw new UsageException("--template must contain {} where the label goes");
            int? k = parse.GetValue(topK);
            if (k < 1) throw new UsageException("--top-k must be at least 1");
            var paths = ImageFiles.Expand(parse.GetValue(images)!);
            if (paths.Count == 0) throw new UsageException("no image files under the folders given");

            using var clip = LoadModel(parse, model, weights, error);
            var writer = ClassifyOutput.For(parse.GetValue(format)!, output, k, PrecisionName(clip.Precision));
            var progress = paths.Count > ImagesPerBatch ? new CountProgress(error, "classifying") : null;
            int failed = 0;
            for (int first = 0; first < paths.Count; first += ImagesPerBatch)
            {
                foreach (var row in ClassifyBatch(clip, paths.Skip(first).Take(ImagesPerBatch).ToList(), labelList, tmpl))
                {
                    writer.Write(row);
                    if (row.Error is null) continue;
                    failed++;
                    error.WriteLine($"managedclip: {OneLine(row.Error)}");
                }
                progress?.Report(Math.Min(first + ImagesPerBatch, paths.Count), paths.Count);
            }
            writer.Finish();
            if (failed == 0) return 0;
            // With one image its own line says everything; with more, a count closes the list.
            if (paths.Count > 1) error.WriteLine($"managedclip: {failed} of {paths.Count} images could not be classified (their rows carry \"error\")");
            return 1;
        });
        return command;
    }

    /// <summary>
    /// Classifies a batch in one call; if an image in it is unreadable, classifies them one by one so that only
    /// that image's row carries the error.
    /// </summary>
    private static IEnumerable<ClassifyRow> ClassifyBatch(ClipModel clip, List<string> paths, string[] labels, string template)
    {
        ZeroShotResult[]? results = null;
        try
        {
            results = clip.Classify(paths.Select(ImageInput.FromFile).ToList(), labels, template);
        }
        catch (NonFiniteOutputException)
        {
            throw; // the weights, not this image: every image would fail alike, so the command stops with one line
        }
        catch (Exception e) when (CliErrors.IsUserError(e) && paths.Count > 1)
        {
        }
        catch (Exception e) when (CliErrors.IsUserError(e))
        {
            return [new ClassifyRow(paths[0], null, ErrorFor(paths[0], e))];
        }
        if (results != null) return paths.Select((path, i) => new ClassifyRow(path, results[i], null)).ToList();
        return paths.SelectMany(path => ClassifyBatch(clip, [path], labels, template)).ToList();
    }

    /// <summary>The error of one image, naming it (library messages usually do already).</summary>
    private static string ErrorFor(string path, Exception e)
    {
        if (e is FileNotFoundException or DirectoryNotFoundException && !File.Exists(path)) return $"{path}: no such file or folder";
        return InvalidImage.Describe(e, path);
    }
}
