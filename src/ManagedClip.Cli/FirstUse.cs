using ManagedClip.IO.Distribution;
using ManagedClip.IO;

namespace ManagedClip.Cli;

/// <summary>
/// Which model folder a command uses, and the download on first use: with no <c>--model</c> and no model in the
/// caches (<see cref="ModelDirectory.FindDefault"/>), the real checkpoint is fetched into
/// <see cref="CachePaths.DownloadDirectory"/> once, with progress on stderr, as huggingface_hub does for Python users.
/// <c>$MANAGEDCLIP_MANIFEST</c> names another manifest (another revision, a private mirror's files).
/// </summary>
internal static class FirstUse
{
    public const string ManifestVariable = "MANAGEDCLIP_MANIFEST";

    private const string TinyHint = "pass --model DIR (in a checkout, --model testdata/reference/tiny runs the tiny reference model)";

    /// <summary>The folder to load: the one given, the cached one, or the download folder after downloading into it.</summary>
    public static string ModelFolder(string? given, TextWriter error)
    {
        if (!string.IsNullOrEmpty(given)) return given;
        var found = ModelDirectory.FindDefault();
        var download = CachePaths.DownloadDirectory;
        // An interrupted first download leaves the download folder without some of its files: finish it.
        bool incomplete = found is not null && SameFolder(found, download) && Manifest.Files.Any(f => !File.Exists(Path.Combine(download, f.Name)));
        if (found is not null && !incomplete) return found;

        if (HubEnvironment.Offline)
            throw new ModelDownloadException(
                $"no BiomedCLIP model in the caches ({download}, {Path.Combine(CachePaths.HuggingFaceModelCache, "snapshots")}) " +
                $"and {HubEnvironment.OfflineVariable} forbids downloading it; {TinyHint}");
        long total = Manifest.Files.Sum(f => f.Size ?? 0);
        error.WriteLine($"managedclip: no model in the caches; downloading BiomedCLIP ({total / 1e6:0} MB) into {download} (first use only)");
        try
        {
            DownloadAsync(download, error, CancellationToken.None).GetAwaiter().GetResult();
        }
        catch (ModelDownloadException e)
        {
            throw new ModelDownloadException($"the model could not be downloaded: {e.Message} Or {TinyHint}.", e);
        }
        return download;
    }

    /// <summary>Downloads every manifest file into <paramref name="folder"/>, drawing progress on <paramref name="error"/>.</summary>
    public static async Task<IReadOnlyList<DownloadResult>> DownloadAsync(string folder, TextWriter error, CancellationToken cancel)
    {
        var bar = new ProgressBar(error, redrawInPlace: ReferenceEquals(error, Console.Error) && !Console.IsErrorRedirected);
        try
        {
            return await new ModelDownloader(Manifest).DownloadAllAsync(folder, bar, cancel);
        }
        finally
        {
            bar.Complete();
        }
    }

    /// <summary>The built-in manifest, or <c>$MANAGEDCLIP_MANIFEST</c>.</summary>
    private static ModelManifest Manifest =>
        Environment.GetEnvironmentVariable(ManifestVariable) is { Length: > 0 } path ? ModelManifest.Load(path) : ModelManifest.Default;

    private static bool SameFolder(string a, string b) =>
        string.Equals(Path.TrimEndingDirectorySeparator(Path.GetFullPath(a)), Path.TrimEndingDirectorySeparator(Path.GetFullPath(b)), StringComparison.Ordinal);
}
