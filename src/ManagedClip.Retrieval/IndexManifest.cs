using System.Globalization;
using System.Text.Json;

namespace ManagedClip.Retrieval;

/// <summary>One part of an index: <c>NAME.npy</c> (embeddings) and <c>NAME.parquet</c> (row metadata), row for row.</summary>
internal sealed class PartEntry
{
    public required string Name { get; init; }
    public required long Rows { get; init; }

    /// <summary>Rows whose file could not be embedded (their vector is zeros); search skips them.</summary>
    public long[] ErrorRows { get; init; } = [];

    /// <summary>Rows superseded or deleted since the part was written (tombstones); search skips them.</summary>
    public SortedSet<long> Deleted { get; init; } = [];

    public long LiveRows => Rows - Deleted.Count;

    public string NpyName => Name + ".npy";
    public string ParquetName => Name + ".parquet";
}

/// <summary>
/// <c>manifest.json</c>: what an index folder holds. It is the commit point: a part exists for readers only once the
/// manifest naming it has been renamed into place (after the part's files were flushed to disk), so a crash at any
/// moment leaves the previous manifest and its parts intact, and files it does not name are leftovers.
/// </summary>
internal sealed class IndexManifest
{
    public const string FileName = "manifest.json";
    public const string Format = "managedclip-image-index";
    public const int Version = 1;

    // A manifest lists parts and a few numbers per exceptional row; anything this large is not one.
    private const long MaxBytes = 256L << 20;

    public required ModelIdentity Model { get; init; }
    public required EmbeddingDType DType { get; init; }
    public required string Root { get; set; }
    public required Shard Shard { get; init; }
    public bool Complete { get; set; }
    public List<PartEntry> Parts { get; init; } = [];
    public long NextPart { get; set; } = 1;
    public DateTime Created { get; init; } = DateTime.UtcNow;
    public DateTime Updated { get; set; } = DateTime.UtcNow;

    public int EmbeddingSize => Model.EmbeddingSize;
    public long LiveRows => Parts.Sum(p => p.LiveRows);

    public string NewPartName() => $"part-{(NextPart++).ToString("D6", CultureInfo.InvariantCulture)}";

    public static bool Exists(string folder) => File.Exists(Path.Combine(folder, FileName));

    public void Save(string folder)
    {
        Updated = DateTime.UtcNow;
        var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteString("format", Format);
            w.WriteNumber("version", Version);
            w.WriteStartObject("model");
            w.WriteString("id", Model.Id);
            w.WriteString("weights_sha256", Model.WeightsSha256);
            w.WriteString("config_sha256", Model.ConfigSha256);
            if (Model.VocabularySha256 is { } vocab) w.WriteString("vocab_sha256", vocab);
            else w.WriteNull("vocab_sha256");
            w.WriteString("source", Model.Source);
            w.WriteEndObject();
            w.WriteNumber("embedding_dim", Model.EmbeddingSize);
            w.WriteString("dtype", DType == EmbeddingDType.Float16 ? "f16" : "f32");
            w.WriteString("root", Root);
            w.WriteStartObject("shard");
            w.WriteNumber("index", Shard.Index);
            w.WriteNumber("count", Shard.Count);
            w.WriteEndObject();
            w.WriteBoolean("complete", Complete);
            w.WriteNumber("rows", LiveRows);
            w.WriteNumber("next_part", NextPart);
            w.WriteString("created", Created.ToString("O", CultureInfo.InvariantCulture));
            w.WriteString("updated", Updated.ToString("O", CultureInfo.InvariantCulture));
            w.WriteStartArray("parts");
            foreach (var part in Parts)
            {
                w.WriteStartObject();
                w.WriteString("name", part.Name);
                w.WriteNumber("rows", part.Rows);
                w.WriteStartArray("errors");
                foreach (var r in part.ErrorRows) w.WriteNumberValue(r);
                w.WriteEndArray();
                w.WriteStartArray("deleted");
                foreach (var r in part.Deleted) w.WriteNumberValue(r);
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        buffer.WriteByte((byte)'\n');
        Durable.WriteAtomically(Path.Combine(folder, FileName), buffer.GetBuffer().AsSpan(0, (int)buffer.Length));
    }

    /// <summary>Reads and checks a manifest; anything malformed is one clear error naming the file.</summary>
    public static IndexManifest Load(string folder)
    {
        string path = Path.Combine(folder, FileName);
        var info = new FileInfo(path);
        if (!info.Exists)
            throw new InvalidDataException(Directory.Exists(folder)
                ? $"{folder}: not a managedclip index (no {FileName})."
                : $"{folder}: no such index folder.");
        if (info.Length > MaxBytes) throw new InvalidDataException($"{path}: {info.Length} bytes is too large for an index manifest.");
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(File.ReadAllBytes(path), new JsonDocumentOptions { MaxDepth = 8 });
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: not valid JSON (damaged or truncated?) at line {e.LineNumber + 1}, byte {e.BytePositionInLine + 1}.");
        }
        using (document)
        {
            try
            {
                return Parse(path, document.RootElement);
            }
            catch (Exception e) when (e is InvalidOperationException or KeyNotFoundException or FormatException or OverflowException or ArgumentException)
            {
                throw new InvalidDataException($"{path}: not a valid index manifest ({e.Message.ReplaceLineEndings(" ")}).");
            }
        }
    }

    private static IndexManifest Parse(string path, JsonElement root)
    {
        if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("format", out var format) || format.GetString() != Format)
            throw new InvalidDataException($"{path}: not a managedclip index manifest (no \"format\": \"{Format}\").");
        int version = root.GetProperty("version").GetInt32();
        if (version != Version)
            throw new InvalidDataException($"{path}: index format version {version}; this managedclip reads version {Version}.");
        var model = root.GetProperty("model");
        int width = root.GetProperty("embedding_dim").GetInt32();
        if (width < 1 || width > 1 << 16) throw new InvalidDataException($"{path}: embedding_dim {width} is implausible.");
        var identity = new ModelIdentity(
            Hex(path, model.GetProperty("id").GetString()),
            Hex(path, model.GetProperty("weights_sha256").GetString()),
            Hex(path, model.GetProperty("config_sha256").GetString()),
            model.GetProperty("vocab_sha256").ValueKind == JsonValueKind.Null ? null : Hex(path, model.GetProperty("vocab_sha256").GetString()),
            width,
            model.GetProperty("source").GetString() ?? "");
        var dtype = root.GetProperty("dtype").GetString() switch
        {
            "f32" => EmbeddingDType.Float32,
            "f16" => EmbeddingDType.Float16,
            var other => throw new InvalidDataException($"{path}: dtype '{other}' is not f32 or f16."),
        };
        var shard = root.GetProperty("shard");
        int shardIndex = shard.GetProperty("index").GetInt32(), shardCount = shard.GetProperty("count").GetInt32();
        if (shardCount < 1 || shardIndex < 0 || shardIndex >= shardCount)
            throw new InvalidDataException($"{path}: shard {shardIndex}/{shardCount} is not valid.");
        var manifest = new IndexManifest
        {
            Model = identity,
            DType = dtype,
            Root = root.GetProperty("root").GetString() ?? throw new InvalidDataException($"{path}: root is null."),
            Shard = new Shard(shardIndex, shardCount),
            Complete = root.GetProperty("complete").GetBoolean(),
            NextPart = root.GetProperty("next_part").GetInt64(),
            Created = DateTime.Parse(root.GetProperty("created").GetString()!, CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind),
            Updated = DateTime.Parse(root.GetProperty("updated").GetString()!, CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind),
        };
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var part in root.GetProperty("parts").EnumerateArray())
        {
            string name = part.GetProperty("name").GetString() ?? "";
            if (!IsPartName(name)) throw new InvalidDataException($"{path}: part name '{name}' is not part-NNNNNN (digits).");
            if (!names.Add(name)) throw new InvalidDataException($"{path}: part {name} is listed twice.");
            long rows = part.GetProperty("rows").GetInt64();
            if (rows < 0) throw new InvalidDataException($"{path}: part {name} has {rows} rows.");
            var errors = part.GetProperty("errors").EnumerateArray().Select(e => e.GetInt64()).ToArray();
            var deleted = new SortedSet<long>(part.GetProperty("deleted").EnumerateArray().Select(e => e.GetInt64()));
            if (errors.Any(r => r < 0 || r >= rows) || deleted.Any(r => r < 0 || r >= rows))
                throw new InvalidDataException($"{path}: part {name} lists a row outside its {rows} rows.");
            Array.Sort(errors);
            manifest.Parts.Add(new PartEntry { Name = name, Rows = rows, ErrorRows = errors, Deleted = deleted });
        }
        return manifest;
    }

    public static bool IsPartName(string name) =>
        name.Length is >= 11 and <= 24 && name.StartsWith("part-", StringComparison.Ordinal) && name[5..].All(char.IsAsciiDigit);

    private static string Hex(string path, string? value) =>
        value is { Length: 64 } && value.All(char.IsAsciiHexDigitLower) ? value
            : throw new InvalidDataException($"{path}: '{value}' is not a SHA-256 in hex.");
}
