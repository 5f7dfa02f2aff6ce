using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace ManagedClip.Cli;

/// <summary>
/// The server's own instruments, on the meter <c>ManagedClip.Server</c> (created through the app's
/// <see cref="IMeterFactory"/>, so each server has its own). OpenTelemetry exports them on <c>/metrics</c> beside
/// ASP.NET Core's <c>http.server.*</c> metrics and the library's <c>ManagedClip</c> meter; Prometheus names replace
/// dots by underscores, add the unit and <c>_total</c> to counters
/// (<c>managedclip_server_requests_total{route, status}</c>).
/// </summary>
internal sealed class ServerMetrics
{
    public const string MeterName = "ManagedClip.Server";

    /// <summary>The meter ManagedClip.Extensions.AI records on; exported whenever something in the process records on it.</summary>
    public const string LibraryMeterName = "ManagedClip";

    private readonly Counter<long> requests;
    private readonly Histogram<double> requestDuration;
    private readonly Histogram<double> modelDuration;
    private readonly Counter<long> images;
    private readonly Counter<long> texts;

    public ServerMetrics(IMeterFactory meters, ModelWorkQueue queue, ServedModel model)
    {
        var meter = meters.Create(MeterName);
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
        meter.CreateObservableGauge("managedclip.server.queue.length", () => queue.Admitted, "{request}",
            "Requests admitted to the model queue (running or waiting).");
        meter.CreateObservableGauge("managedclip.server.queue.capacity", () => queue.Capacity, "{request}",
            "Requests the model queue admits at once; more are answered 503.");
        meter.CreateObservableGauge("managedclip.server.ready", () => model.Current is null ? 0 : 1, null,
            "1 once the model is loaded, 0 while it loads (or after a failed load).");
    }

    public void Request(string route, int status, double seconds)
    {
        var tags = new TagList { { "route", route }, { "status", status } };
        requests.Add(1, tags);
        requestDuration.Record(seconds, new KeyValuePair<string, object?>("route", route));
    }

    public void ModelWork(string route, double seconds, int imageCount, int textCount)
    {
        modelDuration.Record(seconds, new KeyValuePair<string, object?>("route", route));
        if (imageCount > 0) images.Add(imageCount);
        if (textCount > 0) texts.Add(textCount);
    }
}
