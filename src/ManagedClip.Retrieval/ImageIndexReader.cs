using System.Numerics.Tensors;
using ManagedClip.Kernels;

namespace ManagedClip.Retrieval;

/// <summary>A search result.</summary>
/// <param name="Path">The row's path, relative to the indexed folder ('/'-separated).</param>
/// <param name="FullPath">The file on this machine (the index's root joined with <paramref name="Path"/>).</param>
/// <param name="Score">Cosine similarity between the query and the row (rows are unit vectors).</param>
public sealed record SearchHit(string Path, string FullPath, float Score);

/// <summary>
/// Searches an index, or a folder of shard indexes (<c>shard-i-of-N</c>, searched as one), by brute force over
/// memory-mapped parts: every live row's dot product with the query, split across the cores, with a bounded
/// top-k heap per block of rows (no sort of all scores). Resident memory is the pages being scanned; the index is
/// never loaded. Thread-safe for concurrent searches.
/// </summary>
public sealed class ImageIndexReader : IDisposable
{
    // Rows per unit of work: large enough to amortise the hand-out, small enough to balance two cores.
    private const int RowsPerBlock = 8192;

    private sealed class OpenPart
    {
        public required string Folder { get; init; }
        public required string Root { get; init; }
        public required PartEntry Entry { get; init; }
        public required MappedMatrix Matrix { get; init; }
        public required HashSet<long> Skipped { get; init; } // errors and tombstones
    }

    private readonly List<OpenPart> parts = [];

    /// <summary>The model every searched index was made with.</summary>
    public ModelIdentity Model { get; }

    public EmbeddingDType DType { get; }

    public int EmbeddingSize => Model.EmbeddingSize;

    /// <summary>Live rows with an embedding (errors and deleted rows excluded).</summary>
    public long Rows { get; }

    /// <summary>The index folders searched (one, or every shard's).</summary>
    public IReadOnlyList<string> Folders { get; }

    /// <summary>Problems worth a note but not an error, e.g. a shard missing from the set or an index still being written.</summary>
    public IReadOnlyList<string> Warnings { get; }

    private ImageIndexReader(List<(string Folder, IndexManifest Manifest)> indexes)
    {
        var first = indexes[0].Manifest;
        Model = first.Model;
        DType = first.DType;
        var warnings = new List<string>();
        foreach (var (folder, manifest) in indexes)
        {
            if (manifest.Model.Id != Model.Id)
                throw new InvalidDataException($"{folder}: made by another model (id {manifest.Model.ShortId}) than {indexes[0].Folder} (id {Model.ShortId}); they cannot be searched together.");
            if (manifest.DType != DType)
                throw new InvalidDataException($"{folder}: stores {NpyFormat.Descr(manifest.DType)}, {indexes[0].Folder} {NpyFormat.Descr(DType)}; merge them into one index first.");
            if (!manifest.Complete) warnings.Add($"{folder}: the index is incomplete (its run was interrupted or is still going); searching the rows committed so far");
        }
        var shardCounts = indexes.Select(i => i.Manifest.Shard.Count).Distinct().ToList();
        if (indexes.Count > 1 || first.Shard.IsSharded)
        {
            int count = shardCounts.Max();
            var missing = Enumerable.Range(0, count).Except(indexes.Select(i => i.Manifest.Shard.Index)).ToList();
            if (shardCounts.Count == 1 && missing.Count > 0)
                warnings.Add($"shards {string.Join(", ", missing.Select(m => $"{m}/{count}"))} are missing; searching {indexes.Count} of {count}");
        }
        try
        {
            foreach (var (folder, manifest) in indexes)
                foreach (var entry in manifest.Parts)
                {
                    var matrix = IndexParts.OpenMatrix(folder, entry, manifest.EmbeddingSize, manifest.DType);
                    var skipped = new HashSet<long>(entry.Deleted);
                    skipped.UnionWith(entry.ErrorRows);
                    parts.Add(new OpenPart { Folder = folder, Root = manifest.Root, Entry = entry, Matrix = matrix, Skipped = skipped });
                }
        }
        catch
        {
            Dispose();
            throw;
        }
        Rows = parts.Sum(p => p.Entry.Rows - p.Skipped.Count);
        Folders = indexes.Select(i => i.Folder).ToList();
        Warnings = warnings;
    }

    /// <summary>
    /// Opens an index folder (with <c>manifest.json</c>), or a folder whose sub-folders are indexes (the
    /// <c>--shard</c> runs' output), searched together.
    /// </summary>
    public static ImageIndexReader Open(string path)
    {
        var full = Path.GetFullPath(path);
        if (File.Exists(full)) throw new InvalidDataException($"{path}: a file, not an index folder (indexes are folders made by 'managedclip index').");
        if (!Directory.Exists(full)) throw new DirectoryNotFoundException($"{path}: no such index folder");
        var indexes = new List<(string, IndexManifest)>();
        if (IndexManifest.Exists(full)) indexes.Add((full, IndexManifest.Load(full)));
        else
        {
            foreach (var sub in Directory.GetDirectories(full).Order(StringComparer.Ordinal))
                if (IndexManifest.Exists(sub)) indexes.Add((sub, IndexManifest.Load(sub)));
            if (indexes.Count == 0)
                throw new InvalidDataException($"{path}: not a managedclip index (no {IndexManifest.FileName}, and no sub-folder has one).");
        }
        return new ImageIndexReader(indexes);
    }

    /// <summary>Refuses (one clear line) when the index was made by another model than <paramref name="model"/>.</summary>
    public void RequireModel(ModelIdentity model)
    {
        if (model.Id == Model.Id) return;
        throw new InvalidDataException(
            $"{Folders[0]}: the index was made by another model (id {Model.ShortId}, weights sha256 {Model.WeightsSha256[..12]}, from {Model.Source}); " +
            $"this model is id {model.ShortId} (weights sha256 {model.WeightsSha256[..12]}, {model.Source}). Search with the model that built it, or rebuild the index.");
    }

    /// <summary>The <paramref name="k"/> rows most similar to <paramref name="query"/> (any length E; normalised here), best first.</summary>
    public IReadOnlyList<SearchHit> Search(ReadOnlySpan<float> query, int k, CancellationToken cancellationToken = default) =>
        Resolve(Rank(query, k, cancellationToken));

    /// <summary>The scan alone: (score, part &lt;&lt; 40 | row) best first, paths not looked up.</summary>
    internal (float Score, long Key)[] Rank(ReadOnlySpan<float> query, int k, CancellationToken cancellationToken = default)
    {
        if (query.Length != EmbeddingSize)
            throw new ArgumentException($"the query has {query.Length} values; the index holds {EmbeddingSize}-d embeddings");
        if (k < 1) throw new ArgumentOutOfRangeException(nameof(k), "k must be at least 1");
        var unit = query.ToArray();
        float norm = TensorPrimitives.Norm(unit);
        if (!(norm > 0) || !float.IsFinite(norm)) throw new ArgumentException("the query vector is zero or not finite");
        TensorPrimitives.Divide(unit, norm, unit);

        var blocks = new List<(int Part, long First, int Count)>();
        for (int p = 0; p < parts.Count; p++)
            for (long first = 0; first < parts[p].Entry.Rows; first += RowsPerBlock)
                blocks.Add((p, first, (int)Math.Min(RowsPerBlock, parts[p].Entry.Rows - first)));
        var blockBest = new TopK[blocks.Count];
        Parallelism.For(blocks.Count, b =>
        {
            if (cancellationToken.IsCancellationRequested) return;
            var (p, first, count) = blocks[b];
            blockBest[b] = ScanBlock(parts[p], (long)p << 40, first, count, unit, k);
        });
        cancellationToken.ThrowIfCancellationRequested();

        var best = new TopK(k);
        foreach (var block in blockBest)
            foreach (var (score, key) in block.Sorted())
                best.Add(score, key);
        return best.Sorted();
    }

    private static unsafe TopK ScanBlock(OpenPart part, long keyBase, long first, int count, float[] query, int k)
    {
        var best = new TopK(k);
        var matrix = part.Matrix;
        bool half = matrix.DType == EmbeddingDType.Float16;
        for (long r = first; r < first + count; r++)
        {
            byte* row = matrix.RowPointer(r);
            float score = half ? ScoreKernels.DotFloat16((Half*)row, query) : ScoreKernels.DotFloat32((float*)row, query);
            // Skipped rows (errors are zero vectors, deleted rows are stale) are rare: look them up only for a candidate.
            if (best.Admits(score, keyBase + r) && !part.Skipped.Contains(r)) best.Add(score, keyBase + r);
        }
        return best;
    }

    private List<SearchHit> Resolve((float Score, long Key)[] ranked)
    {
        var hits = new List<SearchHit>(ranked.Length);
        var wanted = ranked.GroupBy(h => (int)(h.Key >> 40)).ToDictionary(g => g.Key, g => g.Select(h => h.Key & ((1L << 40) - 1)).ToList());
        var paths = new Dictionary<long, string>();
        foreach (var (p, list) in wanted)
        {
            var part = parts[p];
            foreach (var (row, path) in PartMetadata.ReadPathsOf(Path.Combine(part.Folder, part.Entry.ParquetName), part.Entry.Rows, list))
                paths[((long)p << 40) + row] = path;
        }
        foreach (var (score, key) in ranked)
        {
            var path = paths[key];
            var root = parts[(int)(key >> 40)].Root;
            hits.Add(new SearchHit(path, Path.Combine(root, path.Replace('/', Path.DirectorySeparatorChar)), score));
        }
        return hits;
    }

    /// <summary>
    /// The stored embedding of the file at <paramref name="path"/> (relative to the indexed folder, or a full path
    /// under it), widened to float32; null when the index has no live, embedded row for it.
    /// </summary>
    public float[]? FindEmbedding(string path)
    {
        foreach (var part in parts)
        {
            string relative = Relative(part.Root, path);
            var paths = PartMetadata.ReadPaths(Path.Combine(part.Folder, part.Entry.ParquetName), part.Entry.Rows);
            for (long r = 0; r < paths.Length; r++)
            {
                if (paths[r] != relative || part.Skipped.Contains(r)) continue;
                var vector = new float[EmbeddingSize];
                part.Matrix.CopyRow(r, vector);
                return vector;
            }
        }
        return null;
    }

    // A full path, or one that names a file from the working folder, is made relative to the index's root;
    // anything else is taken as a row path already ("sub/a.png").
    private static string Relative(string root, string path)
    {
        if (Path.IsPathRooted(path) || File.Exists(path))
            return Path.GetRelativePath(root, Path.GetFullPath(path)).Replace(Path.DirectorySeparatorChar, '/');
        var relative = path.Replace('\\', '/');
        return relative.StartsWith("./", StringComparison.Ordinal) ? relative[2..] : relative;
    }

    public void Dispose()
    {
        foreach (var part in parts) part.Matrix.Dispose();
        parts.Clear();
    }
}
