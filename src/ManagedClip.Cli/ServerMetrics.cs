using System.Diagnostics;
using System.Diagnostics.Metrics;
using ManagedClip.Extensions.AI;

namespace ManagedClip.Cli;

/// <summary>
/// The server's own instruments, on the meter <c>ManagedClip.Server</c> (created through the app's
/// <see cref="IMeterFactory"/>, so each server has its own). OpenTelemetry exports them on <c>/metrics</c> beside
/// ASP.NET Core's <c>http.server.*</c> metrics and the library's <c>ManagedClip</c> meter; Prometheus names replace
/// dots by underscores, add the unit and <c>_total</c> to counters
/// (<c>managedclip_server_requests_total{route, status}</c>).
/// <para>
/// Every model call of the server also records on the library's meter <c>ManagedClip</c> (the instruments
/// <see cref="ManagedClipTelemetry"/> names, the same ones the Microsoft.Extensions.AI generators record on): images
/// and texts embedded, the call's duration, calls running. The server calls <see cref="ClipModel"/> directly, never
/// through the generators, and records in one place (<see cref="ModelWork{T}"/>), so nothing is counted twice.
/// </para>
/// </summary>
internal sealed class ServerMetrics
{
    public const string MeterName = "ManagedClip.Server";

    /// <summary>The library's meter: the server's model calls record on it (<see cref="ModelWork{T}"/>), as the
    /// ManagedClip.Extensions.AI generators do.</summary>
    public const string LibraryMeterName = ManagedClipTelemetry.MeterName;

    private readonly Counter<long> requests;
    private readonly Histogram<double> requestDuration;
    private readonly Histogram<double> modelDuration;
    private readonly Counter<long> images;
    private readonly Counter<long> texts;
    private readonly Counter<long> failedItems;
    private readonly ClipInstruments library;

    public ServerMetrics(IMeterFactory meters, ModelWorkQueue queue, ServedModel model)
    {
        var meter = meters.Create(MeterName);
        library = ManagedClipTelemetry.InstrumentsFor(meters);
        requests = meter.CreateCounter<long>("managedclip.server.requests", "{request}",
            "Requests answered, by route template and status code.");
        requestDuration = meter.CreateHistogram<double>("managedclip.server.request.duration", "s",
            "Time from the first byte of a request to the end of its answer, by route.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30] });
        modelDuration = meter.CreateHistogram<double>("managedclip.server.model.duration", "s",
            "Time a request held the model (decode, preprocess, both towers), by route.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30] });
        images = meter.CreateCounter<long>("managedclip.server.images", "{image}", "Images run through the image tower.");
        texts = meter.CreateCounter<long>("managedclip.server.texts", "{text}", "Texts and label prompts run through the text tower.");
        failedItems = meter.CreateCounter<long>("managedclip.server.items.failed", "{item}",
            "Images (or /score rows) answered with an error in their place in a 200 reply of several items, by route.");
        meter.CreateObservableGauge("managedclip.server.queue.length", () => queue.Admitted, "{request}",
            "Requests admitted to the model queue (running or waiting).");
        meter.CreateObservableGauge("managedclip.server.queue.capacity", () => queue.Capacity, "{request}",
            "Requests the model queue admits at once; more are answered 503.");
        meter.CreateObservableGauge("managedclip.server.ready", () => model.Current is null ? 0 : 1, null,
            "1 once the model is loaded, 0 while it loads (or after a failed load).");
    }

    /// <summary>
    /// Records the model's load on the library meter's <c>managedclip.load.duration</c>, as AddManagedClip does, once
    /// it is done. Called when the app has started: a measurement made before the exporter listens would be lost.
    /// A server given a loaded model has no load to record.
    /// </summary>
    public void RecordLoad(ServedModel model) => model.Loaded.ContinueWith(_ =>
    {
        if (model.LoadSeconds is { } seconds) library.LoadDuration.Record(seconds);
    }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);

    public void Request(string route, int status, double seconds)
    {
        var tags = new TagList { { "route", route }, { "status", status } };
        requests.Add(1, tags);
        requestDuration.Record(seconds, new KeyValuePair<string, object?>("route", route));
    }

    /// <summary>What one model call did: images and texts (label prompts included) embedded, items that failed alone.</summary>
    public readonly record struct Work(int Images, int Texts, int Failed = 0);

    /// <summary>
    /// Runs one model call of <paramref name="route"/> and records it on both meters: on the server's, the time it
    /// held the model, the images and texts it embedded and the items that failed alone; on the library's, the same
    /// counts, the call's duration (tagged <c>managedclip.input</c> = <c>image</c> when the call embedded images, its
    /// label prompts riding along, else <c>text</c>; and <c>error.type</c> when it failed) and the calls running.
    /// </summary>
    /// <param name="route">The route template, e.g. /classify.</param>
    /// <param name="input">"image" or "text": what the call embeds (a call with images is an image call); null for a
    /// call that embeds nothing (/preprocess), which the library meter does not see.</param>
    /// <param name="work">The call.</param>
    /// <param name="counted">What the call did, read from its result.</param>
    public T ModelWork<T>(string route, string? input, Func<T> work, Func<T, Work> counted)
    {
        long start = Stopwatch.GetTimestamp();
        if (input is not null) library.ActiveCalls.Add(1);
        string? failure = null;
        try
        {
            var result = work();
            var (imageCount, textCount, failed) = counted(result);
            if (imageCount > 0)
            {
                images.Add(imageCount);
                library.ImagesEmbedded.Add(imageCount);
            }
            if (textCount > 0)
            {
                texts.Add(textCount);
                library.TextsEmbedded.Add(textCount);
            }
            if (failed > 0) failedItems.Add(failed, new KeyValuePair<string, object?>("route", route));
            return result;
        }
        catch (Exception e)
        {
            failure = e is OperationCanceledException ? "cancelled" : e.GetType().Name;
            throw;
        }
        finally
        {
            double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
            modelDuration.Record(seconds, new KeyValuePair<string, object?>("route", route));
            if (input is not null)
            {
                library.ActiveCalls.Add(-1);
                var kind = new KeyValuePair<string, object?>("managedclip.input", input);
                if (failure is null) library.EmbeddingDuration.Record(seconds, kind);
                else library.EmbeddingDuration.Record(seconds, kind, new KeyValuePair<string, object?>("error.type", failure));
            }
        }
    }
}
