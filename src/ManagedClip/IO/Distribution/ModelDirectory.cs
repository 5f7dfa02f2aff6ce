using ManagedClip.IO.Formats;
using ManagedClip.Model;

namespace ManagedClip.IO.Distribution;

/// <summary>
/// A BiomedCLIP model folder in the Hugging Face layout: <c>open_clip_config.json</c>, weights
/// (<c>*.safetensors</c> preferred over <c>open_clip_pytorch_model.bin</c>), <c>vocab.txt</c>, and optionally the text
/// model's <c>config.json</c> (in the folder <c>hf_model_name</c> names, or beside the config). Symlinked files (as in
/// the Hugging Face hub cache, which links snapshot files into <c>../../blobs</c>) are resolved to their targets.
/// </summary>
public sealed class ModelDirectory
{
    /// <summary>The open_clip configuration file.</summary>
    public const string ConfigFileName = "open_clip_config.json";

    /// <summary>The torch checkpoint the model card ships.</summary>
    public const string TorchWeightsFileName = "open_clip_pytorch_model.bin";

    /// <summary>The WordPiece vocabulary.</summary>
    public const string VocabularyFileName = "vocab.txt";

    /// <summary>Environment variable naming a model folder.</summary>
    public const string EnvironmentVariable = "MANAGEDCLIP_MODEL";

    /// <summary>Safetensors names preferred when a folder holds several (others, e.g. test outputs, are not weights).</summary>
    private static readonly string[] PreferredSafeTensorsNames = ["open_clip_model.safetensors", "model.safetensors"];

    private readonly string? vocabularyPath;
    private readonly string[] vocabularyCandidates;

    /// <summary>The model folder (full path).</summary>
    public string Root { get; }

    /// <summary>The <c>open_clip_config.json</c> read (symlinks resolved).</summary>
    public string ConfigPath { get; }

    /// <summary>The parsed configuration.</summary>
    public ClipConfig Config { get; }

    /// <summary>The weights file used: the override if one was given, else the folder's (symlinks resolved).</summary>
    public string WeightsPath { get; }

    /// <summary>The BERT <c>config.json</c> the text sizes came from, or null when BiomedBERT's built-in sizes were used.</summary>
    public string? TextConfigPath { get; }

    /// <summary>The <c>vocab.txt</c> to tokenize with.</summary>
    /// <exception cref="FileNotFoundException">The folder has no vocabulary; the message lists where it looked.</exception>
    public string VocabularyPath => vocabularyPath ?? throw new FileNotFoundException(
        $"No {VocabularyFileName} for the model in {Root} (looked for {string.Join(" and ", vocabularyCandidates)}).");

    private ModelDirectory(string root, string configPath, OpenClipConfigReader.Result parsed, string weightsPath,
        string[] vocabularyCandidates)
    {
        Root = root;
        ConfigPath = configPath;
        Config = parsed.Config;
        TextConfigPath = parsed.TextConfigPath is null ? null : ResolveLinks(parsed.TextConfigPath);
        WeightsPath = weightsPath;
        this.vocabularyCandidates = vocabularyCandidates;
        vocabularyPath = vocabularyCandidates.Where(File.Exists).Select(ResolveLinks).FirstOrDefault();
    }

    /// <summary>Reads the model folder <paramref name="directory"/>.</summary>
    /// <param name="directory">Folder holding <c>open_clip_config.json</c>.</param>
    /// <param name="weightsOverride">A weights file to use instead of the folder's own (the configs still come from the folder).</param>
    /// <exception cref="DirectoryNotFoundException">No such folder.</exception>
    /// <exception cref="FileNotFoundException">No config, no weights, or a missing override file.</exception>
    /// <exception cref="InvalidDataException">A config is malformed or describes an unsupported architecture.</exception>
    public static ModelDirectory Open(string directory, string? weightsOverride = null)
    {
        var root = Path.GetFullPath(directory);
        if (!Directory.Exists(root)) throw new DirectoryNotFoundException($"Model folder not found: {directory}");
        var configPath = Path.Combine(root, ConfigFileName);
        if (!File.Exists(configPath)) throw new FileNotFoundException($"{root} is not a model folder: it has no {ConfigFileName}.", configPath);
        configPath = ResolveLinks(configPath);
        var parsed = OpenClipConfigReader.Read(configPath, root);

        string weights;
        if (weightsOverride is not null)
        {
            GuardedFile.Check(weightsOverride, "weights file");
            weights = ResolveLinks(Path.GetFullPath(weightsOverride));
        }
        else weights = ResolveLinks(FindWeights(root));

        string[] vocabularyFolders = parsed.TextFolder is null ? [root] : [parsed.TextFolder, root];
        return new ModelDirectory(root, configPath, parsed, weights,
            vocabularyFolders.Select(f => Path.Combine(f, VocabularyFileName)).ToArray());
    }

    /// <summary>
    /// Finds the model: <paramref name="explicitDirectory"/> (a <c>--model</c> argument) if given, else
    /// <see cref="FindDefault"/>. An explicit folder or the variable is used as given (a broken one is an error, not skipped).
    /// </summary>
    /// <exception cref="DirectoryNotFoundException">Nothing found; the message lists every place searched.</exception>
    public static ModelDirectory Resolve(string? explicitDirectory = null, string? weightsOverride = null)
    {
        if (!string.IsNullOrEmpty(explicitDirectory)) return Open(explicitDirectory, weightsOverride);
        var found = FindDefault();
        if (found is not null) return Open(found, weightsOverride);
        throw new DirectoryNotFoundException(
            "No BiomedCLIP model found. Searched: the --model argument (not given); " +
            $"${EnvironmentVariable} (not set); the download folder {CachePaths.DownloadDirectory} (no {ConfigFileName}); " +
            $"the Hugging Face cache {Path.Combine(CachePaths.HuggingFaceModelCache, "snapshots")} (no snapshot with {ConfigFileName}). " +
            "Run `managedclip download` or pass --model DIR.");
    }

    /// <summary>
    /// The model folder used when none is given: <c>$MANAGEDCLIP_MODEL</c> if set (as is, even if broken), else
    /// <see cref="CachePaths.DownloadDirectory"/> if it holds a config, else the current snapshot with a config in the
    /// Hugging Face hub cache (<see cref="CachePaths.HuggingFaceModelCache"/>); null when there is none.
    /// </summary>
    public static string? FindDefault()
    {
        var fromEnvironment = Environment.GetEnvironmentVariable(EnvironmentVariable);
        if (!string.IsNullOrEmpty(fromEnvironment)) return fromEnvironment;
        var download = CachePaths.DownloadDirectory;
        if (File.Exists(Path.Combine(download, ConfigFileName))) return download;
        return NewestSnapshot(CachePaths.HuggingFaceModelCache);
    }

    /// <summary>Opens the weights and checks them against the config (every needed tensor present with the implied shape).</summary>
    /// <exception cref="InvalidDataException">Malformed file, or tensors that do not fit the config.</exception>
    internal TensorStore OpenWeights()
    {
        var store = TensorFiles.OpenWeights(WeightsPath);
        try
        {
            ClipStateDict.Validate(store, Config);
            return store;
        }
        catch
        {
            store.Dispose();
            throw;
        }
    }

    private static string FindWeights(string root)
    {
        var safetensors = Directory.GetFiles(root, "*.safetensors").Select(Path.GetFileName).OfType<string>().Order(StringComparer.Ordinal).ToList();
        var preferred = PreferredSafeTensorsNames.FirstOrDefault(safetensors.Contains);
        if (preferred is not null) return Path.Combine(root, preferred);
        if (safetensors.Count == 1) return Path.Combine(root, safetensors[0]);
        if (safetensors.Count > 1)
            throw new InvalidDataException(
                $"{root}: several .safetensors files ({string.Join(", ", safetensors)}) and none is named {string.Join(" or ", PreferredSafeTensorsNames)}; pass --weights FILE.");
        var bin = Path.Combine(root, TorchWeightsFileName);
        if (File.Exists(bin)) return bin;
        throw new FileNotFoundException($"{root}: no weights (neither *.safetensors nor {TorchWeightsFileName}).");
    }

    /// <summary>
    /// The hub cache keeps one folder per revision under <c>snapshots/</c>; <c>refs/main</c> names the current one.
    /// Prefer it, else the most recently written snapshot that has a config.
    /// </summary>
    private static string? NewestSnapshot(string hubModelFolder)
    {
        var snapshots = Path.Combine(hubModelFolder, "snapshots");
        if (!Directory.Exists(snapshots)) return null;
        bool HasConfig(string folder) => File.Exists(Path.Combine(folder, ConfigFileName));

        var mainRef = Path.Combine(hubModelFolder, "refs", "main");
        if (File.Exists(mainRef) && TryReadSmallText(mainRef) is { } text)
        {
            var revision = text.Trim();
            var folder = Path.Combine(snapshots, revision);
            if (revision.Length > 0 && revision.All(char.IsAsciiLetterOrDigit) && HasConfig(folder)) return folder;
        }
        return Directory.GetDirectories(snapshots).Where(HasConfig)
            .OrderByDescending(Directory.GetLastWriteTimeUtc).ThenBy(f => f, StringComparer.Ordinal).FirstOrDefault();
    }

    /// <summary>A short cache file's text, or null when it is not a small readable UTF-8 file (then it is ignored).</summary>
    private static string? TryReadSmallText(string path)
    {
        try
        {
            return GuardedFile.ReadAllText(path, 256, "cache reference");
        }
        catch (Exception e) when (e is InvalidDataException or IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>The final target of a symlinked file (hub snapshots link into <c>../../blobs</c>), or the path itself.</summary>
    private static string ResolveLinks(string path)
    {
        var info = new FileInfo(path);
        if (info.LinkTarget is null) return info.FullName;
        var target = File.ResolveLinkTarget(path, returnFinalTarget: true);
        if (target is null || !target.Exists)
            throw new FileNotFoundException($"{path} is a symbolic link to a missing file ({target?.FullName ?? info.LinkTarget}); the download may be incomplete.", path);
        return target.FullName;
    }
}
