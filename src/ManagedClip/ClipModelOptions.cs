namespace ManagedClip;

/// <summary>
/// How <see cref="ClipModel.Load(ClipModelOptions)"/> finds and prepares a model. Every setting has a default, so
/// <c>new ClipModelOptions()</c> loads the model the way <see cref="ClipModel.Load(string?, string?)"/> does.
/// </summary>
public sealed class ClipModelOptions
{
    /// <summary>
    /// Folder with open_clip_config.json, weights and vocab.txt. Null searches <c>MANAGEDCLIP_MODEL</c>, the
    /// <c>managedclip download</c> cache, then the Hugging Face hub cache.
    /// </summary>
    public string? ModelDirectory { get; set; }

    /// <summary>Another weights file (.bin or .safetensors) to use with the model folder's configs.</summary>
    public string? WeightsFile { get; set; }

    /// <summary>
    /// Map the block weights from a packed-weights file (the GEMM's panel layout, built on first load and shared by
    /// every process through the page cache) instead of packing ~700 MB in memory at every load. True by default;
    /// models whose packed weights are under 32 MB (the tiny test model) are always packed in memory. A file that cannot
    /// be written (read-only folders, a full disk) falls back to packing in memory with a note (see <see cref="Notes"/>).
    /// </summary>
    public bool UsePackedWeightsFile { get; set; } = true;

    /// <summary>
    /// Folder for the packed-weights file. Null: next to the weights file if that folder is writable, else
    /// <c>~/.cache/managedclip/packed-weights</c> (<c>$XDG_CACHE_HOME</c>).
    /// </summary>
    public string? PackedWeightsDirectory { get; set; }

    /// <summary>
    /// Check every panel's SHA-256 when mapping the packed-weights file, reading all of it (about half a second for
    /// BiomedCLIP). Header, table, sizes and the weights file's identity are checked on every load regardless.
    /// </summary>
    public bool VerifyPackedWeights { get; set; }

    /// <summary>
    /// Receives one-line notes about loading: a packed-weights file being built, or why none could be written. Null
    /// writes them to standard error, prefixed "managedclip: ".
    /// </summary>
    public Action<string>? Notes { get; set; }

    /// <summary>Packed weights smaller than this are packed in memory (milliseconds) rather than kept in a file; tests lower it.</summary>
    internal long PackedWeightsMinimumBytes { get; set; } = 32L << 20;
}
