using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace ManagedClip.Extensions.AI;

/// <summary>
/// The names under which ManagedClip reports itself to OpenTelemetry and any other listener:
/// <c>builder.WithMetrics(m =&gt; m.AddMeter(ManagedClipTelemetry.MeterName))</c>,
/// <c>builder.WithTracing(t =&gt; t.AddSource(ManagedClipTelemetry.ActivitySourceName))</c>.
/// </summary>
/// <remarks>
/// Instruments of the meter: <c>managedclip.images.embedded</c> and <c>managedclip.texts.embedded</c> (counters),
/// <c>managedclip.embedding.duration</c> (histogram, seconds, tagged <c>managedclip.input</c> = <c>image</c> or
/// <c>text</c> and <c>error.type</c> when a call failed), <c>managedclip.calls.active</c> (embedding calls running now:
/// the library has no queue of its own, every call computes as it arrives) and <c>managedclip.load.duration</c>
/// (seconds). Spans: <c>ManagedClip.Load</c> and <c>embeddings</c> (one per generator call, with the OpenTelemetry
/// GenAI attributes <c>gen_ai.operation.name</c>, <c>gen_ai.request.model</c>, and <c>managedclip.input</c>,
/// <c>managedclip.count</c>).
/// </remarks>
public static class ManagedClipTelemetry
{
    /// <summary>The <see cref="Meter"/> name: "ManagedClip".</summary>
    public const string MeterName = "ManagedClip";

    /// <summary>The <see cref="System.Diagnostics.ActivitySource"/> name: "ManagedClip".</summary>
    public const string ActivitySourceName = "ManagedClip";

    private static readonly string? Version = typeof(ManagedClipTelemetry).Assembly.GetName().Version?.ToString();

    /// <summary>Spans around loading and each embedding call.</summary>
    internal static readonly ActivitySource Source = new(ActivitySourceName, Version);

    // Instruments for generators made without a meter factory (outside dependency injection), shared by all of them.
    private static readonly Lazy<ClipInstruments> Shared = new(() => new ClipInstruments(new Meter(MeterName, Version)));

    /// <summary>The instruments on <paramref name="factory"/>'s meter, or on one process-wide meter without a factory.</summary>
    internal static ClipInstruments InstrumentsFor(IMeterFactory? factory) =>
        factory is null ? Shared.Value : new ClipInstruments(factory.Create(new MeterOptions(MeterName) { Version = Version }));
}

/// <summary>The instruments of one "ManagedClip" meter.</summary>
internal sealed class ClipInstruments(Meter meter)
{
    public readonly Counter<long> ImagesEmbedded = meter.CreateCounter<long>("managedclip.images.embedded", "{image}", "Images embedded");
    public readonly Counter<long> TextsEmbedded = meter.CreateCounter<long>("managedclip.texts.embedded", "{text}", "Texts embedded");
    public readonly Histogram<double> EmbeddingDuration = meter.CreateHistogram<double>("managedclip.embedding.duration", "s", "Duration of one embedding call");
    public readonly UpDownCounter<long> ActiveCalls = meter.CreateUpDownCounter<long>("managedclip.calls.active", "{call}", "Embedding calls running");
    public readonly Histogram<double> LoadDuration = meter.CreateHistogram<double>("managedclip.load.duration", "s", "Duration of loading the model");
}
