using System.Reflection;
using System.Text.Json;

namespace ManagedClip.IO.Distribution;

/// <summary>One file of the model: where it comes from and what it must hash to.</summary>
/// <param name="Name">Plain file name in the download folder (no directory part).</param>
/// <param name="Url">Location relative to the endpoint, e.g. <c>owner/repo/resolve/&lt;revision&gt;/file</c>.</param>
/// <param name="Sha256">Expected SHA-256 of the whole file, 64 lower-case hex digits.</param>
/// <param name="Size">Expected length in bytes, or null when not recorded.</param>
public sealed record ModelFile(string Name, string Url, string Sha256, long? Size);

/// <summary>
/// The list of files <see cref="ModelDownloader"/> fetches (weights/manifest.json in the repository, embedded
/// in this assembly): <c>{"endpoint": "https://huggingface.co", "files": [{"name", "url", "sha256", "size"}]}</c>.
/// </summary>
public sealed class ModelManifest
{
    private const string ResourceName = "ManagedClip.weights.manifest.json";

    /// <summary>Default server the relative <see cref="ModelFile.Url"/>s resolve against.</summary>
    public string Endpoint { get; }

    /// <summary>The files, in download order.</summary>
    public IReadOnlyList<ModelFile> Files { get; }

    private ModelManifest(string endpoint, IReadOnlyList<ModelFile> files)
    {
        Endpoint = endpoint;
        Files = files;
    }

    /// <summary>The real BiomedCLIP manifest compiled into this assembly.</summary>
    public static ModelManifest Default { get; } = LoadEmbedded();

    /// <summary>Reads and validates a manifest file.</summary>
    /// <exception cref="InvalidDataException">The file is not a valid manifest; the message says which field.</exception>
    public static ModelManifest Load(string path) => Parse(GuardedFile.ReadAllText(path, 1 << 20, "manifest"), path);

    /// <summary>Parses and validates manifest JSON; <paramref name="sourceName"/> names it in error messages.</summary>
    /// <exception cref="InvalidDataException">The JSON is not a valid manifest; the message says which field.</exception>
    public static ModelManifest Parse(string json, string sourceName)
    {
        JsonDocument document;
        try { document = JsonDocument.Parse(json); }
        catch (JsonException e) { throw new InvalidDataException($"{sourceName}: not valid JSON ({e.Message})."); }

        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw new InvalidDataException($"{sourceName}: expected a JSON object at the top.");
            var endpoint = RequiredString(root, "endpoint", sourceName);
            if (!Uri.TryCreate(endpoint, UriKind.Absolute, out var endpointUri) || (endpointUri.Scheme != "https" && endpointUri.Scheme != "http"))
                throw new InvalidDataException($"{sourceName}: \"endpoint\" must be an absolute http(s) URL, got \"{endpoint}\".");

            if (!root.TryGetProperty("files", out var filesElement) || filesElement.ValueKind != JsonValueKind.Array)
                throw new InvalidDataException($"{sourceName}: missing array \"files\".");
            var files = new List<ModelFile>();
            foreach (var entry in filesElement.EnumerateArray())
            {
                var where = $"{sourceName}: files[{files.Count}]";
                if (entry.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"{where} is not an object.");
                var file = ParseFile(entry, where);
                if (files.Any(f => f.Name == file.Name))
                    throw new InvalidDataException($"{where}: file name \"{file.Name}\" appears twice.");
                files.Add(file);
            }
            if (files.Count == 0) throw new InvalidDataException($"{sourceName}: \"files\" is empty.");
            return new ModelManifest(endpoint.TrimEnd('/'), files);
        }
    }

    private static ModelFile ParseFile(JsonElement entry, string where)
    {
        var name = RequiredString(entry, "name", where);
        // The name becomes a path in the download folder, so it must not be able to leave that folder.
        if (name != Path.GetFileName(name) || name is "." or ".." || name.IndexOfAny(Path.GetInvalidFileNameChars()) >= 0
            || name.EndsWith(ModelDownloader.PartialSuffix, StringComparison.Ordinal))
            throw new InvalidDataException($"{where}: \"name\" must be a plain file name, got \"{name}\".");

        var url = RequiredString(entry, "url", where);
        if (url.StartsWith('/') || Uri.TryCreate(url, UriKind.Absolute, out _))
            throw new InvalidDataException($"{where} ({name}): \"url\" must be relative to the endpoint, got \"{url}\".");

        var sha256 = RequiredString(entry, "sha256", where);
        if (sha256.Length != 64 || !sha256.All(c => c is >= '0' and <= '9' or >= 'a' and <= 'f'))
            throw new InvalidDataException($"{where} ({name}): \"sha256\" must be 64 lower-case hex digits, got \"{sha256}\".");

        long? size = null;
        if (entry.TryGetProperty("size", out var sizeElement) && sizeElement.ValueKind != JsonValueKind.Null)
        {
            if (!sizeElement.TryGetInt64(out var value) || value < 0)
                throw new InvalidDataException($"{where} ({name}): \"size\" must be a non-negative integer or null.");
            size = value;
        }
        return new ModelFile(name, url, sha256, size);
    }

    private static string RequiredString(JsonElement element, string property, string where)
    {
        if (!element.TryGetProperty(property, out var value) || value.ValueKind != JsonValueKind.String
            || string.IsNullOrWhiteSpace(value.GetString()))
            throw new InvalidDataException($"{where}: missing string \"{property}\".");
        return value.GetString()!;
    }

    private static ModelManifest LoadEmbedded()
    {
        using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream(ResourceName)
            ?? throw new InvalidOperationException($"The assembly lacks its embedded resource {ResourceName}.");
        using var reader = new StreamReader(stream);
        return Parse(reader.ReadToEnd(), "embedded weights/manifest.json");
    }
}
