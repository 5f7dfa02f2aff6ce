using Parquet;

namespace ManagedClip.Retrieval;

/// <summary>
/// Writes one part (its .npy and .parquet) row by row, for a row count fixed up front, so that parts of any size
/// stream through without holding their rows in memory. <see cref="Complete"/> flushes both files to disk; only then
/// may a manifest name the part.
/// </summary>
internal sealed class PartBuilder : IDisposable
{
    private readonly string folder;
    private readonly string modelId;
    private readonly NpyWriter npy;
    private readonly FileStream parquetStream;
    private readonly ParquetWriter parquet;
    private readonly List<IndexRow> group = new(PartMetadata.RowsPerGroup);
    private readonly List<long> errorRows = [];
    private readonly long rows;
    private long added;
    private bool completed;

    public string Name { get; }

    public PartBuilder(string folder, string name, long rows, int columns, EmbeddingDType dtype, string modelId)
    {
        this.folder = folder;
        this.modelId = modelId;
        this.rows = rows;
        Name = name;
        npy = new NpyWriter(Path.Combine(folder, name + ".npy"), rows, columns, dtype);
        try
        {
            parquetStream = new FileStream(Path.Combine(folder, name + ".parquet"), FileMode.Create, FileAccess.ReadWrite, FileShare.None);
            parquet = ParquetWriter.CreateAsync(PartMetadata.Schema, parquetStream).GetAwaiter().GetResult();
            parquet.CustomMetadata = new Dictionary<string, string> { ["managedclip.model_id"] = modelId };
        }
        catch
        {
            npy.Dispose();
            parquetStream?.Dispose();
            throw;
        }
    }

    /// <summary>Adds a row: its vector as float32 (null for a row with an error: stored as zeros).</summary>
    public void Add(IndexRow row, ReadOnlySpan<float> vector)
    {
        if (row.Error != null) errorRows.Add(added);
        npy.Append(vector);
        AddMetadata(row);
    }

    /// <summary>Adds a row whose vector is already in the part's dtype (copied between parts bit for bit).</summary>
    public void AddRaw(IndexRow row, ReadOnlySpan<byte> vector)
    {
        if (row.Error != null) errorRows.Add(added);
        npy.AppendRaw(vector);
        AddMetadata(row);
    }

    private void AddMetadata(IndexRow row)
    {
        group.Add(row);
        added++;
        if (group.Count == PartMetadata.RowsPerGroup) FlushGroup();
    }

    private void FlushGroup()
    {
        PartMetadata.WriteGroupAsync(parquet, group, modelId).GetAwaiter().GetResult();
        group.Clear();
    }

    /// <summary>Finishes both files and flushes them to disk; returns the manifest entry for the part.</summary>
    public PartEntry Complete()
    {
        if (added != rows) throw new InvalidOperationException($"part {Name}: {added} rows added, {rows} announced");
        if (group.Count > 0 || rows == 0) FlushGroup();
        npy.Complete();
        parquet.DisposeAsync().AsTask().GetAwaiter().GetResult(); // writes the footer
        parquetStream.Flush(flushToDisk: true);
        completed = true;
        return new PartEntry { Name = Name, Rows = rows, ErrorRows = errorRows.ToArray() };
    }

    public void Dispose()
    {
        npy.Dispose();
        if (!completed)
        {
            try { parquet.DisposeAsync().AsTask().GetAwaiter().GetResult(); }
            catch (Exception e) when (e is IOException or InvalidOperationException or ArgumentException) { }
        }
        parquetStream.Dispose();
        if (!completed)
        {
            // An unfinished part is never named by a manifest; remove it now rather than leave it for the next run.
            Durable.TryDelete(Path.Combine(folder, Name + ".npy"));
            Durable.TryDelete(Path.Combine(folder, Name + ".parquet"));
        }
    }
}
