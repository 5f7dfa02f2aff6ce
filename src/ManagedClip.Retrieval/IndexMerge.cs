using System.Diagnostics;

namespace ManagedClip.Retrieval;

/// <summary>What a merge did.</summary>
public sealed record MergeReport(string Index, long Rows, int Parts, int Shards, long Errors, double Seconds);

/// <summary>
/// Combines the shard indexes of one sharded run (<c>index --shard i/N</c> for i = 0 … N−1) into one ordinary
/// index, copying every live row bit for bit. The shards must be complete, made by the same model, of the same
/// folder and dtype, and together cover 0 … N−1 exactly once. The result is built in a temporary folder beside
/// the output and renamed into place, so an interrupted merge leaves no half index.
/// </summary>
public static class IndexMerge
{
    /// <param name="inputs">Shard index folders, or folders holding them (the shared <c>--out</c> of the shards).</param>
    /// <param name="output">The merged index folder. An existing index there is replaced only if it is of the same
    /// model and folder (or with <paramref name="force"/>); anything else is refused.</param>
    /// <param name="force">Replace whatever index is at <paramref name="output"/>.</param>
    /// <param name="rowsPerPart">Rows per part in the merged index.</param>
    /// <param name="cancellationToken">Stops between parts; the output is then left as it was.</param>
    public static MergeReport Merge(IReadOnlyList<string> inputs, string output, bool force = false,
        long rowsPerPart = 262_144, CancellationToken cancellationToken = default)
    {
        var clock = Stopwatch.StartNew();
        var shards = new List<(string Folder, IndexManifest Manifest)>();
        foreach (var input in inputs)
        {
            var full = Path.GetFullPath(input);
            if (IndexManifest.Exists(full)) shards.Add((full, IndexManifest.Load(full)));
            else if (Directory.Exists(full))
            {
                var found = Directory.GetDirectories(full).Order(StringComparer.Ordinal).Where(IndexManifest.Exists).ToList();
                if (found.Count == 0) throw new InvalidDataException($"{input}: not an index, and no sub-folder is one.");
                shards.AddRange(found.Select(f => (f, IndexManifest.Load(f))));
            }
            else throw new DirectoryNotFoundException($"{input}: no such index folder");
        }
        if (shards.Count == 0) throw new ArgumentException("no indexes to merge");
        var outputFull = Path.TrimEndingDirectorySeparator(Path.GetFullPath(output));
        if (shards.Any(s => s.Folder == outputFull)) throw new ArgumentException($"{output} is also one of the inputs");
        Check(shards);
        var first = shards[0].Manifest;
        shards.Sort((a, b) => a.Manifest.Shard.Index.CompareTo(b.Manifest.Shard.Index));

        // Refuse to replace anything that is not an index of the same model and folder, before any work.
        if (File.Exists(outputFull)) throw new IOException($"{output} is a file; refusing to replace it with an index.");
        if (Directory.Exists(outputFull))
        {
            if (!IndexManifest.Exists(outputFull))
            {
                if (Directory.EnumerateFileSystemEntries(outputFull).Any())
                    throw new IOException($"{output} exists and is not a managedclip index; refusing to replace it.");
            }
            else if (!force)
            {
                var existing = IndexManifest.Load(outputFull);
                if (existing.Model.Id != first.Model.Id || existing.Root != first.Root)
                    throw new InvalidDataException($"{output}: an index of another model or folder ({existing.Root}) is there; refusing to replace it (pass --force).");
            }
        }

        var parent = Path.GetDirectoryName(outputFull)!;
        Directory.CreateDirectory(parent);
        var building = Path.Combine(parent, $".{Path.GetFileName(outputFull)}.merge-{Guid.NewGuid():N}");
        Directory.CreateDirectory(building);
        try
        {
            var manifest = new IndexManifest { Model = first.Model, DType = first.DType, Root = first.Root, Shard = Shard.Whole };
            var sources = shards.SelectMany(s => s.Manifest.Parts.Select(p => new IndexParts.Source(s.Folder, p))).ToList();
            manifest.Parts.AddRange(IndexParts.CopyLiveRows(sources, building, manifest, rowsPerPart, cancellationToken));
            manifest.Complete = true;
            manifest.Save(building);
            cancellationToken.ThrowIfCancellationRequested();
            Replace(outputFull, building);
            long errors = manifest.Parts.Sum(p => (long)p.ErrorRows.Length);
            return new MergeReport(outputFull, manifest.LiveRows, manifest.Parts.Count, shards.Count, errors, clock.Elapsed.TotalSeconds);
        }
        catch
        {
            TryDeleteFolder(building);
            throw;
        }
    }

    private static void Check(List<(string Folder, IndexManifest Manifest)> shards)
    {
        var (firstFolder, first) = shards[0];
        foreach (var (folder, m) in shards)
        {
            if (!m.Complete)
                throw new InvalidDataException($"{folder}: the shard's index run has not finished (interrupted?); rerun its 'index' command, then merge.");
            if (m.Model.Id != first.Model.Id)
                throw new InvalidDataException($"{folder}: made by another model (id {m.Model.ShortId}) than {firstFolder} (id {first.Model.ShortId}).");
            if (m.DType != first.DType) throw new InvalidDataException($"{folder}: stores {NpyFormat.Descr(m.DType)}, {firstFolder} {NpyFormat.Descr(first.DType)}.");
            if (m.Root != first.Root) throw new InvalidDataException($"{folder}: is an index of {m.Root}, {firstFolder} of {first.Root}.");
            if (m.Shard.Count != first.Shard.Count)
                throw new InvalidDataException($"{folder}: is shard {m.Shard}, {firstFolder} shard {first.Shard}: not one sharded run.");
        }
        int count = first.Shard.Count;
        var duplicate = shards.GroupBy(s => s.Manifest.Shard.Index).FirstOrDefault(g => g.Count() > 1);
        if (duplicate != null) throw new InvalidDataException($"shard {duplicate.Key}/{count} is given twice ({string.Join(", ", duplicate.Select(d => d.Folder))}).");
        var missing = Enumerable.Range(0, count).Except(shards.Select(s => s.Manifest.Shard.Index)).ToList();
        if (missing.Count > 0)
            throw new InvalidDataException($"shard{(missing.Count > 1 ? "s" : "")} {string.Join(", ", missing.Select(m => $"{m}/{count}"))} missing: a merge needs all {count}.");
    }

    // Swaps the finished index into place: the old one is moved aside first and removed only after the rename.
    private static void Replace(string output, string building)
    {
        if (!Directory.Exists(output))
        {
            Directory.Move(building, output);
            Durable.FlushFolder(Path.GetDirectoryName(output)!);
            return;
        }
        var aside = Path.Combine(Path.GetDirectoryName(output)!, $".{Path.GetFileName(output)}.old-{Guid.NewGuid():N}");
        Directory.Move(output, aside);
        Directory.Move(building, output);
        Durable.FlushFolder(Path.GetDirectoryName(output)!);
        TryDeleteFolder(aside);
    }

    private static void TryDeleteFolder(string folder)
    {
        try { Directory.Delete(folder, recursive: true); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }
}
