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
    /// Number format of the towers' block weights (see <see cref="ClipPrecision"/>): <see cref="ClipPrecision.Float32"/>
    /// (default) is exact; <see cref="ClipPrecision.BFloat16"/> and <see cref="ClipPrecision.Int8"/> trade a measured
    /// loss of accuracy for memory and speed.
    /// </summary>
    public ClipPrecision Precision { get; set; } = ClipPrecision.Float32;
}
