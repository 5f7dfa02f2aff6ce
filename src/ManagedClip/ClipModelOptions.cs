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
    /// Threads one forward pass of this model computes on (the calling thread and helpers), from 1 to 1024; null
    /// (the default) uses all cores. Two models with 2 threads each can compute side by side on a 4-core machine.
    /// </summary>
    /// <remarks>The helper threads belong to the process and serve one parallel loop at a time: a loop that finds
    /// them busy (another model's pass at that moment) runs on its calling thread alone, so results never depend on
    /// the thread count, only the speed does.</remarks>
    public int? Threads { get; set; }

    /// <summary>
    /// Images per forward pass of the image tower, from 1 to 256 (default 8): 8·197 token rows keep every matrix
    /// product large while the activations stay near 60 MB; memory grows linearly with it. Cancellation and
    /// <see cref="ClipModel.Dispose"/> take effect between passes.
    /// </summary>
    public int ImagesPerPass { get; set; } = ClipModel.DefaultImagesPerPass;

    /// <summary>
    /// Tokens per forward pass of the text tower (the texts' real tokens stacked, at least one whole text per pass),
    /// from 1 to 65536 (default 2048): bounds the activations of a long batch of texts. Cancellation and
    /// <see cref="ClipModel.Dispose"/> take effect between passes.
    /// </summary>
    public int TokensPerPass { get; set; } = ClipModel.DefaultTokensPerPass;

    /// <summary>
    /// Number format of the towers' block weights (see <see cref="ClipPrecision"/>): <see cref="ClipPrecision.Float32"/>
    /// (default) is exact; <see cref="ClipPrecision.BFloat16"/> and <see cref="ClipPrecision.Int8"/> trade a measured
    /// loss of accuracy for memory and speed.
    /// </summary>
    public ClipPrecision Precision { get; set; } = ClipPrecision.Float32;

    /// <summary>
    /// With <see cref="ClipPrecision.Int8"/>: take each activation row's outlier values (above 4× the RMS of the rest
    /// of the row, at most K/64) out of the uint8 quantization and compute them in float32 (true, the default). Trained
    /// transformers have such channels, and without this their int8 cosine to float32 drops (0.9995 → 0.9975 on a real
    /// BERT); a model known to have none may turn it off to save its cost (docs/PRECISION.md). Ignored by other precisions.
    /// </summary>
    public bool Int8OutlierDecomposition { get; set; } = true;

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

    /// <summary>Refuses settings out of range with one line naming the setting.</summary>
    internal void Validate()
    {
        if (Threads is < 1 or > 1024)
            throw OutOfRange($"ClipModelOptions.Threads is {Threads}; it must be between 1 and 1024 (or null for all cores)");
        if (ImagesPerPass is < 1 or > 256)
            throw OutOfRange($"ClipModelOptions.ImagesPerPass is {ImagesPerPass}; it must be between 1 and 256");
        if (TokensPerPass is < 1 or > 65536)
            throw OutOfRange($"ClipModelOptions.TokensPerPass is {TokensPerPass}; it must be between 1 and 65536");
    }

    // No parameter name: the message is the whole line a user sees.
    private static ArgumentOutOfRangeException OutOfRange(string message) => new(paramName: null, message);
}
