using System.Collections.Concurrent;
using System.Numerics.Tensors;
using System.Runtime.ExceptionServices;
using ManagedClip.IO.Distribution;
using ManagedClip.IO.Formats;
using ManagedClip.Imaging;
using ManagedClip.Kernels;
using ManagedClip.Model;
using ManagedClip.Tokenization;

namespace ManagedClip;

/// <summary>
/// A loaded BiomedCLIP model: image tower, text tower, tokenizer and preprocessing.
/// Thread-safe: any number of threads may embed and classify concurrently with one instance.
/// </summary>
/// <remarks>
/// <para>Every embedding method has a synchronous form and an <c>…Async</c> form that computes on the thread pool and
/// takes a <see cref="CancellationToken"/>. Work is done in passes (up to <see cref="ClipModelOptions.ImagesPerPass"/>
/// images, or <see cref="ClipModelOptions.TokensPerPass"/> text tokens); cancellation and disposal take effect
/// between passes, so a call stops within one pass of being asked to.</para>
/// <para>Disposal never waits for running calls: <see cref="Dispose"/> returns at once, calls running at that moment
/// stop at their next pass boundary with <see cref="ObjectDisposedException"/>, and the weights are released when
/// the last of them has stopped. <see cref="DisposeAsync"/> does the same and completes once the weights are
/// released.</para>
/// </remarks>
public sealed class ClipModel : IDisposable, IAsyncDisposable
{
    /// <summary>The prompt template of the BiomedCLIP model card; <c>{}</c> is replaced by the label.</summary>
    public const string DefaultTemplate = "this is a photo of {}";

    // Images per forward pass: 8·197 token rows keep every GEMM large while the activations stay ~60 MB.
    internal const int DefaultImagesPerPass = 8;

    // Tokens per text forward pass (Σ lengths): bounds the activation arena for long batches.
    internal const int DefaultTokensPerPass = 2048;

    // Prompt embeddings kept for reuse by Classify (servers see the same label sets again and again).
    private const int PromptCacheCapacity = 4096;

    private readonly VisionTransformer vision;
    private readonly BertTextEncoder text;
    private readonly ImagePreprocessor preprocessor;
    private readonly OpenClipBertTokenizer tokenizer;
    private readonly float logitScaleLog;
    private readonly ConcurrentDictionary<string, float[]> promptCache = new();
    private readonly TensorStore weights; // the checkpoint: the heads and word embeddings are read in place, so open until Dispose
    private readonly int threads;         // kernel workers per pass; 0: the process default
    private readonly int imagesPerPass;   // B of an image pass
    private readonly int tokensPerPass;   // ΣT of a text pass (at least one whole text)
    private readonly PackedWeightsFile? packedWeights; // the block weights' panels, mapped; null when packed in memory
    private readonly object callGate = new();
    private readonly TaskCompletionSource weightsReleased = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int callsRunning;             // calls reading the weights; the last one out after Dispose releases them
    private volatile bool disposed;

    private ClipModel(ModelDirectory directory, ClipModelOptions options)
    {
        threads = options.Threads ?? 0;
        imagesPerPass = options.ImagesPerPass;
        tokensPerPass = options.TokensPerPass;
        bool weightsOverridden = options.WeightsFile != null;
        Config = directory.Config;
        Files = directory;
        Source = weightsOverridden ? $"{directory.Root} (weights {directory.WeightsPath})" : directory.Root;
        Precision = options.Precision;
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
            // The block weights come already packed, in the model's precision, from a mapped file when there is one
            // (built on first load, one per precision); otherwise loading packs them in memory (file reads, then
            // rearranging), so the towers load side by side. Parallel.Invoke returns only when both are done, so a
            // failure never unmaps a file under the other.
            packedWeights = PackedWeightsCache.OpenOrBuild(directory, weights, options,
                options.Notes ?? (note => Console.Error.WriteLine("managedclip: " + note)));
            WeightSource source = packedWeights is null
                ? new StoreWeights(weights, precision: options.Precision)
                : new MappedPanelWeights(new StoreWeights(weights), packedWeights, options.Precision);
            if (!options.Int8OutlierDecomposition) source = new WithInt8Outliers(source, new Kernels.Int8Outliers(0, 0));
            VisionTransformer? loadedVision = null;
            BertTextEncoder? loadedText = null;
            try
            {
                Parallel.Invoke(
                    () => { using (KernelThreads()) loadedVision = VisionTransformer.Load(source, Config.Vision, Config.EmbedDim, weights); },
                    () => { using (KernelThreads()) loadedText = BertTextEncoder.Load(source, Config.Text, Config.EmbedDim, weights); });
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
            packedWeights?.Dispose();
            weights.Dispose();
            throw;
        }
    }

    /// <summary>The mapped packed-weights file the block weights are read from, or null when they were packed in memory.</summary>
    internal string? PackedWeightsPath => packedWeights?.Path;

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

    /// <summary>The number format of the block weights, as chosen at load (<see cref="ClipModelOptions.Precision"/>).</summary>
    public ClipPrecision Precision { get; }

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
        options.Validate();
        return new(ModelDirectory.Resolve(options.ModelDirectory, options.WeightsFile), options);
    }

    /// <summary>As <see cref="Load(ClipModelOptions)"/>, on the thread pool (loading maps and packs ~800 MB of weights).</summary>
    /// <param name="options">Where the model is and how to run it.</param>
    /// <param name="cancellationToken">Stops the load if it has not started yet.</param>
    public static Task<ClipModel> LoadAsync(ClipModelOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        return Task.Run(() => Load(options), cancellationToken);
    }

    /// <summary>Token ids of a text as the text tower sees it: [CLS] … [SEP], truncated to the context length.</summary>
    public int[] Tokenize(string text) => tokenizer.Encode(text);

    /// <summary>
    /// Embeds images; rows in input order. Images go through the tower in passes of up to eight, and the next
    /// pass's images are decoded and resized while the current pass computes.
    /// </summary>
    public float[][] EmbedImages(IReadOnlyList<ImageInput> images, bool normalize = true)
    {
        ArgumentNullException.ThrowIfNull(images);
        return WhileWeightsOpen(() => EmbedImagesInside(images, normalize, CancellationToken.None));
    }

    /// <summary>As the public overload, stopping between passes when <paramref name="cancellationToken"/> asks to.</summary>
    internal float[][] EmbedImages(IReadOnlyList<ImageInput> images, bool normalize, CancellationToken cancellationToken) =>
        WhileWeightsOpen(() => EmbedImagesInside(images, normalize, cancellationToken));

    /// <summary>
    /// <see cref="EmbedImages(IReadOnlyList{ImageInput}, bool)"/> on the thread pool: rows in input order, each pass of images computed while the
    /// next is decoded.
    /// </summary>
    /// <param name="images">The images, embedded in order.</param>
    /// <param name="normalize">Scale each embedding to unit length.</param>
    /// <param name="cancellationToken">Takes effect between passes (<see cref="OperationCanceledException"/>).</param>
    public Task<float[][]> EmbedImagesAsync(IReadOnlyList<ImageInput> images, bool normalize = true,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(images);
        return Task.Run(() => WhileWeightsOpen(() => EmbedImagesInside(images, normalize, cancellationToken)), cancellationToken);
    }

    /// <param name="images">The images, embedded in order.</param>
    /// <param name="normalize">Scale each embedding to unit length.</param>
    /// <param name="cancellationToken">Checked before each pass.</param>
    /// <param name="whileFirstPassDecodes">Work for the calling thread while a worker decodes the first images.</param>
    private float[][] EmbedImagesInside(IReadOnlyList<ImageInput> images, bool normalize, CancellationToken cancellationToken,
        Action? whileFirstPassDecodes = null)
    {
        int width = EmbeddingSize, pixelsPerImage = preprocessor.OutputLength;
        var result = new float[images.Count][];
        if (images.Count == 0)
        {
            whileFirstPassDecodes?.Invoke();
            return result;
        }

        int slots = Math.Min(imagesPerPass, images.Count); // B of the largest pass
        var buffers = new[] { new float[slots * pixelsPerImage], new float[slots * pixelsPerImage] };
        var features = new float[slots * width]; // [B, E]
        Task Prepare(int first, float[] pixels) => Task.Run(() =>
        {
            int count = Math.Min(imagesPerPass, images.Count - first);
            for (int i = 0; i < count; i++)
                Preprocess(images[first + i], pixels.AsSpan(i * pixelsPerImage, pixelsPerImage));
        });

        var pending = Prepare(0, buffers[0]);
        try
        {
            whileFirstPassDecodes?.Invoke();
            for (int first = 0, pass = 0; first < images.Count; first += imagesPerPass, pass++)
            {
                pending.GetAwaiter().GetResult(); // rethrows a bad image's own exception
                StopIfAsked(cancellationToken);
                var pixels = buffers[pass % 2];
                int count = Math.Min(imagesPerPass, images.Count - first);
                if (first + imagesPerPass < images.Count) pending = Prepare(first + imagesPerPass, buffers[(pass + 1) % 2]);
                using (KernelThreads())
                    vision.Forward(pixels.AsSpan(0, count * pixelsPerImage), count, features.AsSpan(0, count * width));
                for (int i = 0; i < count; i++) result[first + i] = Finish(features.AsSpan(i * width, width), normalize);
            }
            return result;
        }
        catch
        {
            // Stopped early: the decoding worker only writes this call's own buffers; its outcome no longer matters.
            pending.ContinueWith(static t => _ = t.Exception, TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously);
            throw;
        }
    }

    /// <summary>
    /// Embeds a stream of images lazily, in input order, one result per image: an image that cannot be read or
    /// decoded gets an error instead of stopping the others. Images go through the tower in passes of up to eight
    /// while the next pass is decoded on a worker, so a caller that consumes results steadily (an indexer writing
    /// them to disk) keeps decoding and computing overlapped from the first image to the last.
    /// </summary>
    /// <remarks>The model cannot be disposed while the stream is being enumerated; dispose the enumerator (a
    /// <c>foreach</c> does) to end it early. Rows are the same bits as <see cref="EmbedImages(IReadOnlyList{ImageInput}, bool)"/> gives: a row does
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
                var buffers = new[] { new float[imagesPerPass * pixelsPerImage], new float[imagesPerPass * pixelsPerImage] };
                var features = new float[imagesPerPass * width]; // [images, E]
                int pass = 0;
                pending = NextPass(source, buffers[0], cancellationToken);
                while (true)
                {
                    var current = pending.GetAwaiter().GetResult();
                    if (current.Inputs.Count == 0) yield break;
                    StopIfAsked(CancellationToken.None); // the token is checked by NextPass
                    pending = NextPass(source, buffers[(pass + 1) % 2], cancellationToken);
                    var pixels = buffers[pass % 2];
                    int count = current.Inputs.Count, decoded = current.Decoded;
                    // Only the decoded images are in the block (failed ones took no slot); rows are independent, so
                    // a row has the same bits whatever else its pass holds.
                    if (decoded > 0)
                        using (KernelThreads())
                            vision.Forward(pixels.AsSpan(0, decoded * pixelsPerImage), decoded, features.AsSpan(0, decoded * width));
                    var results = new ImageEmbeddingResult[count];
                    for (int i = 0, row = 0; i < count; i++)
                        results[i] = current.Errors[i] is { } problem
                            ? new ImageEmbeddingResult(current.Inputs[i], null, problem)
                            : new ImageEmbeddingResult(current.Inputs[i], Finish(features.AsSpan(row++ * width, width), normalize), null);
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

    // Inputs[i] failed when Errors[i] is set; the others' pixels fill the first Decoded slots, in input order.
    private sealed record Pass(List<ImageInput> Inputs, string?[] Errors, int Decoded);

    /// <summary>The preprocessor this model's image tower expects its input from (decode, resize, crop, normalise).</summary>
    internal ImagePreprocessor Preprocessor => preprocessor;

    /// <summary>B of an image pass (<see cref="ClipModelOptions.ImagesPerPass"/>).</summary>
    internal int ImagesPerPass => imagesPerPass;

    /// <summary>
    /// The image tower alone on already preprocessed images: pixels [count, 3, S, S] → features [count, E], not
    /// normalised. For pipelines that decode elsewhere (the indexer) and for measuring the model without decoding;
    /// the caller holds the weights open (<see cref="EnterStreamingCall"/>).
    /// </summary>
    internal void EmbedPreprocessed(ReadOnlySpan<float> pixels, int count, Span<float> features)
    {
        StopIfAsked(CancellationToken.None);
        using (KernelThreads())
            vision.Forward(pixels, count, features);
    }

    /// <summary>An embedding as the public calls return it: copied, normalised if asked, checked for NaN/Inf.</summary>
    internal float[] FinishEmbedding(ReadOnlySpan<float> features, bool normalize) => Finish(features, normalize);

    /// <summary>Holds the weights open for a caller running passes itself; dispose to let them go.</summary>
    internal IDisposable EnterStreamingCall()
    {
        EnterCall();
        return new CallScope(this);
    }

    private sealed class CallScope(ClipModel model) : IDisposable
    {
        private int exited;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref exited, 1) == 0) model.ExitCall();
        }
    }


    // Takes the next (up to) eight images from the source on the caller's thread and decodes them on a worker.
    private Task<Pass> NextPass(IEnumerator<ImageInput> source, float[] pixels, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var inputs = new List<ImageInput>(imagesPerPass);
        while (inputs.Count < imagesPerPass && source.MoveNext()) inputs.Add(source.Current);
        if (inputs.Count == 0) return Task.FromResult(new Pass(inputs, [], 0));
        int pixelsPerImage = preprocessor.OutputLength;
        return Task.Run(() =>
        {
            var errors = new string?[inputs.Count];
            int decoded = 0;
            for (int i = 0; i < inputs.Count; i++)
            {
                var slot = pixels.AsSpan(decoded * pixelsPerImage, pixelsPerImage);
                try
                {
                    Preprocess(inputs[i], slot);
                    decoded++;
                }
                catch (Exception e) when (e is not (OutOfMemoryException or OperationCanceledException))
                {
                    errors[i] = InvalidImage.Describe(e, inputs[i].Name);
                }
            }
            return new Pass(inputs, errors, decoded);
        });
    }

    /// <summary>Embeds texts on their real tokens only (no padding); rows in input order.</summary>
    public float[][] EmbedTexts(IReadOnlyList<string> texts, bool normalize = true)
    {
        ArgumentNullException.ThrowIfNull(texts);
        return WhileWeightsOpen(() => EmbedTextsInside(texts, normalize, CancellationToken.None));
    }

    /// <summary>As the public overload, stopping between passes when <paramref name="cancellationToken"/> asks to.</summary>
    internal float[][] EmbedTexts(IReadOnlyList<string> texts, bool normalize, CancellationToken cancellationToken) =>
        WhileWeightsOpen(() => EmbedTextsInside(texts, normalize, cancellationToken));

    /// <summary><see cref="EmbedTexts(IReadOnlyList{string}, bool)"/> on the thread pool; rows in input order.</summary>
    /// <param name="texts">The texts, embedded in order.</param>
    /// <param name="normalize">Scale each embedding to unit length.</param>
    /// <param name="cancellationToken">Takes effect between passes (<see cref="OperationCanceledException"/>).</param>
    public Task<float[][]> EmbedTextsAsync(IReadOnlyList<string> texts, bool normalize = true,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(texts);
        return Task.Run(() => WhileWeightsOpen(() => EmbedTextsInside(texts, normalize, cancellationToken)), cancellationToken);
    }

    private float[][] EmbedTextsInside(IReadOnlyList<string> texts, bool normalize, CancellationToken cancellationToken)
    {
        int width = EmbeddingSize;
        var result = new float[texts.Count][];
        var ids = new int[texts.Count][];
        for (int i = 0; i < texts.Count; i++)
            ids[i] = tokenizer.Encode(texts[i] ?? throw new ArgumentNullException(nameof(texts), $"text {i} is null"));

        for (int first = 0; first < texts.Count;)
        {
            StopIfAsked(cancellationToken);
            // One pass stacks whole prompts until the token budget is reached (always at least one prompt).
            int count = 0, tokens = 0;
            while (first + count < texts.Count && (count == 0 || tokens + ids[first + count].Length <= tokensPerPass))
                tokens += ids[first + count++].Length;

            var tokenIds = new int[tokens];   // [ΣT]
            var lengths = new int[count];     // [B]
            for (int i = 0, offset = 0; i < count; offset += lengths[i], i++)
            {
                lengths[i] = ids[first + i].Length;
                ids[first + i].CopyTo(tokenIds, offset);
            }
            var features = new float[count * width]; // [B, E]
            using (KernelThreads())
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
        string template = DefaultTemplate) => ClassifyInside(images, labels, template, CancellationToken.None);

    /// <summary><see cref="Classify(IReadOnlyList{ImageInput}, IReadOnlyList{string}, string)"/> on the thread pool.</summary>
    /// <param name="images">The images, classified in order.</param>
    /// <param name="labels">Candidate labels; each is put into <paramref name="template"/>.</param>
    /// <param name="template">The prompt; <c>{}</c> is replaced by the label.</param>
    /// <param name="cancellationToken">Takes effect between passes (<see cref="OperationCanceledException"/>).</param>
    public Task<ZeroShotResult[]> ClassifyAsync(IReadOnlyList<ImageInput> images, IReadOnlyList<string> labels,
        string template = DefaultTemplate, CancellationToken cancellationToken = default)
    {
        CheckClassifyArguments(images, labels, template);
        return Task.Run(() => ClassifyInside(images, labels, template, cancellationToken), cancellationToken);
    }

    private static void CheckClassifyArguments(IReadOnlyList<ImageInput> images, IReadOnlyList<string> labels, string template)
    {
        ArgumentNullException.ThrowIfNull(images);
        ArgumentNullException.ThrowIfNull(labels);
        ArgumentNullException.ThrowIfNull(template);
        if (labels.Count == 0) throw new ArgumentException("at least one label is needed", nameof(labels));
        if (!template.Contains("{}")) throw new ArgumentException($"template '{template}' has no {{}} for the label", nameof(template));
    }

    private ZeroShotResult[] ClassifyInside(IReadOnlyList<ImageInput> images, IReadOnlyList<string> labels, string template,
        CancellationToken cancellationToken)
    {
        CheckClassifyArguments(images, labels, template);
        var prompts = labels.Select(label => template.Replace("{}", label)).ToArray();
        // The prompts go through the text tower while the first images are decoded and resized on a worker: in a new
        // process decoding starts by compiling ImageSharp, which then overlaps the text tower's own first pass instead
        // of adding to it.
        float[][] promptFeatures = []; // [labels][E], normalised
        var imageFeatures = WhileWeightsOpen(() =>   // [images][E], normalised
            EmbedImagesInside(images, normalize: true, cancellationToken,
                whileFirstPassDecodes: () => promptFeatures = PromptEmbeddings(prompts, cancellationToken)));

        var textRows = PromptRows(promptFeatures);
        var results = new ZeroShotResult[images.Count];
        for (int i = 0; i < images.Count; i++) results[i] = ZeroShot(images[i], imageFeatures[i], textRows, labels);
        return results;
    }

    /// <summary>
    /// <see cref="Classify(IReadOnlyList{ImageInput}, IReadOnlyList{string}, string)"/> where each image succeeds or
    /// fails alone (the server's several-image requests): an image that cannot be read or decoded gets the one-line
    /// error <see cref="EmbedImageStream"/> gives it, naming it, and the others their results, the same bits
    /// <c>Classify</c> gives each of them alone. Weights that produce NaN/Inf still fail the whole call.
    /// </summary>
    internal (ZeroShotResult? Result, string? Error)[] ClassifyEach(IReadOnlyList<ImageInput> images, IReadOnlyList<string> labels,
        string template, CancellationToken cancellationToken)
    {
        CheckClassifyArguments(images, labels, template);
        var prompts = labels.Select(label => template.Replace("{}", label)).ToArray();
        var textRows = PromptRows(WhileWeightsOpen(() => PromptEmbeddings(prompts, cancellationToken))); // [labels, E]
        var results = new (ZeroShotResult?, string?)[images.Count];
        int i = 0;
        foreach (var row in EmbedImageStream(images, normalize: true, cancellationToken))
        {
            results[i] = row.Embedding is { } features ? (ZeroShot(images[i], features, textRows, labels), null) : (null, row.Error);
            i++;
        }
        return results;
    }

    /// <summary>The prompts' unit embeddings as one row-major matrix [labels, E].</summary>
    private float[] PromptRows(float[][] promptFeatures)
    {
        int width = EmbeddingSize;
        var textRows = new float[promptFeatures.Length * width];
        for (int j = 0; j < promptFeatures.Length; j++) promptFeatures[j].CopyTo(textRows, j * width);
        return textRows;
    }

    /// <summary>One image's probabilities over the labels from its unit embedding [E] and the prompts' [labels, E].</summary>
    private ZeroShotResult ZeroShot(ImageInput image, float[] imageFeatures, float[] textRows, IReadOnlyList<string> labels)
    {
        var logits = new float[labels.Count];
        var probabilities = new float[labels.Count];
        ClipScores.ZeroShot(imageFeatures, textRows, EmbeddingSize, logitScaleLog, logits, probabilities);
        if (!AllFinite(logits) || !AllFinite(probabilities))
            throw NonFiniteOutput(float.IsFinite(logitScaleLog) && !float.IsFinite(LogitScale)
                ? $"; its logit_scale {logitScaleLog} makes exp(logit_scale) overflow" : null);
        return new ZeroShotResult(labels.ToArray(), probabilities, logits) { Image = image };
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
    /// Releases the memory-mapped weights (the checkpoint and the packed-weights file) without waiting: new calls throw
    /// <see cref="ObjectDisposedException"/>, calls running now stop at their next pass boundary with it, and the
    /// weights are released as the last of them stops (at once when none runs). An <see cref="EmbedImageStream"/>
    /// enumerator stops at its next step or when it is disposed.
    /// </summary>
    public void Dispose()
    {
        bool releaseNow;
        lock (callGate)
        {
            if (disposed) return;
            disposed = true;
            releaseNow = callsRunning == 0;
        }
        if (releaseNow) ReleaseWeights();
    }

    /// <summary>
    /// As <see cref="Dispose"/>, and completes when the weights have been released: once the calls running now have
    /// stopped, which takes at most one pass each (a paused <see cref="EmbedImageStream"/> enumerator holds it until
    /// it is stepped or disposed).
    /// </summary>
    public ValueTask DisposeAsync()
    {
        Dispose();
        return new ValueTask(weightsReleased.Task);
    }

    private void ReleaseWeights()
    {
        weights.Dispose();
        packedWeights?.Dispose();
        promptCache.Clear();
        weightsReleased.TrySetResult();
    }

    /// <summary>Between passes: stop for the caller's token, or because the model is being disposed.</summary>
    private void StopIfAsked(CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        if (disposed) throw Disposed("was disposed while this call was running");
    }

    private ObjectDisposedException Disposed(string what) => new(objectName: null, $"the model ({UserText.Quote(Source)}) {what}");

    /// <summary>This model's kernel thread count for the passes run inside the scope (see <see cref="ClipModelOptions.Threads"/>).</summary>
    private Parallelism.DegreeScope KernelThreads() => Parallelism.WithDegree(threads);

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
            if (disposed) throw Disposed("has been disposed");
            callsRunning++;
        }
    }

    private void ExitCall()
    {
        bool releaseNow;
        lock (callGate) releaseNow = --callsRunning == 0 && disposed;
        if (releaseNow) ReleaseWeights();
    }

    private void Preprocess(ImageInput image, Span<float> destination)
    {
        if (image.EncodedBytes is { } bytes) preprocessor.Preprocess(bytes.Span, image.Name, destination, image.Frame);
        else preprocessor.Preprocess(image.Name, destination, image.Frame);
    }

    // Runs inside a call (the weights are held open by it).
    private float[][] PromptEmbeddings(string[] prompts, CancellationToken cancellationToken)
    {
        var missing = prompts.Where(p => !promptCache.ContainsKey(p)).Distinct().ToList();
        if (missing.Count > 0)
        {
            var embedded = EmbedTextsInside(missing, normalize: true, cancellationToken);
            if (promptCache.Count + missing.Count > PromptCacheCapacity) promptCache.Clear();
            for (int i = 0; i < missing.Count; i++) promptCache[missing[i]] = embedded[i];
        }
        return prompts.Select(p => promptCache.TryGetValue(p, out var f) ? f : EmbedTextsInside([p], true, cancellationToken)[0]).ToArray();
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
