namespace ManagedClip.Retrieval;

/// <summary>Copying live rows between parts: compaction within an index, and merging shard indexes.</summary>
internal static class IndexParts
{
    /// <summary>A part to copy from: its folder and manifest entry.</summary>
    public readonly record struct Source(string Folder, PartEntry Part);

    /// <summary>
    /// Copies the live rows (not deleted) of <paramref name="sources"/>, in order, into new parts of at most
    /// <paramref name="rowsPerPart"/> rows in <paramref name="folder"/>, bit for bit. Returns the new parts, flushed to
    /// disk but not yet in any manifest.
    /// </summary>
    public static List<PartEntry> CopyLiveRows(IReadOnlyList<Source> sources, string folder, IndexManifest target,
        long rowsPerPart, CancellationToken cancellationToken)
    {
        long total = sources.Sum(s => s.Part.LiveRows);
        var written = new List<PartEntry>();
        if (total == 0) return written;
        long partCount = (total + rowsPerPart - 1) / rowsPerPart;
        long baseRows = total / partCount, extra = total % partCount; // equal sizes, the first `extra` one row more

        PartBuilder? builder = null;
        long builderRows = 0, partsStarted = 0;
        try
        {
            foreach (var source in sources)
            {
                if (source.Part.LiveRows == 0) continue;
                var rows = PartMetadata.ReadAll(Path.Combine(source.Folder, source.Part.ParquetName), source.Part.Rows);
                using var matrix = OpenMatrix(source.Folder, source.Part, target.EmbeddingSize, target.DType);
                int rowBytes = target.EmbeddingSize * NpyFormat.ItemSize(target.DType);
                for (long r = 0; r < source.Part.Rows; r++)
                {
                    if (source.Part.Deleted.Contains(r)) continue;
                    if (builder == null)
                    {
                        cancellationToken.ThrowIfCancellationRequested();
                        builderRows = baseRows + (partsStarted < extra ? 1 : 0);
                        builder = new PartBuilder(folder, target.NewPartName(), builderRows, target.EmbeddingSize, target.DType, target.Model.Id);
                        partsStarted++;
                    }
                    unsafe
                    {
                        builder.AddRaw(rows[r], new ReadOnlySpan<byte>(matrix.RowPointer(r), rowBytes));
                    }
                    if (--builderRows == 0)
                    {
                        written.Add(builder.Complete());
                        builder.Dispose();
                        builder = null;
                    }
                }
            }
        }
        catch
        {
            builder?.Dispose();
            foreach (var part in written) DeleteFiles(folder, part);
            throw;
        }
        Durable.FlushFolder(folder);
        return written;
    }

    /// <summary>
    /// Rewrites the parts that hold tombstones, and the small parts together, into parts of up to
    /// <paramref name="rowsPerPart"/> rows; commits the manifest, then deletes the old files. Returns parts written.
    /// With <paramref name="onlyIfFragmented"/>, does nothing until at least 128 small parts have piled up (the
    /// periodic compaction of a long run, which keeps the number of files and mappings bounded).
    /// </summary>
    public static int Compact(string folder, IndexManifest manifest, long rowsPerPart, bool onlyIfFragmented, CancellationToken cancellationToken)
    {
        long small = rowsPerPart / 2;
        var empty = manifest.Parts.Where(p => p.LiveRows == 0).ToList();
        var smallParts = manifest.Parts.Where(p => p.LiveRows > 0 && p.LiveRows < small).ToList();
        if (onlyIfFragmented && smallParts.Count < 128) return 0;
        var rewrite = manifest.Parts
            .Where(p => p.LiveRows > 0 && (p.Deleted.Count > 0 || (smallParts.Count >= 2 && p.LiveRows < small)))
            .ToList();
        if (rewrite.Count == 0 && empty.Count == 0) return 0;

        var written = CopyLiveRows(rewrite.Select(p => new Source(folder, p)).ToList(), folder, manifest, rowsPerPart, cancellationToken);
        var replaced = rewrite.Concat(empty).ToHashSet();
        manifest.Parts.RemoveAll(replaced.Contains);
        manifest.Parts.AddRange(written);
        manifest.Save(folder);
        foreach (var part in replaced) DeleteFiles(folder, part);
        return written.Count;
    }

    /// <summary>Maps a part's .npy and checks it against the manifest.</summary>
    public static MappedMatrix OpenMatrix(string folder, PartEntry part, int embeddingSize, EmbeddingDType dtype)
    {
        var path = Path.Combine(folder, part.NpyName);
        if (!File.Exists(path)) throw new InvalidDataException($"{path}: missing (the manifest lists part {part.Name}).");
        var matrix = MappedMatrix.Open(path);
        if (matrix.Rows != part.Rows || matrix.Columns != embeddingSize || matrix.DType != dtype)
        {
            var found = $"({matrix.Rows}, {matrix.Columns}) {NpyFormat.Descr(matrix.DType)}";
            matrix.Dispose();
            throw new InvalidDataException($"{path}: holds {found}, the manifest says ({part.Rows}, {embeddingSize}) {NpyFormat.Descr(dtype)}.");
        }
        return matrix;
    }

    public static void DeleteFiles(string folder, PartEntry part)
    {
        Durable.TryDelete(Path.Combine(folder, part.NpyName));
        Durable.TryDelete(Path.Combine(folder, part.ParquetName));
    }

    /// <summary>Removes part files and temporary files no manifest names: what an interrupted write left behind.</summary>
    public static void RemoveLeftovers(string folder, IndexManifest? manifest)
    {
        var named = manifest?.Parts.Select(p => p.Name).ToHashSet(StringComparer.Ordinal) ?? [];
        foreach (var file in Directory.EnumerateFiles(folder))
        {
            var name = Path.GetFileName(file);
            var stem = Path.GetFileNameWithoutExtension(name);
            bool partFile = (name.EndsWith(".npy", StringComparison.Ordinal) || name.EndsWith(".parquet", StringComparison.Ordinal))
                            && IndexManifest.IsPartName(stem);
            bool temporary = name.StartsWith("." + IndexManifest.FileName + ".", StringComparison.Ordinal) && name.EndsWith(".tmp", StringComparison.Ordinal);
            if ((partFile && !named.Contains(stem)) || temporary) Durable.TryDelete(file);
        }
    }
}
