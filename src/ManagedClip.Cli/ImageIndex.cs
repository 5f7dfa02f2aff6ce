using System.Numerics.Tensors;
using System.Text.Json;
using ManagedClip.IO.Formats;

namespace ManagedClip.Cli;

/// <summary>
/// An image retrieval index: a .safetensors file with <c>embeddings</c> [N, E] (L2-normalised) and metadata
/// <c>format</c>, <c>root</c> (the indexed folder), <c>model</c> and <c>entries</c>, a JSON array of
/// {path (relative to root, '/'-separated), size, modified (UTC ticks)} in row order.
/// A file whose path, size and modification time are unchanged keeps its row when the index is rebuilt.
/// </summary>
internal sealed class ImageIndex
{
    public const string Format = "managedclip-image-index/1";

    // Files the indexer tries to decode; anything else in the folder is ignored, not reported.
    private static readonly HashSet<string> ImageExtensions = new(StringComparer.OrdinalIgnoreCase)
    {
        ".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".tga", ".pbm",
    };

    private const int FilesPerBatch = 8;

    private sealed record Entry(string Path, long Size, long Modified);

    private readonly List<Entry> entries;
    private readonly float[] embeddings; // [N, E]

    private ImageIndex(string root, string model, List<Entry> entries, float[] embeddings, int embeddingSize)
    {
        Root = root;
        Model = model;
        this.entries = entries;
        this.embeddings = embeddings;
        EmbeddingSize = embeddingSize;
    }

    public string Root { get; }
    public string Model { get; }
    public int EmbeddingSize { get; }
    public int Count => entries.Count;

    /// <summary>Reads an index file; anything that is not one is refused with a clear error.</summary>
    public static ImageIndex Load(string path)
    {
        using var file = SafeTensorsFile.Open(path);
        if (!file.Metadata.TryGetValue("format", out var format) || format != Format)
            throw new InvalidDataException($"{path}: not a managedclip image index (format '{format ?? "missing"}')");
        var info = file.Info("embeddings");
        if (info.Shape.Length != 2) throw new InvalidDataException($"{path}: embeddings must be 2-D, found {info.ShapeText}");
        var entries = JsonSerializer.Deserialize<List<Entry>>(file.Metadata["entries"], JsonOptions)
                      ?? throw new InvalidDataException($"{path}: entries missing");
        if (entries.Count != info.Shape[0])
            throw new InvalidDataException($"{path}: {entries.Count} entries but {info.Shape[0]} embedding rows");
        return new ImageIndex(file.Metadata["root"], file.Metadata["model"], entries, file.GetFloat32("embeddings").ToArray(), (int)info.Shape[1]);
    }

    /// <summary>Indexes every image under <paramref name="root"/> into <paramref name="indexPath"/>, reusing unchanged rows.</summary>
    public static IndexReport Build(ClipModel clip, string root, string indexPath, CountProgress progress)
    {
        root = Path.GetFullPath(root);
        int width = clip.EmbeddingSize;
        var previous = new Dictionary<string, (Entry Entry, int Row)>();
        ImageIndex? old = null;
        if (File.Exists(indexPath))
        {
            // Never overwrite a file that is not ours; start afresh when the model or folder changed.
            old = Load(indexPath);
            if (old.Model == clip.Source && old.EmbeddingSize == width && old.Root == root)
                for (int i = 0; i < old.entries.Count; i++) previous[old.entries[i].Path] = (old.entries[i], i);
        }

        var files = Directory.EnumerateFiles(root, "*", new EnumerationOptions { RecurseSubdirectories = true, IgnoreInaccessible = true })
            .Where(f => ImageExtensions.Contains(Path.GetExtension(f)) && Path.GetFullPath(f) != Path.GetFullPath(indexPath))
            .Order(StringComparer.Ordinal)
            .ToList();

        var kept = new List<(Entry Entry, float[] Embedding)>();
        var toEmbed = new List<Entry>();
        var skipped = new List<(string Path, string Error)>();
        foreach (var file in files)
        {
            var fileInfo = new FileInfo(file);
            var entry = new Entry(Path.GetRelativePath(root, file).Replace('\\', '/'), fileInfo.Length, fileInfo.LastWriteTimeUtc.Ticks);
            if (previous.TryGetValue(entry.Path, out var hit) && hit.Entry == entry)
                kept.Add((entry, old!.embeddings.AsSpan(hit.Row * width, width).ToArray()));
            else
                toEmbed.Add(entry);
        }

        int reused = kept.Count, embedded = 0;
        progress.Report(0, toEmbed.Count);
        for (int first = 0; first < toEmbed.Count; first += FilesPerBatch)
        {
            var batch = toEmbed.Skip(first).Take(FilesPerBatch).ToList();
            foreach (var (entry, embedding, problem) in EmbedBatch(clip, root, batch))
            {
                if (embedding != null) { kept.Add((entry, embedding)); embedded++; }
                else skipped.Add((entry.Path, problem!));
            }
            progress.Report(Math.Min(first + FilesPerBatch, toEmbed.Count), toEmbed.Count);
        }

        kept.Sort((a, b) => string.CompareOrdinal(a.Entry.Path, b.Entry.Path));
        var rows = new float[kept.Count * width]; // [N, E]
        for (int i = 0; i < kept.Count; i++) kept[i].Embedding.CopyTo(rows, i * width);
        var metadata = new Dictionary<string, string>
        {
            ["format"] = Format,
            ["root"] = root,
            ["model"] = clip.Source,
            ["entries"] = JsonSerializer.Serialize(kept.Select(k => k.Entry).ToList(), JsonOptions),
        };
        SafeTensorsWriter.Write(indexPath, [SafeTensorsWriter.Float32("embeddings", [kept.Count, width], rows)], metadata, overwrite: true);
        return new IndexReport(indexPath, kept.Count, embedded, reused, skipped);
    }

    /// <summary>The k rows most similar (cosine) to the query, best first.</summary>
    public List<(string Path, float Score)> Search(float[] query, int k)
    {
        var unit = (float[])query.Clone();
        TensorPrimitives.Divide(unit, MathF.Max(TensorPrimitives.Norm(unit), 1e-12f), unit);
        var scores = new float[Count];
        for (int i = 0; i < Count; i++) scores[i] = TensorPrimitives.Dot(unit, embeddings.AsSpan(i * EmbeddingSize, EmbeddingSize));
        return Enumerable.Range(0, Count)
            .OrderByDescending(i => scores[i]).ThenBy(i => entries[i].Path, StringComparer.Ordinal)
            .Take(k)
            .Select(i => (Path.Combine(Root, entries[i].Path), scores[i]))
            .ToList();
    }

    // Embeds a batch in one pass; if any file is unreadable, embeds them one by one to find and report it.
    private static IEnumerable<(Entry Entry, float[]? Embedding, string? Problem)> EmbedBatch(ClipModel clip, string root, List<Entry> batch)
    {
        var inputs = batch.Select(e => ImageInput.FromFile(Path.Combine(root, e.Path))).ToList();
        float[][]? embeddings = null;
        try
        {
            embeddings = clip.EmbedImages(inputs);
        }
        catch (Exception e) when (CliErrors.IsUserError(e))
        {
        }
        if (embeddings != null)
        {
            for (int i = 0; i < batch.Count; i++) yield return (batch[i], embeddings[i], null);
            yield break;
        }
        foreach (var entry in batch)
        {
            float[]? embedding = null;
            string? problem = null;
            try
            {
                embedding = clip.EmbedImage(Path.Combine(root, entry.Path));
            }
            catch (Exception e) when (CliErrors.IsUserError(e))
            {
                problem = e.Message;
            }
            yield return (entry, embedding, problem);
        }
    }

    private static readonly JsonSerializerOptions JsonOptions = new() { PropertyNamingPolicy = JsonNamingPolicy.CamelCase };
}

/// <summary>What <c>managedclip index</c> did.</summary>
internal sealed record IndexReport(string IndexPath, int Images, int Embedded, int Reused, List<(string Path, string Error)> Skipped)
{
    public void Write(Utf8JsonWriter writer)
    {
        writer.WriteStartObject();
        writer.WriteString("index", IndexPath);
        writer.WriteNumber("images", Images);
        writer.WriteNumber("embedded", Embedded);
        writer.WriteNumber("reused", Reused);
        writer.WriteStartArray("skipped");
        foreach (var (path, error) in Skipped)
        {
            writer.WriteStartObject();
            writer.WriteString("path", path);
            writer.WriteString("error", error);
            writer.WriteEndObject();
        }
        writer.WriteEndArray();
        writer.WriteEndObject();
    }
}
