using System.Diagnostics;

namespace ManagedClip.Retrieval;

/// <summary>
/// Building and updating an image index: a folder holding <c>manifest.json</c> and parts
/// (<c>part-NNNNNN.npy</c> embeddings [rows, E] + <c>part-NNNNNN.parquet</c> row metadata).
/// </summary>
/// <example>
/// <code>
/// using var model = ClipModel.Load();
/// using var run = ImageIndex.Open(model, "/data/images", "/data/images.index", new IndexOptions());
/// foreach (var image in run.Run(cancellationToken)) Console.WriteLine($"{image.RelativePath}: {image.Error ?? "ok"}");
/// IndexReport report = run.Report;
/// </code>
/// </example>
public static class ImageIndex
{
    /// <summary>
    /// Lists <paramref name="folder"/>, reads the index at <paramref name="indexPath"/> (if any) and plans the run:
    /// what is reused, re-checked, embedded and deleted. Nothing is written until <see cref="IndexRun.Run"/>.
    /// </summary>
    /// <exception cref="InvalidDataException">The existing index is damaged, or was made by another model, of
    /// another folder, shard or dtype (unless <see cref="IndexOptions.Force"/>).</exception>
    /// <exception cref="IOException">Another process is writing the index, or <paramref name="indexPath"/> is something else.</exception>
    public static IndexRun Open(ClipModel model, string folder, string indexPath, IndexOptions? options = null) =>
        new(model, ModelIdentity.Of(model), folder, indexPath, options ?? new IndexOptions());

    /// <summary>The folder a run with these options writes: <paramref name="indexPath"/> or its shard sub-folder.</summary>
    public static string IndexFolder(string indexPath, Shard shard) =>
        shard.IsSharded ? Path.Combine(Path.GetFullPath(indexPath), shard.FolderName) : Path.GetFullPath(indexPath);
}

/// <summary>
/// One planned run over an index (holds the index's write lock until disposed). <see cref="Run"/> streams the
/// results; parts are committed every <see cref="IndexOptions.ChunkImages"/> images or
/// <see cref="IndexOptions.ChunkTime"/>, so an interrupted run loses at most the part in progress (on cancellation
/// not even that: the rows done are committed before the run stops).
/// </summary>
public sealed class IndexRun : IDisposable
{
    private readonly ClipModel model;
    private readonly IndexOptions options;
    private readonly string folder;       // the index folder this run writes
    private readonly string root;         // the indexed folder
    private readonly FileStream writeLock;
    private readonly IndexManifest manifest;
    private readonly bool replacing;      // --force over an index of something else: old parts go once the new manifest is in place
    private readonly List<PartEntry> replacedParts = [];
    private readonly List<FoundFile> toEmbed = [];
    private readonly List<(FoundFile File, Existing Old)> toCheck = [];  // same size, new time: compare content hashes
    private readonly List<Existing> toDelete = [];
    private readonly Dictionary<string, Existing> existing = new(StringComparer.Ordinal);
    private readonly float[] zeros;
    private bool ran;

    private readonly record struct Existing(PartEntry Part, long Row, IndexRow Meta);

    internal IndexRun(ClipModel model, ModelIdentity identity, string indexedFolder, string indexPath, IndexOptions options)
    {
        if (options.ChunkImages < 1) throw new ArgumentException("the chunk size must be at least one image");
        if (options.ChunkTime <= TimeSpan.Zero) throw new ArgumentException("the chunk time must be positive");
        if (options.RowsPerPart < 1) throw new ArgumentException("parts must hold at least one row");
        this.model = model;
        this.options = options;
        root = Path.TrimEndingDirectorySeparator(Path.GetFullPath(indexedFolder));
        folder = ImageIndex.IndexFolder(indexPath, options.Shard);
        zeros = new float[identity.EmbeddingSize];
        if (!Directory.Exists(root)) throw new DirectoryNotFoundException(File.Exists(root) ? $"{indexedFolder}: not a folder" : $"{indexedFolder}: no such folder");

        if (File.Exists(indexPath) || File.Exists(folder))
            throw new IOException($"{(File.Exists(indexPath) ? indexPath : folder)} is a file, not an index folder (an index is a folder; choose another --out).");
        bool existed = Directory.Exists(folder);
        if (existed && !IndexManifest.Exists(folder) && Directory.EnumerateFileSystemEntries(folder).Any(e => Path.GetFileName(e) != ".lock"))
            throw new IOException($"{folder} exists and is not a managedclip index (no {IndexManifest.FileName}); refusing to write into it.");
        Directory.CreateDirectory(folder);
        writeLock = TakeLock(folder);
        try
        {
            IndexManifest? old = IndexManifest.Exists(folder) ? IndexManifest.Load(folder) : null;
            if (old != null && Mismatch(old, identity, options) is { } problem)
            {
                if (!options.Force)
                    throw new InvalidDataException($"{folder}: {problem}; refusing to replace it (pass --force to rebuild it from scratch).");
                replacing = true;
                replacedParts.AddRange(old.Parts);
                old = null;
            }
            if (old != null) IndexParts.RemoveLeftovers(folder, old);
            manifest = old ?? new IndexManifest { Model = identity, DType = options.DType, Root = root, Shard = options.Shard };
            if (!replacing && old == null) IndexParts.RemoveLeftovers(folder, null);
            if (replacing) manifest.NextPart = NextFreePartNumber(folder);
            LoadExisting();
            var walk = FileTree.Walk(root, Path.GetFullPath(indexPath), options.Shard.Contains);
            Report = new IndexReport
            {
                Index = folder, Root = root, Shard = options.Shard, Model = identity, DType = manifest.DType,
                SymlinkedFoldersSkipped = walk.SymlinkedFoldersSkipped,
                RepeatedFoldersSkipped = walk.RepeatedFoldersSkipped,
                UnreadableFolders = walk.UnreadableFolders,
            };
            Plan(walk.Files);
        }
        catch
        {
            writeLock.Dispose();
            throw;
        }
    }

    /// <summary>The index folder written (for a sharded run, the shard's sub-folder).</summary>
    public string Folder => folder;

    /// <summary>Files whose rows are kept as they are.</summary>
    public long Unchanged { get; private set; }

    /// <summary>Files to embed (new, changed, or failed before with <see cref="IndexOptions.RetryErrors"/>).</summary>
    public long ToEmbed => toEmbed.Count;

    /// <summary>Files with the same size but another modification time: their content hash decides.</summary>
    public long ToCheck => toCheck.Count;

    /// <summary>Rows whose file is gone.</summary>
    public long ToDelete => toDelete.Count;

    /// <summary>What the run did (complete once <see cref="Run"/> has been enumerated to the end or stopped).</summary>
    public IndexReport Report { get; }

    private static FileStream TakeLock(string folder)
    {
        try
        {
            // FileShare.None takes an exclusive advisory lock (flock) on Unix; the kernel drops it if the process dies.
            return new FileStream(Path.Combine(folder, ".lock"), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException)
        {
            throw new IOException($"{folder}: another process is writing this index (its .lock is held); wait for it or stop it.");
        }
    }

    private string? Mismatch(IndexManifest old, ModelIdentity identity, IndexOptions options)
    {
        if (old.Root != root && old.LiveRows > 0) return $"the index is of the folder {old.Root}, not {root}";
        if (old.Model.Id != identity.Id)
            return $"the index was made by another model (id {old.Model.ShortId}, from {old.Model.Source}) than this one (id {identity.ShortId}, {identity.Source})";
        if (old.Shard != options.Shard) return $"the index is shard {old.Shard}, this run is shard {options.Shard}";
        if (old.DType != options.DType)
            return $"the index stores {(old.DType == EmbeddingDType.Float16 ? "f16" : "f32")}, this run asks for {(options.DType == EmbeddingDType.Float16 ? "f16" : "f32")}";
        return null;
    }

    private long NextFreePartNumber(string indexFolder)
    {
        long next = 1;
        foreach (var file in Directory.EnumerateFiles(indexFolder))
        {
            var stem = Path.GetFileNameWithoutExtension(file);
            if (IndexManifest.IsPartName(stem) && long.TryParse(stem[5..], out long n)) next = Math.Max(next, n + 1);
        }
        return next;
    }

    private void LoadExisting()
    {
        if (replacing) return;
        manifest.Root = root; // unchanged, or an empty index taking a new folder (Mismatch refused the rest)
        foreach (var part in manifest.Parts)
        {
            var rows = PartMetadata.ReadAll(Path.Combine(folder, part.ParquetName), part.Rows);
            using (IndexParts.OpenMatrix(folder, part, manifest.EmbeddingSize, manifest.DType)) { } // damaged parts fail here, not mid-run
            for (long r = 0; r < rows.Length; r++)
            {
                if (part.Deleted.Contains(r)) continue;
                if (existing.TryGetValue(rows[r].Path, out var duplicate)) duplicate.Part.Deleted.Add(duplicate.Row); // keep the newest
                existing[rows[r].Path] = new Existing(part, r, rows[r]);
            }
        }
    }

    private void Plan(List<FoundFile> files)
    {
        var present = new HashSet<string>(StringComparer.Ordinal);
        foreach (var file in files)
        {
            present.Add(file.RelativePath);
            if (!existing.TryGetValue(file.RelativePath, out var old)) { toEmbed.Add(file); continue; }
            bool sameState = old.Meta.Size == file.Size && old.Meta.ModifiedUtc == file.ModifiedUtc;
            bool retry = options.RetryErrors && old.Meta.Error != null;
            if (sameState && !retry) Unchanged++;
            else if (!retry && file.Problem == null && old.Meta.Error == null && old.Meta.Size == file.Size && old.Meta.Sha256 != null) toCheck.Add((file, old));
            else toEmbed.Add(file);
        }
        foreach (var (path, old) in existing)
            if (!present.Contains(path)) toDelete.Add(old);
    }

    /// <summary>
    /// Runs the plan: content checks, then embedding, yielding each file's result as it is computed, committing
    /// parts as it goes; then compacts small parts and marks the index complete. Cancelling commits the rows done
    /// and throws <see cref="OperationCanceledException"/>; <see cref="Report"/> then has <c>Interrupted</c> set.
    /// </summary>
    public IEnumerable<IndexedImage> Run(CancellationToken cancellationToken = default)
    {
        if (ran) throw new InvalidOperationException("an IndexRun runs once");
        ran = true;
        return RunInside(cancellationToken);
    }

    /// <summary>Runs to the end and returns the report (the results are only counted).</summary>
    public IndexReport RunToEnd(CancellationToken cancellationToken = default)
    {
        foreach (var _ in Run(cancellationToken)) { }
        return Report;
    }

    // The part being filled.
    private readonly List<IndexRow> chunkRows = [];
    private readonly List<float[]?> chunkVectors = [];
    private readonly List<Existing> chunkSuperseded = [];
    private readonly Stopwatch chunkClock = new();
    private long done, total;

    private IEnumerable<IndexedImage> RunInside(CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        total = toCheck.Count + toEmbed.Count;
        bool finished = false;
        try
        {
            // First commit: the manifest (a new index is recognisable as one from here on) and the deletions.
            foreach (var gone in toDelete) gone.Part.Deleted.Add(gone.Row);
            Report.Deleted = toDelete.Count;
            Report.Reused = Unchanged;
            manifest.Complete = false;
            manifest.Save(folder);
            if (replacing)
            {
                foreach (var part in replacedParts) IndexParts.DeleteFiles(folder, part);
                IndexParts.RemoveLeftovers(folder, manifest);
            }
            Progress(null);

            foreach (var (file, old) in toCheck)
            {
                cancellationToken.ThrowIfCancellationRequested();
                string? sha = ContentHash.OfFileOrNull(file.FullPath);
                if (sha == old.Meta.Sha256)
                {
                    // Same content, new size or time (copied, touched): keep the vector, record the new state.
                    var vector = new float[manifest.EmbeddingSize];
                    using (var matrix = IndexParts.OpenMatrix(folder, old.Part, manifest.EmbeddingSize, manifest.DType))
                        matrix.CopyRow(old.Row, vector);
                    done++;
                    Add(new IndexRow(file.RelativePath, file.Size, file.ModifiedUtc, sha, null), vector, old);
                    Report.Reused++;
                    Report.Rehashed++;
                    yield return new IndexedImage(file.RelativePath, vector, null, Reused: true);
                }
                else toEmbed.Add(file);
            }

            // Files that cannot be opened at all become error rows directly; the rest stream through the model.
            var readable = new List<FoundFile>();
            foreach (var file in toEmbed)
            {
                if (file.Problem == null) { readable.Add(file); continue; }
                done++;
                Add(new IndexRow(file.RelativePath, file.Size, file.ModifiedUtc, null, file.Problem), null, Superseded(file));
                yield return new IndexedImage(file.RelativePath, null, file.Problem, Reused: false);
            }

            // One read of each file gives its hash and its pixels; decoding overlaps the model (EmbeddingPipeline).
            var pipeline = new EmbeddingPipeline(model, readable.Select(file => file.FullPath).ToList());
            foreach (var result in pipeline.Run(cancellationToken))
            {
                var file = readable[result.Index];
                string? error = result.Error?.Replace(file.FullPath, file.RelativePath, StringComparison.Ordinal).ReplaceLineEndings(" ");
                var vector = error == null ? result.Embedding : null;
                if (vector != null) Report.Embedded++;
                done++;
                Add(new IndexRow(file.RelativePath, file.Size, file.ModifiedUtc, result.Sha256, error), vector, Superseded(file));
                yield return new IndexedImage(file.RelativePath, vector, error, Reused: false);
            }

            Commit();
            cancellationToken.ThrowIfCancellationRequested();
            Report.PartsWritten += IndexParts.Compact(folder, manifest, options.RowsPerPart, onlyIfFragmented: false, cancellationToken);
            manifest.Complete = true;
            manifest.Save(folder);
            finished = true;
            Progress("index complete");
        }
        finally
        {
            if (!finished)
            {
                // Cancelled, failed or abandoned: keep what was computed if it can still be written.
                Report.Interrupted = true;
                try { Commit(); }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidDataException) { }
            }
            Report.Seconds = clock.Elapsed.TotalSeconds;
            Report.Rows = manifest.LiveRows;
            Report.Parts = manifest.Parts.Count;
            CountErrors();
        }
    }

    private Existing? Superseded(FoundFile file) => existing.TryGetValue(file.RelativePath, out var old) ? old : null;

    private void Add(IndexRow row, float[]? vector, Existing? superseded)
    {
        if (chunkRows.Count == 0) chunkClock.Restart();
        chunkRows.Add(row);
        chunkVectors.Add(vector);
        if (superseded is { } old) chunkSuperseded.Add(old);
        if (chunkRows.Count >= options.ChunkImages || chunkClock.Elapsed >= options.ChunkTime) Commit();
        else if (done % 8 == 0) Progress(null);
    }

    /// <summary>Writes the rows gathered so far as a part, flushed, then names it in the manifest (the commit).</summary>
    private void Commit()
    {
        if (chunkRows.Count == 0) return;
        var name = manifest.NewPartName();
        PartEntry part;
        using (var builder = new PartBuilder(folder, name, chunkRows.Count, manifest.EmbeddingSize, manifest.DType, manifest.Model.Id))
        {
            for (int i = 0; i < chunkRows.Count; i++) builder.Add(chunkRows[i], chunkVectors[i] ?? zeros);
            part = builder.Complete();
        }
        Durable.FlushFolder(folder);
        manifest.Parts.Add(part);
        foreach (var old in chunkSuperseded) old.Part.Deleted.Add(old.Row); // the new row replaces it in the same commit
        manifest.Save(folder);
        Report.PartsWritten++;
        int rows = chunkRows.Count;
        chunkRows.Clear();
        chunkVectors.Clear();
        chunkSuperseded.Clear();
        Progress($"committed {name} ({rows} rows)");
        Report.PartsWritten += IndexParts.Compact(folder, manifest, options.RowsPerPart, onlyIfFragmented: true, CancellationToken.None);
    }

    private void Progress(string? message) =>
        options.Progress?.Report(new IndexProgress(done, total, Report.PartsWritten, message));

    private void CountErrors()
    {
        Report.Errors = 0;
        Report.ErrorSamples.Clear();
        foreach (var part in manifest.Parts)
        {
            var live = part.ErrorRows.Where(r => !part.Deleted.Contains(r)).ToList();
            Report.Errors += live.Count;
            if (live.Count == 0 || Report.ErrorSamples.Count >= 100) continue;
            try
            {
                var rows = PartMetadata.ReadRows(Path.Combine(folder, part.ParquetName), part.Rows, live.Take(100 - Report.ErrorSamples.Count).ToList());
                foreach (var (_, row) in rows.OrderBy(r => r.Key)) Report.ErrorSamples.Add((row.Path, row.Error ?? ""));
            }
            catch (Exception e) when (e is IOException or InvalidDataException) { }
        }
    }

    /// <summary>Releases the index's write lock.</summary>
    public void Dispose() => writeLock.Dispose();
}
