using ManagedClip.IO.Distribution;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using ManagedClip.IO;

namespace ManagedClip.Retrieval;

/// <summary>
/// What an index's embeddings depend on: the SHA-256 of the weights file, of the configs and of the vocabulary,
/// combined into one <see cref="Id"/>. Two model folders with the same files have the same identity wherever they
/// are (a copied folder does not invalidate an index); the same weights in another file format (.bin instead of
/// .safetensors) count as another model, which is the safe side.
/// </summary>
/// <param name="Id">SHA-256 (hex) over the three hashes below.</param>
/// <param name="WeightsSha256">Of the weights file's bytes.</param>
/// <param name="ConfigSha256">Of <c>open_clip_config.json</c> followed by the text tower's <c>config.json</c>, when one was read.</param>
/// <param name="VocabularySha256">Of <c>vocab.txt</c>, or null when the folder has none.</param>
/// <param name="EmbeddingSize">E, the embedding width.</param>
/// <param name="Source">Where the model was loaded from (informational only; not part of the identity).</param>
public sealed record ModelIdentity(string Id, string WeightsSha256, string ConfigSha256, string? VocabularySha256, int EmbeddingSize, string Source)
{
    /// <summary>The identity of a loaded model.</summary>
    public static ModelIdentity Of(ClipModel model) => Of(model.Files, model.Source);

    /// <summary>The identity of a model folder (weights hashed once per file state and cached, see <see cref="FileHashCache"/>).</summary>
    public static ModelIdentity Of(ModelDirectory directory, string? source = null)
    {
        string weights = FileHashCache.Sha256(directory.WeightsPath);
        using var configHash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        configHash.AppendData(File.ReadAllBytes(directory.ConfigPath));
        if (directory.TextConfigPath is { } textConfig) configHash.AppendData(File.ReadAllBytes(textConfig));
        string config = Convert.ToHexStringLower(configHash.GetHashAndReset());
        string? vocabulary = null;
        try
        {
            vocabulary = Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(directory.VocabularyPath)));
        }
        catch (FileNotFoundException)
        {
        }
        var combined = $"managedclip-model/1\nweights {weights}\nconfig {config}\nvocab {vocabulary ?? "none"}\nE {directory.Config.EmbedDim.ToString(CultureInfo.InvariantCulture)}\n";
        string id = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(combined)));
        return new ModelIdentity(id, weights, config, vocabulary, directory.Config.EmbedDim, source ?? directory.Root);
    }

    /// <summary>The first 12 hex digits, for messages.</summary>
    public string ShortId => Id[..12];
}

/// <summary>
/// SHA-256 of large files, remembered by (full path, size, modification time) in
/// <c>$XDG_CACHE_HOME/managedclip/file-hashes.tsv</c> (default <c>~/.cache</c>), so the 784 MB weights are hashed
/// once, not on every command. A changed file (size or time) is hashed again; an unwritable cache is ignored.
/// </summary>
public static class FileHashCache
{
    /// <summary>The cache file.</summary>
    public static string CachePath
    {
        get
        {
            var xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
            var home = string.IsNullOrEmpty(xdg)
                ? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache")
                : xdg;
            return Path.Combine(home, "managedclip", "file-hashes.tsv");
        }
    }

    private static readonly object Gate = new();

    /// <summary>Lower-case hex SHA-256 of the file's content.</summary>
    public static string Sha256(string path)
    {
        var full = Path.GetFullPath(path);
        var info = new FileInfo(full);
        if (!info.Exists) throw new FileNotFoundException($"{path}: no such file", path);
        string key = $"{info.Length.ToString(CultureInfo.InvariantCulture)}\t{info.LastWriteTimeUtc.Ticks.ToString(CultureInfo.InvariantCulture)}\t{full}";
        lock (Gate)
        {
            var entries = Load();
            if (entries.TryGetValue(key, out var known)) return known;
            string hash;
            using (var stream = new FileStream(full, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20))
                hash = Convert.ToHexStringLower(SHA256.HashData(stream));
            // Keep one line per file: drop earlier states of the same path.
            foreach (var stale in entries.Keys.Where(k => k.EndsWith("\t" + full, StringComparison.Ordinal)).ToList()) entries.Remove(stale);
            entries[key] = hash;
            Save(entries);
            return hash;
        }
    }

    // Lines "sha256 \t size \t ticks \t path"; anything malformed is skipped (the cache only saves time).
    private static Dictionary<string, string> Load()
    {
        var entries = new Dictionary<string, string>(StringComparer.Ordinal);
        try
        {
            var file = new FileInfo(CachePath);
            if (!file.Exists || file.Length > 16 << 20) return entries;
            foreach (var line in File.ReadAllLines(CachePath))
            {
                var fields = line.Split('\t', 2);
                if (fields.Length == 2 && fields[0].Length == 64 && fields[0].All(char.IsAsciiHexDigitLower)) entries[fields[1]] = fields[0];
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
        return entries;
    }

    private static void Save(Dictionary<string, string> entries)
    {
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(CachePath)!);
            var text = string.Concat(entries.Select(e => $"{e.Value}\t{e.Key}\n"));
            Durable.WriteAtomically(CachePath, Encoding.UTF8.GetBytes(text));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
    }
}
