using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace ManagedClip.Tests.IO;

/// <summary>What the test server saw: the request path, its Range and Authorization headers (null when absent).</summary>
internal sealed record RecordedRequest(string Path, string? Range, string? Authorization = null);

/// <summary>How the test server answers one request.</summary>
internal abstract record Reply
{
    /// <summary>The file, honouring <c>Range: bytes=N-</c> with 206 (or 416 past the end) unless told to ignore it.</summary>
    public sealed record File(byte[] Body, bool HonourRange = true, bool AnnounceLength = true) : Reply;

    /// <summary>200 announcing the whole length, then only the first <c>Count</c> bytes and a closed connection.</summary>
    public sealed record CutAfter(byte[] Body, int Count) : Reply;

    /// <summary>200 announcing the whole length, then the first <c>Count</c> bytes and silence until the server stops.</summary>
    public sealed record StallAfter(byte[] Body, int Count) : Reply;

    /// <summary>404 Not Found.</summary>
    public sealed record NotFound : Reply;

    /// <summary>An empty answer with this status, e.g. 503 or 429, and a Retry-After header when given.</summary>
    public sealed record Status(int Code, string Reason, string? RetryAfter = null) : Reply;
}

/// <summary>
/// A deliberately small HTTP/1.1 server on 127.0.0.1 (ephemeral port) for downloader tests: one request per
/// connection, "Connection: close", answers chosen by the test so it can cut, stall, ignore ranges or corrupt.
/// Every wait is tied to the server's lifetime, so disposing it ends all connections.
/// </summary>
internal sealed class LoopbackHttpServer : IAsyncDisposable
{
    private const int MaxHeadBytes = 16 * 1024;

    private readonly TcpListener listener = new(IPAddress.Loopback, 0);
    private readonly Func<RecordedRequest, Reply> answer;
    private readonly CancellationTokenSource stop = new();
    private readonly ConcurrentQueue<RecordedRequest> requests = new();
    private readonly ConcurrentBag<Task> connections = new();
    private readonly Task acceptLoop;

    public LoopbackHttpServer(Func<RecordedRequest, Reply> answer)
    {
        this.answer = answer;
        listener.Start();
        acceptLoop = AcceptLoopAsync();
    }

    public string Endpoint => $"http://127.0.0.1:{((IPEndPoint)listener.LocalEndpoint).Port}";

    public IReadOnlyList<RecordedRequest> Requests => requests.ToArray();

    private async Task AcceptLoopAsync()
    {
        while (!stop.IsCancellationRequested)
        {
            TcpClient client;
            try { client = await listener.AcceptTcpClientAsync(stop.Token); }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException) { return; }
            connections.Add(ServeAsync(client));
        }
    }

    private async Task ServeAsync(TcpClient client)
    {
        using (client)
        {
            try
            {
                var stream = client.GetStream();
                var request = await ReadRequestAsync(stream);
                requests.Enqueue(request);
                await WriteReplyAsync(stream, request, answer(request));
                client.Client.Shutdown(SocketShutdown.Send);   // a clean FIN: every byte sent is delivered
            }
            catch (Exception e) when (e is IOException or SocketException or OperationCanceledException) { }
        }
    }

    private async Task<RecordedRequest> ReadRequestAsync(NetworkStream stream)
    {
        var head = new List<byte>();
        var one = new byte[1];
        while (!EndsWithBlankLine(head))
        {
            if (head.Count >= MaxHeadBytes) throw new IOException("request head too long");
            if (await stream.ReadAsync(one, stop.Token) == 0) throw new IOException("client closed early");
            head.Add(one[0]);
        }
        var lines = Encoding.ASCII.GetString(head.ToArray()).Split("\r\n");
        var path = lines[0].Split(' ')[1];
        string? range = null, authorization = null;
        foreach (var line in lines.Skip(1))
        {
            if (line.StartsWith("Range:", StringComparison.OrdinalIgnoreCase)) range = line["Range:".Length..].Trim();
            if (line.StartsWith("Authorization:", StringComparison.OrdinalIgnoreCase)) authorization = line["Authorization:".Length..].Trim();
        }
        return new RecordedRequest(path, range, authorization);
    }

    private static bool EndsWithBlankLine(List<byte> head) =>
        head.Count >= 4 && head[^4] == '\r' && head[^3] == '\n' && head[^2] == '\r' && head[^1] == '\n';

    private async Task WriteReplyAsync(NetworkStream stream, RecordedRequest request, Reply reply)
    {
        switch (reply)
        {
            case Reply.NotFound:
                await WriteAsync(stream, Head("404 Not Found", ("Content-Length", "0")));
                break;
            case Reply.Status status:
                await WriteAsync(stream, status.RetryAfter is null
                    ? Head($"{status.Code} {status.Reason}", ("Content-Length", "0"))
                    : Head($"{status.Code} {status.Reason}", ("Retry-After", status.RetryAfter), ("Content-Length", "0")));
                break;
            case Reply.CutAfter cut:
                await WriteAsync(stream, Head("200 OK", ("Content-Length", cut.Body.Length.ToString())));
                await WriteAsync(stream, cut.Body.AsMemory(0, cut.Count));
                break;
            case Reply.StallAfter stall:
                await WriteAsync(stream, Head("200 OK", ("Content-Length", stall.Body.Length.ToString())));
                await WriteAsync(stream, stall.Body.AsMemory(0, stall.Count));
                await Task.Delay(Timeout.Infinite, stop.Token);
                break;
            case Reply.File file when file.HonourRange && request.Range is { } range:
                var from = long.Parse(range["bytes=".Length..].TrimEnd('-'));
                if (from >= file.Body.Length)
                {
                    await WriteAsync(stream, Head("416 Range Not Satisfiable",
                        ("Content-Range", $"bytes */{file.Body.Length}"), ("Content-Length", "0")));
                    break;
                }
                await WriteAsync(stream, Head("206 Partial Content",
                    ("Content-Range", $"bytes {from}-{file.Body.Length - 1}/{file.Body.Length}"),
                    ("Content-Length", (file.Body.Length - from).ToString())));
                await WriteAsync(stream, file.Body.AsMemory((int)from));
                break;
            case Reply.File file:
                // Without Content-Length the body ends when the connection closes (HTTP/1.1 allows it with close).
                await WriteAsync(stream, file.AnnounceLength
                    ? Head("200 OK", ("Content-Length", file.Body.Length.ToString()))
                    : Head("200 OK"));
                await WriteAsync(stream, file.Body);
                break;
        }
    }

    private static byte[] Head(string status, params (string Name, string Value)[] headers)
    {
        var text = new StringBuilder($"HTTP/1.1 {status}\r\nConnection: close\r\n");
        foreach (var (name, value) in headers) text.Append($"{name}: {value}\r\n");
        return Encoding.ASCII.GetBytes(text.Append("\r\n").ToString());
    }

    private Task WriteAsync(NetworkStream stream, ReadOnlyMemory<byte> bytes) => stream.WriteAsync(bytes, stop.Token).AsTask();

    public async ValueTask DisposeAsync()
    {
        stop.Cancel();
        listener.Stop();
        await acceptLoop;
        await Task.WhenAll(connections);
        stop.Dispose();
    }
}
