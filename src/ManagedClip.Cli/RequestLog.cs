using System.Diagnostics;
using Microsoft.AspNetCore.Routing;

namespace ManagedClip.Cli;

/// <summary>
/// One log line per request, written when the answer is complete:
/// <c>POST /classify 200 41.7 ms in=48213 out=187 client=127.0.0.1 images=1 labels=9</c>.
/// Method, path (no query string), status, duration, bytes read and written, the client's address, and a short
/// note from the handler (counts, and at most a short quoted prefix of a search text): never image bytes, labels
/// or whole texts. The same pass feeds the per-route request metrics.
/// </summary>
internal static partial class RequestLog
{
    /// <summary>The log category; <c>serve</c> shows it at Information, everything else from Warning up.</summary>
    public const string Category = "ManagedClip.Server.Requests";

    private const string NoteKey = "managedclip.log-note";

    /// <summary>Adds a short note (counts, a quoted prefix) to this request's log line.</summary>
    public static void Note(HttpContext context, string note) =>
        context.Items[NoteKey] = context.Items.TryGetValue(NoteKey, out var previous) ? $"{previous} {note}" : note;

    /// <summary>A text shown in the log only as its first characters, quoted and escaped.</summary>
    public static string Prefix(string text)
    {
        const int Shown = 24;
        if (text.Length <= Shown) return "\"" + UserText.Quote(text) + "\"";
        int cut = char.IsHighSurrogate(text[Shown - 1]) ? Shown - 1 : Shown; // never half a character
        return "\"" + UserText.Quote(text[..cut]) + "…\"";
    }

    public static void Use(WebApplication app, ServerMetrics metrics)
    {
        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger(Category);
        app.Use(async (context, next) =>
        {
            long start = Stopwatch.GetTimestamp();
            var requestBody = new CountingStream(context.Request.Body);
            var responseBody = new CountingStream(context.Response.Body);
            context.Request.Body = requestBody;
            context.Response.Body = responseBody;
            try
            {
                await next(context);
            }
            finally
            {
                var elapsed = Stopwatch.GetElapsedTime(start);
                int status = context.Response.StatusCode;
                // The route template keeps the metric's label set small (no per-path series for random URLs).
                string route = (context.GetEndpoint() as RouteEndpoint)?.RoutePattern.RawText ?? "(no route)";
                metrics.Request(route, status, elapsed.TotalSeconds);
                string note = context.Items.TryGetValue(NoteKey, out var n) ? $" {n}" : "";
                Logged(logger, context.Request.Method, UserText.Quote(context.Request.Path.Value ?? "", 120), status,
                    elapsed.TotalMilliseconds, requestBody.Count, responseBody.Count,
                    context.Connection.RemoteIpAddress?.ToString() ?? "-", note);
            }
        });
    }

    [LoggerMessage(EventId = 1, Level = LogLevel.Information,
        Message = "{Method} {Path} {Status} {DurationMs:0.0} ms in={RequestBytes} out={ResponseBytes} client={Client}{Note}")]
    private static partial void Logged(ILogger logger, string method, string path, int status, double durationMs,
        long requestBytes, long responseBytes, string client, string note);

    /// <summary>Passes a body through and counts the bytes that crossed it.</summary>
    private sealed class CountingStream(Stream inner) : Stream
    {
        public long Count { get; private set; }

        public override bool CanRead => inner.CanRead;
        public override bool CanSeek => false;
        public override bool CanWrite => inner.CanWrite;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => Counted(inner.Read(buffer, offset, count));
        public override int Read(Span<byte> buffer) => Counted(inner.Read(buffer));
        public override async Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancel) =>
            Counted(await inner.ReadAsync(buffer.AsMemory(offset, count), cancel));
        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancel = default) =>
            Counted(await inner.ReadAsync(buffer, cancel));

        public override void Write(byte[] buffer, int offset, int count) { inner.Write(buffer, offset, count); Count += count; }
        public override void Write(ReadOnlySpan<byte> buffer) { inner.Write(buffer); Count += buffer.Length; }
        public override async Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancel)
        {
            await inner.WriteAsync(buffer.AsMemory(offset, count), cancel);
            Count += count;
        }
        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancel = default)
        {
            await inner.WriteAsync(buffer, cancel);
            Count += buffer.Length;
        }

        public override void Flush() => inner.Flush();
        public override Task FlushAsync(CancellationToken cancel) => inner.FlushAsync(cancel);
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();

        private int Counted(int read)
        {
            Count += read;
            return read;
        }
    }
}
