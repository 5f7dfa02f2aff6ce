using ManagedClip.Model;

namespace ManagedClip;

/// <summary>An image to embed: a file on disk or encoded bytes (PNG, JPEG, …) with a name for error messages.</summary>
public sealed class ImageInput
{
    /// <summary>Path or caller-chosen name, used in error messages and results.</summary>
    public string Name { get; }

    /// <summary>Encoded bytes, or null when the image is read from <see cref="Name"/> as a file.</summary>
    public ReadOnlyMemory<byte>? EncodedBytes { get; }

    private ImageInput(string name, ReadOnlyMemory<byte>? bytes)
    {
        Name = name;
        EncodedBytes = bytes;
    }

    /// <summary>An image file on disk.</summary>
    public static ImageInput FromFile(string path) => new(path, null);

    /// <summary>An encoded image held in memory.</summary>
    public static ImageInput FromBytes(ReadOnlyMemory<byte> encoded, string name) => new(name, encoded);

    /// <inheritdoc/>
    public override string ToString() => Name;
}

/// <summary>Zero-shot classification of one image: the labels in the order given, with their probabilities.</summary>
/// <param name="Labels">Candidate labels, in the caller's order.</param>
/// <param name="Probabilities">softmax over labels of <c>exp(logit_scale) · cosine(image, prompt)</c>.</param>
/// <param name="Logits">The scaled cosines before the softmax.</param>
public sealed record ZeroShotResult(IReadOnlyList<string> Labels, float[] Probabilities, float[] Logits);

/// <summary>
/// A loaded BiomedCLIP model: image tower, text tower, tokenizer and preprocessing.
/// Thread-safe: any number of threads may embed and classify concurrently with one instance.
/// </summary>
public sealed class ClipModel : IDisposable
{
    /// <summary>The prompt template of the BiomedCLIP model card; <c>{}</c> is replaced by the label.</summary>
    public const string DefaultTemplate = "this is a photo of {}";

    private ClipModel() => throw new NotImplementedException();

    /// <summary>Configuration read from the model directory.</summary>
    public ClipConfig Config => throw new NotImplementedException();

    /// <summary>Width of the shared embedding space (512 for BiomedCLIP).</summary>
    public int EmbeddingSize => Config.EmbedDim;

    /// <summary>exp(logit_scale): the factor applied to cosines before the softmax (≈100).</summary>
    public float LogitScale => throw new NotImplementedException();

    /// <summary>Human-readable description of where the model came from (directory and weights file).</summary>
    public string Source => throw new NotImplementedException();

    /// <summary>
    /// Loads a model directory in the Hugging Face layout. Without a directory: <c>MANAGEDCLIP_MODEL</c>, the
    /// <c>managedclip download</c> cache, then the Hugging Face hub cache.
    /// </summary>
    /// <param name="modelDirectory">Folder with open_clip_config.json, weights and vocab.txt, or null to search.</param>
    /// <param name="weightsFile">Another weights file (.bin or .safetensors) to use with that folder's configs.</param>
    public static ClipModel Load(string? modelDirectory = null, string? weightsFile = null) => throw new NotImplementedException();

    /// <summary>Token ids of a text as the text tower sees it: [CLS] … [SEP], truncated to the context length.</summary>
    public int[] Tokenize(string text) => throw new NotImplementedException();

    /// <summary>Embeds images (batched); rows in input order.</summary>
    public float[][] EmbedImages(IReadOnlyList<ImageInput> images, bool normalize = true) => throw new NotImplementedException();

    /// <summary>Embeds texts (batched, real tokens only); rows in input order.</summary>
    public float[][] EmbedTexts(IReadOnlyList<string> texts, bool normalize = true) => throw new NotImplementedException();

    /// <summary>Embeds one image file.</summary>
    public float[] EmbedImage(string path, bool normalize = true) => EmbedImages([ImageInput.FromFile(path)], normalize)[0];

    /// <summary>Embeds one text.</summary>
    public float[] EmbedText(string text, bool normalize = true) => EmbedTexts([text], normalize)[0];

    /// <summary>Zero-shot classification of each image against the labels, each wrapped in the template.</summary>
    public ZeroShotResult[] Classify(IReadOnlyList<ImageInput> images, IReadOnlyList<string> labels,
        string template = DefaultTemplate) => throw new NotImplementedException();

    /// <summary>Zero-shot classification of one image file.</summary>
    public ZeroShotResult Classify(string imagePath, IReadOnlyList<string> labels, string template = DefaultTemplate) =>
        Classify([ImageInput.FromFile(imagePath)], labels, template)[0];

    /// <summary>Cosine similarities [queries, candidates] between two sets of embeddings (normalised or not).</summary>
    public static float[][] CosineSimilarity(IReadOnlyList<float[]> queries, IReadOnlyList<float[]> candidates) =>
        throw new NotImplementedException();

    /// <inheritdoc/>
    public void Dispose() => throw new NotImplementedException();
}
