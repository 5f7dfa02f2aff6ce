using ManagedClip.IO.Distribution;
using System.CommandLine;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using ManagedClip.IO;
using ManagedClip.Retrieval;

namespace ManagedClip.Cli;

// index / merge / search: the ManagedClip.Retrieval index from the command line. JSON results on stdout,
// progress on stderr, errors one line.
internal static partial class CliApp
{
    private static Command IndexCommand(TextWriter output, TextWriter error)
    {
        var model = ModelOption();
        var weights = WeightsOption();
        var folder = new Argument<string>("FOLDER") { Description = "Folder of images, walked recursively (symbolic links to folders are not followed)." };
        var outDir = new Option<string>("--out") { Description = "Index folder to create, continue or update.", Required = true };
        var shard = new Option<string?>("--shard") { Description = "Embed only shard i of N (\"i/N\", e.g. $SLURM_ARRAY_TASK_ID/4) into OUT/shard-i-of-N; combine the shards with 'merge'." };
        var dtype = new Option<string>("--dtype") { Description = "Embedding storage: f32, or f16 (half the size).", DefaultValueFactory = _ => "f32" };
        var chunkImages = new Option<int>("--chunk-images") { Description = "Commit a part after this many images …", DefaultValueFactory = _ => 256 };
        var chunkSeconds = new Option<double>("--chunk-seconds") { Description = "… or after this many seconds, whichever comes first (what a crash can lose).", DefaultValueFactory = _ => 30 };
        var force = new Option<bool>("--force") { Description = "Rebuild an index made by another model, of another folder, shard or dtype, from scratch." };
        var retry = new Option<bool>("--retry-errors") { Description = "Embed again the files that failed before, even if unchanged." };
        var command = new Command("index",
            "Embed every image under FOLDER into an index folder (NumPy .npy parts + Parquet metadata). Resumable: parts are committed as it goes, " +
            "and rerunning the same command continues; unchanged files are reused, changed ones embedded again, deleted ones removed. " +
            "Prints a JSON report {\"index\", \"rows\", \"embedded\", \"reused\", \"deleted\", \"errors\", ...}.")
        {
            model, weights, folder, outDir, shard, dtype, chunkImages, chunkSeconds, force, retry,
        };
        command.SetAction((parse, cancel) =>
        {
            var options = new IndexOptions
            {
                Shard = parse.GetValue(shard) is { } s ? ParseShard(s) : Shard.Whole,
                DType = ParseDType(parse.GetValue(dtype)!),
                ChunkImages = parse.GetValue(chunkImages) is >= 1 and var n ? n : throw new UsageException("--chunk-images must be at least 1"),
                ChunkTime = parse.GetValue(chunkSeconds) is > 0 and <= 86400 and var t ? TimeSpan.FromSeconds(t) : throw new UsageException("--chunk-seconds must be in (0, 86400]"),
                Force = parse.GetValue(force),
                RetryErrors = parse.GetValue(retry),
                Progress = new IndexProgressPrinter(error),
            };
            string root = parse.GetValue(folder)!;
            if (!Directory.Exists(root)) throw new DirectoryNotFoundException(File.Exists(root) ? $"{root}: not a folder" : $"{root}: no such folder");
            using var clip = LoadModel(parse, model, weights, error);
            using var run = ImageIndex.Open(clip, root, parse.GetValue(outDir)!, options);
            error.WriteLine($"managedclip: {run.Folder}: {run.Unchanged} unchanged, {run.ToEmbed} to embed, {run.ToCheck} to check by content, {run.ToDelete} to delete");
            using var stop = new StopSignals(error, cancel);
            try
            {
                run.RunToEnd(stop.Token);
            }
            catch (OperationCanceledException) when (stop.Token.IsCancellationRequested)
            {
            }
            WriteJson(output, w => WriteIndexReport(w, run.Report));
            if (!run.Report.Interrupted) return Task.FromResult(0);
            error.WriteLine($"managedclip: interrupted; {run.Report.Rows} rows are committed in {run.Folder}. Run the same command again to continue.");
            return Task.FromResult(stop.ExitCode);
        });
        return command;
    }

    private static Command MergeCommand(TextWriter output, TextWriter error)
    {
        var inputs = new Argument<string[]>("INDEX") { Description = "Shard indexes (or the folder holding them: the shards' common --out).", Arity = ArgumentArity.OneOrMore };
        var outDir = new Option<string>("--out") { Description = "The merged index folder.", Required = true };
        var force = new Option<bool>("--force") { Description = "Replace an existing index of another model or folder at --out." };
        var command = new Command("merge", "Combine the shard indexes of a sharded run (all N shards, complete) into one index: {\"index\", \"rows\", \"parts\", \"shards\", \"errors\", \"seconds\"}.")
        {
            inputs, outDir, force,
        };
        command.SetAction((parse, cancel) =>
        {
            using var stop = new StopSignals(error, cancel);
            MergeReport report;
            try
            {
                report = IndexMerge.Merge(parse.GetValue(inputs)!, parse.GetValue(outDir)!, parse.GetValue(force), cancellationToken: stop.Token);
            }
            catch (OperationCanceledException) when (stop.Token.IsCancellationRequested)
            {
                error.WriteLine($"managedclip: interrupted; {parse.GetValue(outDir)} was left as it was.");
                return Task.FromResult(stop.ExitCode);
            }
            WriteJson(output, w =>
            {
                w.WriteStartObject();
                w.WriteString("index", report.Index);
                w.WriteNumber("rows", report.Rows);
                w.WriteNumber("parts", report.Parts);
                w.WriteNumber("shards", report.Shards);
                w.WriteNumber("errors", report.Errors);
                w.WriteNumber("seconds", Math.Round(report.Seconds, 3));
                w.WriteEndObject();
            });
            return Task.FromResult(0);
        });
        return command;
    }

    private static Command SearchCommand(TextWriter output, TextWriter error)
    {
        var model = ModelOption();
        var weights = WeightsOption();
        var index = new Option<string>("--index") { Description = "Index folder made by 'managedclip index' or 'merge' (or a folder of shard indexes).", Required = true };
        var text = new Option<string?>("--text") { Description = "Find images matching this text." };
        var image = new Option<string?>("--image") { Description = "Find images similar to this image file." };
        var row = new Option<string?>("--row") { Description = "Find images similar to an indexed file (its path; no model is needed)." };
        var top = new Option<int>("-k", "--top") { Description = "Number of hits.", DefaultValueFactory = _ => 10 };
        var command = new Command("search", "Rank the images of an index against a text, an image or an indexed file: JSON array [{\"path\", \"relative_path\", \"score\"}], best first; score is the cosine similarity.")
        {
            model, weights, index, text, image, row, top,
        };
        command.SetAction((parse, cancel) =>
        {
            string? query = parse.GetValue(text), queryImage = parse.GetValue(image), queryRow = parse.GetValue(row);
            if (new[] { query, queryImage, queryRow }.Count(q => q != null) != 1) throw new UsageException("give exactly one of --text, --image or --row");
            int k = parse.GetValue(top);
            if (k < 1 || k > 1_000_000) throw new UsageException("-k must be between 1 and 1000000");
            using var reader = ImageIndexReader.Open(parse.GetValue(index)!);
            foreach (var warning in reader.Warnings) error.WriteLine($"managedclip: note: {warning}");
            float[] vector;
            if (queryRow != null)
            {
                // The stored row is the query: no model needed, but one named explicitly must be the index's.
                if (parse.GetValue(model) != null || parse.GetValue(weights) != null)
                    reader.RequireModel(ModelIdentity.Of(ModelDirectory.Resolve(parse.GetValue(model), parse.GetValue(weights))));
                vector = reader.FindEmbedding(queryRow)
                         ?? throw new InvalidDataException($"{queryRow}: not in the index (or its row has an error); give the path as indexed, relative to {reader.Folders[0]}'s folder, or as a full path");
            }
            else
            {
                // Refuse another model's index before loading anything large.
                reader.RequireModel(ModelIdentity.Of(ModelDirectory.Resolve(parse.GetValue(model), parse.GetValue(weights))));
                using var clip = LoadModel(parse, model, weights, error);
                vector = query != null ? clip.EmbedText(query) : clip.EmbedImage(queryImage!);
            }
            var hits = reader.Search(vector, k, cancel);
            WriteJson(output, w => WriteSearchHits(w, hits));
            return Task.FromResult(0);
        });
        return command;
    }

    /// <summary>
    /// Search results as <c>search</c> prints them and <c>POST /search</c> answers them: an array of
    /// <c>{"path", "relative_path", "score"}</c>, best first.
    /// </summary>
    internal static void WriteSearchHits(Utf8JsonWriter writer, IReadOnlyList<SearchHit> hits)
    {
        writer.WriteStartArray();
        foreach (var hit in hits)
        {
            writer.WriteStartObject();
            writer.WriteString("path", hit.FullPath);
            writer.WriteString("relative_path", hit.Path);
            writer.WriteNumber("score", hit.Score);
            writer.WriteEndObject();
        }
        writer.WriteEndArray();
    }

    private static Shard ParseShard(string text)
    {
        try
        {
            return Shard.Parse(text);
        }
        catch (ArgumentException e)
        {
            throw new UsageException($"--shard: {e.Message}");
        }
    }

    private static EmbeddingDType ParseDType(string text) => text switch
    {
        "f32" or "float32" => EmbeddingDType.Float32,
        "f16" or "float16" => EmbeddingDType.Float16,
        _ => throw new UsageException($"--dtype must be f32 or f16, not '{text}'"),
    };

    private static void WriteIndexReport(Utf8JsonWriter w, IndexReport report)
    {
        w.WriteStartObject();
        w.WriteString("index", report.Index);
        w.WriteString("root", report.Root);
        if (report.Shard.IsSharded) w.WriteString("shard", report.Shard.ToString());
        else w.WriteNull("shard");
        w.WriteString("model_id", report.Model.Id);
        w.WriteString("dtype", report.DType == EmbeddingDType.Float16 ? "f16" : "f32");
        w.WriteNumber("rows", report.Rows);
        w.WriteNumber("embedded", report.Embedded);
        w.WriteNumber("reused", report.Reused);
        w.WriteNumber("rehashed", report.Rehashed);
        w.WriteNumber("deleted", report.Deleted);
        w.WriteNumber("errors", report.Errors);
        WritePathErrors(w, "error_samples", report.ErrorSamples);
        w.WriteNumber("symlinked_folders_skipped", report.SymlinkedFoldersSkipped);
        w.WriteNumber("repeated_folders_skipped", report.RepeatedFoldersSkipped);
        WritePathErrors(w, "unreadable_folders", report.UnreadableFolders);
        w.WriteNumber("parts", report.Parts);
        w.WriteNumber("parts_written", report.PartsWritten);
        w.WriteNumber("seconds", Math.Round(report.Seconds, 3));
        w.WriteNumber("images_per_second", report.Seconds > 0 ? Math.Round(report.Embedded / report.Seconds, 2) : 0);
        w.WriteBoolean("interrupted", report.Interrupted);
        w.WriteEndObject();
    }

    // [{"path": …, "error": …}, …]: the shape of both lists the report carries (failed images, unreadable folders).
    private static void WritePathErrors(Utf8JsonWriter w, string name, IEnumerable<(string Path, string Error)> items)
    {
        w.WriteStartArray(name);
        foreach (var (path, problem) in items)
        {
            w.WriteStartObject();
            w.WriteString("path", path);
            w.WriteString("error", problem);
            w.WriteEndObject();
        }
        w.WriteEndArray();
    }
}

/// <summary>
/// SIGINT (Ctrl+C) and SIGTERM (what Slurm's scancel and time limits, and Kubernetes, send) ask a long command to
/// stop cleanly: the token is cancelled, the command commits what it has and exits with 128 + the signal. A second
/// signal is not intercepted, so it ends the process at once.
/// </summary>
internal sealed class StopSignals : IDisposable
{
    private readonly CancellationTokenSource source;
    private readonly PosixSignalRegistration interrupt;
    private readonly PosixSignalRegistration terminate;
    private int signals;

    public StopSignals(TextWriter error, CancellationToken outer)
    {
        source = CancellationTokenSource.CreateLinkedTokenSource(outer);
        void OnSignal(PosixSignalContext context)
        {
            if (Interlocked.Increment(ref signals) != 1) return; // the second one terminates
            context.Cancel = true;
            ExitCode = context.Signal == PosixSignal.SIGTERM ? 143 : 130;
            error.WriteLine("managedclip: stopping: committing the rows done (signal again to stop at once)");
            source.Cancel();
        }
        interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
        terminate = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);
    }

    public CancellationToken Token => source.Token;

    /// <summary>128 + the signal that stopped the command (130 when cancelled otherwise).</summary>
    public int ExitCode { get; private set; } = 130;

    public void Dispose()
    {
        interrupt.Dispose();
        terminate.Dispose();
        source.Dispose();
    }
}

/// <summary>
/// Index progress on stderr: on a terminal one redrawn count line; in logs (Slurm, Kubernetes) one line per
/// committed part, which is what a crash would keep.
/// </summary>
internal sealed class IndexProgressPrinter(TextWriter output) : IProgress<IndexProgress>
{
    private readonly bool redraw = ReferenceEquals(output, Console.Error) && !Console.IsErrorRedirected;

    public void Report(IndexProgress value)
    {
        string counts = $"{value.Done.ToString(CultureInfo.InvariantCulture)}/{value.Total.ToString(CultureInfo.InvariantCulture)} files";
        if (value.Event != null)
        {
            output.WriteLine($"{(redraw ? "\r" : "")}managedclip: {value.Event}; {counts}");
            output.Flush();
        }
        else if (redraw)
        {
            output.Write($"\rmanagedclip: indexing {counts}");
            output.Flush();
        }
    }
}
