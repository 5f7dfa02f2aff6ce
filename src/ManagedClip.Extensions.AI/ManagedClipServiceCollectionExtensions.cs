using System.Diagnostics;
using System.Diagnostics.Metrics;
using ManagedClip.IO.Distribution;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace ManagedClip.Extensions.AI;

/// <summary>Registers ManagedClip with a <see cref="IServiceCollection"/>.</summary>
public static class ManagedClipServiceCollectionExtensions
{
    /// <summary>
    /// Registers one <see cref="ClipModel"/> (a singleton, loaded when first resolved, disposed with the container)
    /// and the two generators over it: <c>IEmbeddingGenerator&lt;string, Embedding&lt;float&gt;&gt;</c> for texts and
    /// <c>IEmbeddingGenerator&lt;DataContent, Embedding&lt;float&gt;&gt;</c> for images.
    /// </summary>
    /// <param name="services">The container's registrations.</param>
    /// <param name="configure">Sets the <see cref="ClipModelOptions"/> (model folder, threads, pass sizes); the options
    /// can also be bound from configuration with <c>services.Configure&lt;ClipModelOptions&gt;(section)</c>.</param>
    /// <remarks>
    /// Without <see cref="ClipModelOptions.ModelDirectory"/> the model is looked for in <c>MANAGEDCLIP_MODEL</c>, the
    /// download cache and the Hugging Face hub cache, and when none has it, it is downloaded once into the download
    /// cache (784 MB; progress logged every 5 s; <c>HF_HUB_OFFLINE=1</c> forbids it), as the <c>managedclip</c> command
    /// does. Loading is logged and traced (<see cref="ManagedClipTelemetry"/>).
    /// </remarks>
    public static IServiceCollection AddManagedClip(this IServiceCollection services, Action<ClipModelOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        var options = services.AddOptions<ClipModelOptions>();
        if (configure is not null) options.Configure(configure);

        services.TryAddSingleton(provider => ClipModelLoading.Load(
            provider.GetRequiredService<IOptions<ClipModelOptions>>().Value,
            provider.GetService<ILoggerFactory>() ?? NullLoggerFactory.Instance,
            provider.GetService<IMeterFactory>()));
        services.TryAddSingleton(provider => new ClipTextEmbeddingGenerator(provider.GetRequiredService<ClipModel>(),
            provider.GetService<IMeterFactory>(), provider.GetService<ILogger<ClipTextEmbeddingGenerator>>()));
        services.TryAddSingleton(provider => new ClipImageEmbeddingGenerator(provider.GetRequiredService<ClipModel>(),
            provider.GetService<IMeterFactory>(), provider.GetService<ILogger<ClipImageEmbeddingGenerator>>()));
        services.TryAddSingleton<IEmbeddingGenerator<string, Embedding<float>>>(provider => provider.GetRequiredService<ClipTextEmbeddingGenerator>());
        services.TryAddSingleton<IEmbeddingGenerator<DataContent, Embedding<float>>>(provider => provider.GetRequiredService<ClipImageEmbeddingGenerator>());
        return services;
    }
}

/// <summary>Loading the container's model: finding or downloading it, with logs, a span and the load duration.</summary>
internal static partial class ClipModelLoading
{
    private static readonly TimeSpan ProgressInterval = TimeSpan.FromSeconds(5);

    public static ClipModel Load(ClipModelOptions options, ILoggerFactory loggers, IMeterFactory? meters)
    {
        var logger = loggers.CreateLogger("ManagedClip");
        using var activity = ManagedClipTelemetry.Source.StartActivity("ManagedClip.Load");
        long started = Stopwatch.GetTimestamp();
        try
        {
            // Without a folder, Load searches the caches itself; only when they are empty is the model fetched first
            // (into the download cache, which that search then finds).
            if (options.ModelDirectory is null && ModelDirectory.FindDefault() is null) Download(logger);
            LogLoading(logger, options.ModelDirectory ?? "the caches", options.WeightsFile ?? "the folder's");
            var model = ClipModel.Load(options);
            activity?.SetTag("managedclip.model_directory", model.Files.Root);
            var elapsed = Stopwatch.GetElapsedTime(started);
            ManagedClipTelemetry.InstrumentsFor(meters).LoadDuration.Record(elapsed.TotalSeconds);
            LogLoaded(logger, model.Source, model.EmbeddingSize, elapsed.TotalMilliseconds);
            return model;
        }
        catch (Exception e)
        {
            activity?.SetStatus(ActivityStatusCode.Error, e.Message);
            LogLoadFailed(logger, e.Message);
            throw;
        }
    }

    /// <summary>Fetches the real checkpoint into the download cache (what the CLI's first use does), logging progress.</summary>
    private static void Download(ILogger logger)
    {
        var folder = CachePaths.DownloadDirectory;
        if (HubEnvironment.Offline)
            throw new ModelDownloadException(
                $"no BiomedCLIP model in the caches and {HubEnvironment.OfflineVariable} forbids downloading it: set ClipModelOptions.ModelDirectory");
        var downloader = new ModelDownloader();
        LogDownloading(logger, downloader.Manifest.Files.Sum(f => f.Size ?? 0) / 1e6, folder);
        var progress = new LoggedProgress(logger);
        downloader.DownloadAllAsync(folder, progress).GetAwaiter().GetResult();
    }

    /// <summary>Download progress as a log line at most every five seconds per file, and every note (retries).</summary>
    private sealed class LoggedProgress(ILogger logger) : IProgress<DownloadProgress>
    {
        private string? file;
        private long lastReport;

        public void Report(DownloadProgress value)
        {
            if (value.Note is { } note) LogDownloadNote(logger, value.FileName, note);
            bool done = value.TotalBytes is { } total && value.BytesDone >= total;
            if (value.FileName == file && !done && Stopwatch.GetElapsedTime(lastReport) < ProgressInterval) return;
            file = value.FileName;
            lastReport = Stopwatch.GetTimestamp();
            LogDownloadProgress(logger, value.FileName, value.BytesDone / 1e6, value.TotalBytes is { } size ? size / 1e6 : double.NaN);
        }
    }

    [LoggerMessage(EventId = 1, Level = LogLevel.Information, Message = "Loading the BiomedCLIP model from {Folder} (weights: {Weights})")]
    private static partial void LogLoading(ILogger logger, string folder, string weights);

    [LoggerMessage(EventId = 2, Level = LogLevel.Information, Message = "Loaded {Source} ({Dimensions}-d embeddings) in {Milliseconds:0} ms")]
    private static partial void LogLoaded(ILogger logger, string source, int dimensions, double milliseconds);

    [LoggerMessage(EventId = 3, Level = LogLevel.Error, Message = "The model could not be loaded: {Problem}")]
    private static partial void LogLoadFailed(ILogger logger, string problem);

    [LoggerMessage(EventId = 4, Level = LogLevel.Information, Message = "No model in the caches: downloading BiomedCLIP ({Megabytes:0} MB) into {Folder} (first use only)")]
    private static partial void LogDownloading(ILogger logger, double megabytes, string folder);

    [LoggerMessage(EventId = 5, Level = LogLevel.Information, Message = "Downloading {File}: {Done:0.0} of {Total:0.0} MB")]
    private static partial void LogDownloadProgress(ILogger logger, string file, double done, double total);

    [LoggerMessage(EventId = 6, Level = LogLevel.Warning, Message = "Downloading {File}: {Note}")]
    private static partial void LogDownloadNote(ILogger logger, string file, string note);
}
