namespace ManagedClip.IO.Distribution;

/// <summary>Where model files live on a user's machine.</summary>
public static class CachePaths
{
    /// <summary>Hugging Face repository of the model.</summary>
    public const string RepositoryId = "microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224";

    /// <summary>
    /// Folder that <c>managedclip download</c> fills: <c>$MANAGEDCLIP_CACHE</c>, else
    /// <c>$XDG_CACHE_HOME/managedclip/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224</c> (XDG default <c>~/.cache</c>).
    /// </summary>
    public static string DownloadDirectory
    {
        get
        {
            var explicitDir = Environment.GetEnvironmentVariable("MANAGEDCLIP_CACHE");
            if (!string.IsNullOrEmpty(explicitDir)) return explicitDir;
            return Path.Combine(CacheHome, "managedclip", "BiomedCLIP-PubMedBERT_256-vit_base_patch16_224");
        }
    }

    /// <summary>
    /// The Hugging Face hub cache folder of the model (its <c>snapshots/*</c> hold the files):
    /// <c>$HF_HUB_CACHE</c>, else <c>$HF_HOME/hub</c>, else <c>~/.cache/huggingface/hub</c>.
    /// </summary>
    public static string HuggingFaceModelCache
    {
        get
        {
            var hub = Environment.GetEnvironmentVariable("HF_HUB_CACHE");
            if (string.IsNullOrEmpty(hub)) hub = Path.Combine(HuggingFaceHome, "hub");
            return Path.Combine(hub, "models--" + RepositoryId.Replace("/", "--"));
        }
    }

    /// <summary>huggingface_hub's home folder: <c>$HF_HOME</c>, else <c>$XDG_CACHE_HOME/huggingface</c> (<c>~/.cache/huggingface</c>).</summary>
    public static string HuggingFaceHome
    {
        get
        {
            var home = Environment.GetEnvironmentVariable("HF_HOME");
            return string.IsNullOrEmpty(home) ? Path.Combine(CacheHome, "huggingface") : home;
        }
    }

    /// <summary>
    /// Folder for packed-weights files of models whose own folder is read-only:
    /// <c>$XDG_CACHE_HOME/managedclip/packed-weights</c> (XDG default <c>~/.cache</c>).
    /// </summary>
    public static string PackedWeightsDirectory => Path.Combine(CacheHome, "managedclip", "packed-weights");

    private static string CacheHome
    {
        get
        {
            var xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
            return string.IsNullOrEmpty(xdg)
                ? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache")
                : xdg;
        }
    }
}
