using System.Diagnostics;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace ManagedClip.Extensions.AI;

/// <summary>
/// What the text and image generators share: the model, its metadata, and one embedding call's telemetry (a span, the
/// counters, the duration, the calls running).
/// </summary>
/// <typeparam name="TInput">string for texts, <see cref="DataContent"/> for images.</typeparam>
public abstract partial class ClipEmbeddingGenerator<TInput> : IEmbeddingGenerator<TInput, Embedding<float>>
{
    private readonly ClipInstruments instruments;
    private readonly string inputKind; // "image" or "text", the value of the managedclip.input tag

    private protected ClipEmbeddingGenerator(ClipModel model, string inputKind, ClipInstruments instruments, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(model);
        Model = model;
        this.inputKind = inputKind;
        this.instruments = instruments;
        Logger = logger;
        Metadata = new EmbeddingGeneratorMetadata("ManagedClip", providerUri: null, ModelIdOf(model), model.EmbeddingSize);
    }

    /// <summary>The model the embeddings come from (shared; a generator never disposes it).</summary>
    public ClipModel Model { get; }

    /// <summary>Provider "ManagedClip", the model's id (see <see cref="ModelIdOf"/>) and its dimensions (512 for BiomedCLIP).</summary>
    public EmbeddingGeneratorMetadata Metadata { get; }

    private protected ILogger Logger { get; }

    /// <summary>
    /// A model's id: the Hugging Face repository for a hub-cache snapshot (<c>microsoft/BiomedCLIP-…</c>), otherwise
    /// the model folder's name (the download cache's folder is named after the model).
    /// </summary>
    public static string ModelIdOf(ClipModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        var folder = new DirectoryInfo(model.Files.Root);
        // <hub>/models--owner--name/snapshots/<revision>
        if (folder.Parent is { Name: "snapshots", Parent: { } repository } && repository.Name.StartsWith("models--", StringComparison.Ordinal))
            return repository.Name["models--".Length..].Replace("--", "/", StringComparison.Ordinal);
        return folder.Name;
    }

    /// <inheritdoc/>
    public async Task<GeneratedEmbeddings<Embedding<float>>> GenerateAsync(IEnumerable<TInput> values,
        EmbeddingGenerationOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(values);
        var inputs = values.ToArray();
        if (options?.Dimensions is { } dimensions && dimensions != Model.EmbeddingSize)
            throw new NotSupportedException(
                $"this model's embeddings have {Model.EmbeddingSize} dimensions; {dimensions} were asked for (EmbeddingGenerationOptions.Dimensions)");
        if (options?.ModelId is { } modelId && modelId != Metadata.DefaultModelId)
            throw new NotSupportedException(
                $"this generator serves the model '{Metadata.DefaultModelId}'; '{modelId}' was asked for (EmbeddingGenerationOptions.ModelId)");

        using var activity = ManagedClipTelemetry.Source.StartActivity("embeddings", ActivityKind.Internal);
        activity?.SetTag("gen_ai.operation.name", "embeddings");
        activity?.SetTag("gen_ai.request.model", Metadata.DefaultModelId);
        activity?.SetTag("managedclip.input", inputKind);
        activity?.SetTag("managedclip.count", inputs.Length);
        long started = Stopwatch.GetTimestamp();
        instruments.ActiveCalls.Add(1);
        string? failure = null;
        try
        {
            var vectors = await EmbedAsync(inputs, cancellationToken).ConfigureAwait(false);
            var created = DateTimeOffset.UtcNow;
            var result = new GeneratedEmbeddings<Embedding<float>>(vectors.Length);
            foreach (var vector in vectors)
                result.Add(new Embedding<float>(vector) { ModelId = Metadata.DefaultModelId, CreatedAt = created });
            (inputKind == "image" ? instruments.ImagesEmbedded : instruments.TextsEmbedded).Add(vectors.Length);
            return result;
        }
        catch (Exception e)
        {
            failure = e is OperationCanceledException ? "cancelled" : e.GetType().Name;
            activity?.SetStatus(ActivityStatusCode.Error, e.Message);
            LogCallFailed(Logger, inputKind, inputs.Length, e.Message);
            throw;
        }
        finally
        {
            instruments.ActiveCalls.Add(-1);
            var seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
            var input = new KeyValuePair<string, object?>("managedclip.input", inputKind);
            if (failure is null) instruments.EmbeddingDuration.Record(seconds, input);
            else instruments.EmbeddingDuration.Record(seconds, input, new KeyValuePair<string, object?>("error.type", failure));
            LogCallDone(Logger, inputKind, inputs.Length, seconds * 1000);
        }
    }

    /// <summary>The embeddings [count][E], unit length, in input order.</summary>
    private protected abstract Task<float[][]> EmbedAsync(TInput[] inputs, CancellationToken cancellationToken);

    /// <inheritdoc/>
    public object? GetService(Type serviceType, object? serviceKey = null)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        if (serviceKey is not null) return null;
        if (serviceType == typeof(EmbeddingGeneratorMetadata)) return Metadata;
        if (serviceType == typeof(ClipModel)) return Model;
        return serviceType.IsInstanceOfType(this) ? this : null;
    }

    /// <summary>Does nothing: the model is shared and belongs to whoever made it (the DI container, or the caller).</summary>
    public void Dispose() => GC.SuppressFinalize(this);

    [LoggerMessage(EventId = 10, Level = LogLevel.Debug, Message = "Embedded {Count} {Input}(s) in {Milliseconds:0.0} ms")]
    private static partial void LogCallDone(ILogger logger, string input, int count, double milliseconds);

    [LoggerMessage(EventId = 11, Level = LogLevel.Warning, Message = "Embedding {Count} {Input}(s) failed: {Problem}")]
    private static partial void LogCallFailed(ILogger logger, string input, int count, string problem);
}

/// <summary>
/// BiomedCLIP's text tower as a Microsoft.Extensions.AI embedding generator: each text becomes a unit-length 512-d
/// vector, the same bits <see cref="ClipModel.EmbedTexts(IReadOnlyList{string}, bool)"/> gives.
/// </summary>
public sealed class ClipTextEmbeddingGenerator : ClipEmbeddingGenerator<string>
{
    /// <summary>A generator over a loaded model (which stays the caller's to dispose).</summary>
    /// <param name="model">The model.</param>
    /// <param name="meterFactory">Where the "ManagedClip" meter comes from (null: one process-wide meter).</param>
    /// <param name="logger">Per-call logging (debug level; failures as warnings).</param>
    public ClipTextEmbeddingGenerator(ClipModel model, System.Diagnostics.Metrics.IMeterFactory? meterFactory = null,
        ILogger<ClipTextEmbeddingGenerator>? logger = null)
        : base(model, "text", ManagedClipTelemetry.InstrumentsFor(meterFactory), logger ?? (ILogger)NullLogger.Instance)
    {
    }

    private protected override Task<float[][]> EmbedAsync(string[] inputs, CancellationToken cancellationToken)
    {
        for (int i = 0; i < inputs.Length; i++)
            if (inputs[i] is null) throw new ArgumentException($"text {i} is null");
        return Model.EmbedTextsAsync(inputs, normalize: true, cancellationToken);
    }
}

/// <summary>
/// BiomedCLIP's image tower as a Microsoft.Extensions.AI embedding generator over <see cref="DataContent"/>: any
/// encoded image the library decodes (PNG, JPEG, DICOM, BMP, GIF, TIFF, WebP, ICO), given as bytes or a data URI, becomes a
/// unit-length 512-d vector, the same bits <see cref="ClipModel.EmbedImages(IReadOnlyList{ImageInput}, bool)"/> gives.
/// </summary>
/// <remarks>The media type must be <c>image/*</c>, <c>application/dicom</c> or <c>application/octet-stream</c>; the
/// format itself is read from the bytes. An image that cannot be decoded fails the call with one line naming it
/// (<see cref="DataContent.Name"/>, else "image N").</remarks>
public sealed class ClipImageEmbeddingGenerator : ClipEmbeddingGenerator<DataContent>
{
    /// <summary>A generator over a loaded model (which stays the caller's to dispose).</summary>
    /// <param name="model">The model.</param>
    /// <param name="meterFactory">Where the "ManagedClip" meter comes from (null: one process-wide meter).</param>
    /// <param name="logger">Per-call logging (debug level; failures as warnings).</param>
    public ClipImageEmbeddingGenerator(ClipModel model, System.Diagnostics.Metrics.IMeterFactory? meterFactory = null,
        ILogger<ClipImageEmbeddingGenerator>? logger = null)
        : base(model, "image", ManagedClipTelemetry.InstrumentsFor(meterFactory), logger ?? (ILogger)NullLogger.Instance)
    {
    }

    private protected override Task<float[][]> EmbedAsync(DataContent[] inputs, CancellationToken cancellationToken)
    {
        var images = new ImageInput[inputs.Length];
        for (int i = 0; i < inputs.Length; i++) images[i] = ToImage(inputs[i], i);
        return Model.EmbedImagesAsync(images, normalize: true, cancellationToken);
    }

    /// <summary>The bytes of an image content, or one line saying why it is not one.</summary>
    internal static ImageInput ToImage(DataContent? content, int index)
    {
        if (content is null) throw new ArgumentException($"image {index} is null");
        string name = string.IsNullOrEmpty(content.Name) ? $"image {index}" : content.Name;
        string mediaType = content.MediaType;
        bool image = content.HasTopLevelMediaType("image")
            || mediaType.Equals("application/dicom", StringComparison.OrdinalIgnoreCase)
            || mediaType.Equals("application/octet-stream", StringComparison.OrdinalIgnoreCase);
        if (!image)
            throw new ArgumentException(
                $"{name}: media type '{mediaType}' is not an image (expected image/*, application/dicom or application/octet-stream)");
        if (content.Data.IsEmpty) throw new ArgumentException($"{name}: the image content is empty (0 bytes)");
        return ImageInput.FromBytes(content.Data, name);
    }
}
