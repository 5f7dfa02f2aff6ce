using System.Collections.Concurrent;
using System.Numerics.Tensors;
using System.Runtime.ExceptionServices;
using ManagedClip.IO.Distribution;
using ManagedClip.IO.Formats;
using ManagedClip.Imaging;
using ManagedClip.Model;
using ManagedClip.Tokenization;

namespace ManagedClip;

/// <summary>
/// An image to embed: a file on disk or encoded bytes (PNG, JPEG, DICOM, …) with a name for error messages, and for
/// a multi-frame DICOM file the frame to use.
/// </summary>
public sealed class ImageInput
{
    /// <summary>Path or caller-chosen name, used in error messages and results.</summary>
    public string Name { get; }

    /// <summary>Encoded bytes, or null when the image is read from <see cref="Name"/> as a file.</summary>
    public ReadOnlyMemory<byte>? EncodedBytes { get; }

    /// <summary>Zero-based frame of a multi-frame DICOM file (0, the first, by default; other formats have only 0).</summary>
    public int Frame { get; }

    private ImageInput(string name, ReadOnlyMemory<byte>? bytes, int frame)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(frame);
        Name = name;
        EncodedBytes = bytes;
        Frame = frame;
    }

    /// <summary>An image file on disk.</summary>
    public static ImageInput FromFile(string path) => new(path, null, 0);

    /// <summary>An encoded image held in memory.</summary>
    public static ImageInput FromBytes(ReadOnlyMemory<byte> encoded, string name) => new(name, encoded, 0);

    /// <summary>The same image, but frame <paramref name="frame"/> (zero-based) of a multi-frame DICOM file.</summary>
    /// <example><c>ImageInput.FromFile("cine.dcm").WithFrame(3)</c></example>
    public ImageInput WithFrame(int frame) => new(Name, EncodedBytes, frame);

    /// <inheritdoc/>
    public override string ToString() => Name;
}

/// <summary>One image's outcome in <see cref="ClipModel.EmbedImageStream"/>: its embedding, or why it has none.</summary>
/// <param name="Input">The image, as given.</param>
/// <param name="Embedding">[E], or null when the image could not be read or decoded.</param>
/// <param name="Error">One line naming the image and what was wrong, when <paramref name="Embedding"/> is null.</param>
public sealed record ImageEmbeddingResult(ImageInput Input, float[]? Embedding, string? Error);

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

    // Images per forward pass: 8·197 token rows keep every GEMM large while the activations stay ~60 MB.
    private const int ImagesPerPass = 8;

    // Tokens per text forward pass (Σ lengths): bounds the activation arena for long batches.
    private const int TokensPerPass = 2048;

    // Prompt embeddings kept for reuse by Classify (servers see the same label sets again and again).
    private const int PromptCacheCapacity = 4096;

    private readonly VisionTransformer vision;
    private readonly BertTextEncoder text;
    private readonly ImagePreprocessor preprocessor;
    private readonly OpenClipBertTokenizer tokenizer;
    private readonly float logitScaleLog;
    private readonly ConcurrentDictionary<string, float[]> promptCache = new();
    private readonly TensorStore weights; // the checkpoint: the heads and word embeddings are read in place, so open until Dispose
    private readonly object callGate = new();
    private int callsRunning;             // embedding calls inside the towers; Dispose waits for them
    private bool disposed;

    private ClipModel(ModelDirectory directory, ClipModelOptions options)
    {
        bool weightsOverridden = options.WeightsFile != null;
        Config = directory.Config;
        Files = directory;
        Source = weightsOverridden ? $"{directory.Root} (weights {directory.WeightsPath})" : directory.Root;
        tokenizer = new OpenClipBertTokenizer(directory.VocabularyPath, Config.Text.ContextLength);
        if (tokenizer.MaxTokenId >= Config.Text.VocabSize)
            throw new InvalidDataException(
                $"{UserText.Quote(directory.VocabularyPath)}: the vocabulary has ids up to {tokenizer.MaxTokenId}, but the text " +
                $"model has only {Config.Text.VocabSize} token embeddings (vocab_size): this vocab.txt does not belong to the model");
        preprocessor = ImagePreprocessor.For(Config);
        // The heads and the word embeddings are read in place from the mapped file, so it stays open until Dispose.
        weights = directory.OpenWeights();
        try
        {
            // Loading packs each tower's block weights (file reads, then rearranging), so the towers load side by
            // side. Parallel.Invoke returns only when both are done, so a failure never unmaps the file under the other.
            var source = new StoreWeights(weights, precision: options.Precision);
            VisionTransformer? loadedVision = null;
            BertTextEncoder? loadedText = null;
            try
            {
                Parallel.Invoke(
                    () => loadedVision = VisionTransformer.Load(source, Config.Vision, Config.EmbedDim, weights),
                    () => loadedText = BertTextEncoder.Load(source, Config.Text, Config.EmbedDim, weights));
            }
            catch (AggregateException e)
            {
                ExceptionDispatchInfo.Throw(e.InnerExceptions[0]); // the tower's own error, e.g. which tensor is wrong
            }
            vision = loadedVision!;
            text = loadedText!;
            logitScaleLog = LoadLogitScale(source);
        }
        catch
        {
            weights.Dispose();
            throw;
        }
    }

    /// <summary>open_clip's <c>logit_scale</c>, the log of the factor on the cosines: stored as [] in the .bin, [1] in some safetensors.</summary>
    internal static float LoadLogitScale(WeightSource root) => root.Scalar("logit_scale");

    /// <summary>Configuration read from the model directory.</summary>
    public ClipConfig Config { get; }

    /// <summary>Width of the shared embedding space (512 for BiomedCLIP).</summary>
    public int EmbeddingSize => Config.EmbedDim;

    /// <summary>exp(logit_scale), read from the checkpoint: the factor applied to cosines before the softmax.</summary>
    public float LogitScale => MathF.Exp(logitScaleLog);

    /// <summary>Where the model came from (directory, and the weights file when it is elsewhere).</summary>
    public string Source { get; }

    /// <summary>The files the model was loaded from (config, weights, vocabulary): what identifies it.</summary>
    public ModelDirectory Files { get; }

    /// <summary>
    /// Loads a model directory in the Hugging Face layout. Without a directory: <c>MANAGEDCLIP_MODEL</c>, the
    /// <c>managedclip download</c> cache, then the Hugging Face hub cache.
    /// </summary>
    /// <param name="modelDirectory">Folder with open_clip_config.json, weights and vocab.txt, or null to search.</param>
    /// <param name="weightsFile">Another weights file (.bin or .safetensors) to use with that folder's configs.</param>
    public static ClipModel Load(string? modelDirectory = null, string? weightsFile = null) =>
        Load(new ClipModelOptions { ModelDirectory = modelDirectory, WeightsFile = weightsFile });

    /// <summary>Loads a model as <paramref name="options"/> say (see <see cref="ClipModelOptions"/>).</summary>
    public static ClipModel Load(ClipModelOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return new(ModelDirectory.Resolve(options.ModelDirectory, options.WeightsFile), options);
    }

    /// <summary>Token ids of a text as the text tower sees it: [CLS] … [SEP], truncated to the context length.</summary>
    public int[] Tokenize(string text) => tokenizer.Encode(text);

    /// <summary>
    /// Embeds images; rows in input order. Images go through the tower in passes of up to eight, and the next
    /// pass's images are decoded and resized while the current pass computes.
    /// </summary>
    public float[][] EmbedImages(IReadOnlyList<ImageInput> images, bool normalize = true) =>
        WhileWeightsOpen(() => EmbedImagesInside(images, normalize));

    /// <param name="images">The images, embedded in order.</param>
    /// <param name="normalize">Scale each embedding to unit length.</param>
    /// <param name="whileFirstPassDecodes">Work for the calling thread while a worker decodes the first images.</param>
    private float[][] EmbedImagesInside(IReadOnlyList<ImageInput> images, bool normalize, Action? whileFirstPassDecodes = null)
    {
        int width = EmbeddingSize, pixelsPerImage = preprocessor.OutputLength;
        var result = new float[images.Count][];
        if (images.Count == 0)
        {
            whileFirstPassDecodes?.Invoke();
            return result;
        }

        var buffers = new[] { new float[ImagesPerPass * pixelsPerImage], new float[ImagesPerPass * pixelsPerImage] };
        var features = new float[ImagesPerPass * width]; // [B, E]
        Task Prepare(int first, float[] pixels) => Task.Run(() =>
        {
            int count = Math.Min(ImagesPerPass, images.Count - first);
            for (int i = 0; i < count; i++)
                Preprocess(images[first + i], pixels.AsSpan(i * pixelsPerImage, pixelsPerImage));
        });

        var pending = Prepare(0, buffers[0]);
        whileFirstPassDecodes?.Invoke();
        for (int first = 0, pass = 0; first < images.Count; first += ImagesPerPass, pass++)
        {
            pending.GetAwaiter().GetResult(); // rethrows a bad image's own exception
            var pixels = buffers[pass % 2];
            int count = Math.Min(ImagesPerPass, images.Count - first);
            if (first + ImagesPerPass < images.Count) pending = Prepare(first + ImagesPerPass, buffers[(pass + 1) % 2]);
            vision.Forward(pixels.AsSpan(0, count * pixelsPerImage), count, features.AsSpan(0, count * width));
            for (int i = 0; i < count; i++) result[first + i] = Finish(features.AsSpan(i * width, width), normalize);
        }
        return result;
    }

    /// <summary>
    /// Embeds a stream of images lazily, in input order, one result per image: an image that cannot be read or
    /// decoded gets an error instead of stopping the others. Images go through the tower in passes of up to eight
    /// while the next pass is decoded on a worker, so a caller that consumes results steadily (an indexer writing
    /// them to disk) keeps decoding and computing overlapped from the first image to the last.
    /// </summary>
    /// <remarks>The model cannot be disposed while the stream is being enumerated; dispose the enumerator (a
    /// <c>foreach</c> does) to end it early. Rows are the same bits as <see cref="EmbedImages"/> gives: a row does
    /// not depend on the other images of its pass.</remarks>
    public IEnumerable<ImageEmbeddingResult> EmbedImageStream(IEnumerable<ImageInput> images, bool normalize = true,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(images);
        return Stream();

        IEnumerable<ImageEmbeddingResult> Stream()
        {
            EnterCall();
            using var source = images.GetEnumerator();
            Task<Pass>? pending = null;
            try
            {
                int width = EmbeddingSize, pixelsPerImage = preprocessor.OutputLength;
                var buffers = new[] { new float[ImagesPerPass * pixelsPerImage], new float[ImagesPerPass * pixelsPerImage] };
                var features = new float[ImagesPerPass * width]; // [images, E]
                int pass = 0;
                pending = NextPass(source, buffers[0], cancellationToken);
                while (true)
                {
                    var current = pending.GetAwaiter().GetResult();
                    if (current.Inputs.Count == 0) yield break;
                    pending = NextPass(source, buffers[(pass + 1) % 2], cancellationToken);
                    var pixels = buffers[pass % 2];
                    int count = current.Inputs.Count;
                    // A failed image's slot holds zeros; its row is computed and dropped (rows are independent).
                    vision.Forward(pixels.AsSpan(0, count * pixelsPerImage), count, features.AsSpan(0, count * width));
                    var results = new ImageEmbeddingResult[count];
                    for (int i = 0; i < count; i++)
                        results[i] = current.Errors[i] is { } problem
                            ? new ImageEmbeddingResult(current.Inputs[i], null, problem)
                            : new ImageEmbeddingResult(current.Inputs[i], Finish(features.AsSpan(i * width, width), normalize), null);
                    pass++;
                    foreach (var result in results) yield return result;
                }
            }
            finally
            {
                // The decoding worker must stop before the weights can be released.
                try { pending?.Wait(); } catch (AggregateException) { }
                ExitCall();
            }
        }
    }

    private sealed record Pass(List<ImageInput> Inputs, string?[] Errors);

    // Takes the next (up to) eight images from the source on the caller's thread and decodes them on a worker.
    private Task<Pass> NextPass(IEnumerator<ImageInput> source, float[] pixels, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var inputs = new List<ImageInput>(ImagesPerPass);
        while (inputs.Count < ImagesPerPass && source.MoveNext()) inputs.Add(source.Current);
        if (inputs.Count == 0) return Task.FromResult(new Pass(inputs, []));
        int pixelsPerImage = preprocessor.OutputLength;
        return Task.Run(() =>
        {
            var errors = new string?[inputs.Count];
            for (int i = 0; i < inputs.Count; i++)
            {
                var slot = pixels.AsSpan(i * pixelsPerImage, pixelsPerImage);
                try
                {
                    Preprocess(inputs[i], slot);
                }
                catch (Exception e) when (e is not (OutOfMemoryException or OperationCanceledException))
                {
                    // Decoders report bad input in several exception types; the message names the file.
                    errors[i] = e.Message.Contains(inputs[i].Name, StringComparison.Ordinal) ? e.Message : $"{inputs[i].Name}: {e.Message}";
                    slot.Clear();
                }
            }
            return new Pass(inputs, errors);
        });
    }

    /// <summary>Embeds texts on their real tokens only (no padding); rows in input order.</summary>
    public float[][] EmbedTexts(IReadOnlyList<string> texts, bool normalize = true) =>
        WhileWeightsOpen(() => EmbedTextsInside(texts, normalize));

    private float[][] EmbedTextsInside(IReadOnlyList<string> texts, bool normalize)
    {
        int width = EmbeddingSize;
        var result = new float[texts.Count][];
        var ids = new int[texts.Count][];
        for (int i = 0; i < texts.Count; i++)
            ids[i] = tokenizer.Encode(texts[i] ?? throw new ArgumentNullException(nameof(texts), $"text {i} is null"));

        for (int first = 0; first < texts.Count;)
        {
            // One pass stacks whole prompts until the token budget is reached (always at least one prompt).
            int count = 0, tokens = 0;
            while (first + count < texts.Count && (count == 0 || tokens + ids[first + count].Length <= TokensPerPass))
                tokens += ids[first + count++].Length;

            var tokenIds = new int[tokens];   // [ΣT]
            var lengths = new int[count];     // [B]
            for (int i = 0, offset = 0; i < count; offset += lengths[i], i++)
            {
                lengths[i] = ids[first + i].Length;
                ids[first + i].CopyTo(tokenIds, offset);
            }
            var features = new float[count * width]; // [B, E]
            text.Forward(tokenIds, lengths, features);
            for (int i = 0; i < count; i++) result[first + i] = Finish(features.AsSpan(i * width, width), normalize);
            first += count;
        }
        return result;
    }

    /// <summary>Embeds one image file.</summary>
    public float[] EmbedImage(string path, bool normalize = true) => EmbedImages([ImageInput.FromFile(path)], normalize)[0];

    /// <summary>Embeds one text.</summary>
    public float[] EmbedText(string text, bool normalize = true) => EmbedTexts([text], normalize)[0];

    /// <summary>
    /// Zero-shot classification of each image against the labels, each wrapped in the template:
    /// probabilities = softmax over labels of exp(logit_scale) · cosine(image, prompt).
    /// </summary>
    public ZeroShotResult[] Classify(IReadOnlyList<ImageInput> images, IReadOnlyList<string> labels,
        string template = DefaultTemplate)
    {
        if (labels.Count == 0) throw new ArgumentException("at least one label is needed", nameof(labels));
        if (!template.Contains("{}")) throw new ArgumentException($"template '{template}' has no {{}} for the label", nameof(template));
        var prompts = labels.Select(label => template.Replace("{}", label)).ToArray();
        // The prompts go through the text tower while the first images are decoded and resized on a worker: in a new
        // process decoding starts by compiling ImageSharp, which then overlaps the text tower's own first pass instead
        // of adding to it.
        float[][] promptFeatures = []; // [labels][E], normalised
        var imageFeatures = WhileWeightsOpen(() =>   // [images][E], normalised
            EmbedImagesInside(images, normalize: true, whileFirstPassDecodes: () => promptFeatures = PromptEmbeddings(prompts)));

        int width = EmbeddingSize;
        var textRows = new float[labels.Count * width];
        for (int j = 0; j < labels.Count; j++) promptFeatures[j].CopyTo(textRows, j * width);
        var results = new ZeroShotResult[images.Count];
        for (int i = 0; i < images.Count; i++)
        {
            var logits = new float[labels.Count];
            var probabilities = new float[labels.Count];
            ClipScores.ZeroShot(imageFeatures[i], textRows, width, logitScaleLog, logits, probabilities);
            if (!AllFinite(logits) || !AllFinite(probabilities))
                throw NonFiniteOutput(float.IsFinite(logitScaleLog) && !float.IsFinite(LogitScale)
                    ? $"; its logit_scale {logitScaleLog} makes exp(logit_scale) overflow" : null);
            results[i] = new ZeroShotResult(labels.ToArray(), probabilities, logits);
        }
        return results;
    }

    /// <summary>
    /// The exact RGB image the image tower is given for <paramref name="image"/> (before ToTensor and Normalize):
    /// uint8 <c>[size, size, 3]</c> with size <see cref="ImageSize"/>. <see cref="PngWriter"/> saves it as PNG.
    /// Needs no weights: <see cref="ImagePreprocessor.PreprocessToRgb(string, int)"/> does the same for a config.
    /// </summary>
    public byte[] PreprocessToRgb(ImageInput image) => image.EncodedBytes is { } bytes
        ? preprocessor.PreprocessToRgb(bytes.Span, image.Name, image.Frame)
        : preprocessor.PreprocessToRgb(image.Name, image.Frame);

    /// <summary>Side of the square image the image tower takes (224 for BiomedCLIP).</summary>
    public int ImageSize => preprocessor.ImageSize;

    /// <summary>Zero-shot classification of one image file.</summary>
    public ZeroShotResult Classify(string imagePath, IReadOnlyList<string> labels, string template = DefaultTemplate) =>
        Classify([ImageInput.FromFile(imagePath)], labels, template)[0];

    /// <summary>Cosine similarities [queries][candidates] between two sets of embeddings (normalised or not).</summary>
    public static float[][] CosineSimilarity(IReadOnlyList<float[]> queries, IReadOnlyList<float[]> candidates)
    {
        var unitCandidates = candidates.Select(c => Unit(c)).ToArray();
        return queries.Select(q =>
        {
            var unitQuery = Unit(q);
            return unitCandidates.Select(c => c.Length == unitQuery.Length
                ? TensorPrimitives.Dot(unitQuery, c)
                : throw new ArgumentException($"embedding widths differ ({unitQuery.Length} vs {c.Length})")).ToArray();
        }).ToArray();
    }

    /// <summary>
    /// Releases the memory-mapped weights. Calls already running finish first (Dispose waits for them); calls made
    /// afterwards throw <see cref="ObjectDisposedException"/>.
    /// </summary>
    public void Dispose()
    {
        lock (callGate)
        {
            if (disposed) return;
            disposed = true;
            while (callsRunning > 0) Monitor.Wait(callGate);
        }
        weights.Dispose();
        promptCache.Clear();
    }

    /// <summary>Runs a call that reads the weights; the mapping cannot be released until it returns.</summary>
    private T WhileWeightsOpen<T>(Func<T> call)
    {
        EnterCall();
        try
        {
            return call();
        }
        finally
        {
            ExitCall();
        }
    }

    // A streaming call (EmbedImageStream) holds the weights open from its first item until its enumerator is disposed.
    private void EnterCall()
    {
        lock (callGate)
        {
            ObjectDisposedException.ThrowIf(disposed, this);
            callsRunning++;
        }
    }

    private void ExitCall()
    {
        lock (callGate)
        {
            if (--callsRunning == 0) Monitor.PulseAll(callGate);
        }
    }

    private void Preprocess(ImageInput image, Span<float> destination)
    {
        if (image.EncodedBytes is { } bytes) preprocessor.Preprocess(bytes.Span, image.Name, destination, image.Frame);
        else preprocessor.Preprocess(image.Name, destination, image.Frame);
    }

    private float[][] PromptEmbeddings(string[] prompts)
    {
        var missing = prompts.Where(p => !promptCache.ContainsKey(p)).Distinct().ToList();
        if (missing.Count > 0)
        {
            var embedded = EmbedTexts(missing);
            if (promptCache.Count + missing.Count > PromptCacheCapacity) promptCache.Clear();
            for (int i = 0; i < missing.Count; i++) promptCache[missing[i]] = embedded[i];
        }
        return prompts.Select(p => promptCache.TryGetValue(p, out var f) ? f : EmbedTexts([p])[0]).ToArray();
    }

    private float[] Finish(ReadOnlySpan<float> features, bool normalize)
    {
        var copy = features.ToArray();
        if (normalize) ClipScores.NormalizeRows(copy, copy.Length);
        if (!AllFinite(copy)) throw NonFiniteOutput(null);
        return copy;
    }

    private static bool AllFinite(ReadOnlySpan<float> values)
    {
        foreach (float v in values)
        {
            if (!float.IsFinite(v)) return false;
        }
        return true;
    }

    /// <summary>Weights that overflow (NaN/Inf in a tensor, absurd magnitudes) show up as non-finite outputs.</summary>
    private NonFiniteOutputException NonFiniteOutput(string? detail) =>
        new($"the model produced NaN/Inf: check the weights ({UserText.Quote(weights.SourcePath)}){detail}");

    private static float[] Unit(float[] v)
    {
        var copy = (float[])v.Clone();
        ClipScores.NormalizeRows(copy, copy.Length);
        return copy;
    }
}

/// <summary>
/// The model's output held NaN or infinity: the weights are broken (a NaN/Inf tensor, or values that overflow float32),
/// not the input. Every input would fail the same way, so callers processing many inputs should stop rather than
/// report it per input.
/// </summary>
public sealed class NonFiniteOutputException(string message) : Exception(message);
