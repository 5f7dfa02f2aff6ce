namespace ManagedClip.Retrieval;

/// <summary>How <see cref="ImageIndex.Open"/> builds or updates an index.</summary>
public sealed class IndexOptions
{
    /// <summary>Storage type of the embeddings. An existing index keeps its own; asking for another is an error.</summary>
    public EmbeddingDType DType { get; init; } = EmbeddingDType.Float32;

    /// <summary>Which files this run embeds; a sharded run writes the sub-index <c>OUT/shard-i-of-N</c>.</summary>
    public Shard Shard { get; init; } = Shard.Whole;

    /// <summary>A part is committed after this many images …</summary>
    public int ChunkImages { get; init; } = 256;

    /// <summary>… or after this much time, whichever comes first: what a crash can lose at most.</summary>
    public TimeSpan ChunkTime { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Replace an existing index made by another model, of another folder, shard or dtype.</summary>
    public bool Force { get; init; }

    /// <summary>Try again the files that failed last time (e.g. after a decoder was added) even if unchanged.</summary>
    public bool RetryErrors { get; init; }

    /// <summary>Small parts are combined into parts of up to this many rows (262144 rows of 512 float32 = 512 MiB).</summary>
    public long RowsPerPart { get; init; } = 262_144;

    /// <summary>Reports progress (parts committed, images done); called on the indexing thread.</summary>
    public IProgress<IndexProgress>? Progress { get; init; }
}

/// <summary>Progress of an index run.</summary>
/// <param name="Done">Files checked or embedded so far in this run.</param>
/// <param name="Total">Files this run has to check or embed.</param>
/// <param name="PartsCommitted">Parts made durable so far in this run.</param>
/// <param name="Event">What just happened, e.g. "committed part-000003 (256 rows)", or null for a plain count.</param>
public sealed record IndexProgress(long Done, long Total, int PartsCommitted, string? Event);

/// <summary>One file's outcome in a run, streamed as it happens (before its part is committed).</summary>
/// <param name="RelativePath">The row's key.</param>
/// <param name="Embedding">[E], or null when <paramref name="Error"/> says why not.</param>
/// <param name="Error">One line, or null.</param>
/// <param name="Reused">True when the embedding was taken from the index (same content, new size or time).</param>
public sealed record IndexedImage(string RelativePath, float[]? Embedding, string? Error, bool Reused);

/// <summary>What an index run did. Counts are rows (files).</summary>
public sealed class IndexReport
{
    public required string Index { get; init; }
    public required string Root { get; init; }
    public required Shard Shard { get; init; }
    public required ModelIdentity Model { get; init; }
    public required EmbeddingDType DType { get; init; }
    /// <summary>Live rows in the index now (with errors).</summary>
    public long Rows { get; set; }
    /// <summary>Files embedded by this run.</summary>
    public long Embedded { get; set; }
    /// <summary>Rows kept from earlier runs (unchanged files, and files whose content hash proved them unchanged).</summary>
    public long Reused { get; set; }
    /// <summary>Of <see cref="Reused"/>, files whose size or time changed but whose content hash did not.</summary>
    public long Rehashed { get; set; }
    /// <summary>Rows removed because their file is gone (or left this shard).</summary>
    public long Deleted { get; set; }
    /// <summary>Rows (now) holding an error instead of an embedding.</summary>
    public long Errors { get; set; }
    /// <summary>Up to 100 of them, for the report.</summary>
    public List<(string Path, string Error)> ErrorSamples { get; } = [];
    public int SymlinkedFoldersSkipped { get; set; }
    public int RepeatedFoldersSkipped { get; set; }
    public List<(string Path, string Error)> UnreadableFolders { get; set; } = [];
    /// <summary>Parts written by this run (commits and compaction).</summary>
    public int PartsWritten { get; set; }
    public int Parts { get; set; }
    public double Seconds { get; set; }
    /// <summary>True when the run stopped early (cancelled); committed parts are kept and a rerun continues.</summary>
    public bool Interrupted { get; set; }
}
