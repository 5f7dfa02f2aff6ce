using System.Diagnostics;
using System.Globalization;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace ManagedClip.Cli;

/// <summary>
/// Where a <c>/healthz</c> answer spent its time inside the server, as a <c>Server-Timing</c> header (W3C Server
/// Timing; browsers' developer tools and <c>curl -w '%header{server-timing}'</c> show it):
/// <c>Server-Timing: wait;dur=12.4, gc;dur=3.1, pool;desc="pending=40 threads=12"</c>.
/// <list type="bullet">
/// <item><c>wait</c>: from the moment Kestrel started the connection (accepted it and gave it a thread) to the moment
/// the request reached the handler: request-line and header parsing and, under load, waiting for a pool thread or a
/// CPU. Only on a connection's first request (later ones would count the idle time between requests).</item>
/// <item><c>gc</c>: garbage-collection pause time in that same span (the process's total pause time, which may
/// include pauses of other threads' collections that stopped this one too).</item>
/// <item><c>pool</c>: thread-pool work items waiting and threads alive when the handler ran.</item>
/// </list>
/// A client that sees a slow poll can so tell the server's share from the network's and its own.
/// </summary>
internal static class ConnectionClock
{
    private const string StartedKey = "managedclip.connection-started";

    private sealed record Started(long Timestamp, TimeSpan GcPause);

    /// <summary>Stamps every connection Kestrel starts, on every endpoint (--urls, --port, ASPNETCORE_URLS).</summary>
    public static void Use(KestrelServerOptions kestrel) =>
        kestrel.ConfigureEndpointDefaults(listen => listen.Use(next => connection =>
        {
            connection.Items[StartedKey] = new Started(Stopwatch.GetTimestamp(), GC.GetTotalPauseDuration());
            return next(connection);
        }));

    /// <summary>The Server-Timing value for this request (wait and gc only on a connection's first request).</summary>
    public static string Describe(HttpContext context)
    {
        string pool = string.Create(CultureInfo.InvariantCulture,
            $"pool;desc=\"pending={ThreadPool.PendingWorkItemCount} threads={ThreadPool.ThreadCount}\"");
        var items = context.Features.Get<IConnectionItemsFeature>()?.Items;
        if (items is null || !items.Remove(StartedKey, out var value) || value is not Started started) return pool;
        double waitMs = Stopwatch.GetElapsedTime(started.Timestamp).TotalMilliseconds;
        double gcMs = (GC.GetTotalPauseDuration() - started.GcPause).TotalMilliseconds;
        return string.Create(CultureInfo.InvariantCulture, $"wait;dur={waitMs:0.0}, gc;dur={gcMs:0.0}, {pool}");
    }
}
