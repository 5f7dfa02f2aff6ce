using System.Text.Json;
using ManagedClip.IO;
using Microsoft.AspNetCore.Http.Features;

namespace ManagedClip.Cli;

/// <summary>
/// <c>managedclip serve</c>: one loaded model behind an ASP.NET Core minimal API.
/// POST /score (the model card's schema), POST /classify (multipart: image file + labels), GET /healthz.
/// Model work goes through a bounded queue (<see cref="ModelWorkQueue"/>): one request at a time, the rest waiting
/// up to its capacity, and 503 with Retry-After beyond it.
/// </summary>
internal static class ScoringServer
{
    /// <summary>Default cap on a request body; a 224-px model needs far less than this per image.</summary>
    public const long DefaultMaxRequestBytes = 32L << 20;

    public static WebApplication Build(ClipModel model, string urls, long maxRequestBytes, int queueCapacity = ModelWorkQueue.DefaultCapacity)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls(urls);
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Limits.MaxRequestBodySize = maxRequestBytes);
        builder.Services.Configure<FormOptions>(form => form.MultipartBodyLengthLimit = maxRequestBytes);
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        var queue = new ModelWorkQueue(concurrency: 1, capacity: queueCapacity);
        // A model call keeps a pool thread busy decoding the next images; requests must not wait for the pool to grow.
        ThreadPool.GetMinThreads(out int workers, out int completion);
        ThreadPool.SetMinThreads(Math.Max(workers, Environment.ProcessorCount + 8), completion);
        builder.Services.AddSingleton(queue); // disposed with the app
        var app = builder.Build();

        // Answered on the request thread, never queued behind model work.
        app.MapGet("/healthz", () => Results.Json(
            new HealthReply("ok", model.Source, model.EmbeddingSize, Kernels.KernelPaths.Best.ToString(), queue.Admitted, queue.Capacity),
            CliJsonContext.Readable.HealthReply));

        app.MapPost("/score", (HttpRequest request) => Guarded(request, queue, maxRequestBytes, async ticket =>
        {
            if (request.HasFormContentType)
                throw new UnsupportedMediaException("send the model card's JSON request as application/json (for a file upload use POST /classify)");
            var bytes = await ReadBodyAsync(request);
            // Parsed on the model's turn, on its own short-lived thread: JsonDocument rents a buffer the size of the
            // body from the shared array pool, and a pool keeps what many threads return at once long after a burst.
            return await ticket.RunAsync(() =>
            {
                var rows = ScoringSchema.ParseRequestBody(bytes);
                var results = rows.Select(row => model.Classify([row.Image], row.Labels)[0]).ToList();
                return JsonReply(writer => ScoringSchema.WriteResponse(writer, results));
            }, request.HttpContext.RequestAborted);
        }));

        app.MapPost("/classify", (HttpRequest request) => Guarded(request, queue, maxRequestBytes, async ticket =>
        {
            if (!request.HasFormContentType)
                throw new UnsupportedMediaException("send multipart/form-data with an 'image' file and a 'labels' field");
            IFormCollection form;
            try
            {
                form = await request.ReadFormAsync(request.HttpContext.RequestAborted);
            }
            catch (InvalidDataException e) when (!IsFormLimit(e))
            {
                throw new RequestException("malformed multipart/form-data body");
            }
            var file = form.Files.GetFile("image") ?? throw new RequestException("missing the 'image' file field");
            string labelsText = form["labels"].ToString();
            var labels = ScoringSchema.SplitLabels(labelsText, "labels");
            string template = form.TryGetValue("template", out var t) && t.Count > 0 ? t.ToString() : ClipModel.DefaultTemplate;
            if (!template.Contains("{}")) throw new RequestException("template must contain {} where the label goes");
            var bytes = new byte[file.Length];
            await using (var stream = file.OpenReadStream()) await stream.ReadExactlyAsync(bytes, request.HttpContext.RequestAborted);
            string name = string.IsNullOrEmpty(file.FileName) ? "image" : file.FileName;
            var image = ImageInput.FromBytes(bytes, UserText.Quote(name, 120));
            var result = await ticket.RunAsync(() => model.Classify([image], labels, template)[0], request.HttpContext.RequestAborted);
            return JsonReply(writer => ClassifyOutput.WriteOne(writer, name, result));
        }));

        return app;
    }

    /// <summary>The whole request body; Kestrel's <c>MaxRequestBodySize</c> stops it at the limit (413).</summary>
    private static async Task<byte[]> ReadBodyAsync(HttpRequest request)
    {
        var buffer = new MemoryStream();
        await request.Body.CopyToAsync(buffer, request.HttpContext.RequestAborted);
        return buffer.ToArray();
    }

    /// <summary>GET /healthz: the model served, the kernel width this machine runs (Vector512, Vector256, …), and
    /// the requests admitted to the model queue against its capacity.</summary>
    internal sealed record HealthReply(string Status, string Model, int EmbeddingSize, string KernelPath, int Requests, int MaxRequests);

    /// <summary>
    /// Admits the request to the model queue (503 with Retry-After when it is full, before the body is read), runs
    /// the handler, and maps what went wrong to a status code and a one-line JSON error: 400 for a bad request,
    /// 413 over the size limit, 415 for the wrong content type, 500 only for our own bugs. The server keeps serving.
    /// </summary>
    private static async Task<IResult> Guarded(HttpRequest request, ModelWorkQueue queue, long maxRequestBytes,
        Func<ModelWorkQueue.Ticket, Task<IResult>> handler)
    {
        using var ticket = queue.TryAdmit(out int retryAfter);
        if (ticket is null)
        {
            request.HttpContext.Response.Headers.RetryAfter = retryAfter.ToString(System.Globalization.CultureInfo.InvariantCulture);
            return Error(StatusCodes.Status503ServiceUnavailable,
                $"the server is busy: {queue.Capacity} requests are already queued; retry in {retryAfter} s");
        }
        try
        {
            return await handler(ticket);
        }
        catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            return Error(StatusCodes.Status413PayloadTooLarge, $"request body exceeds the {maxRequestBytes >> 20} MB limit");
        }
        catch (InvalidDataException e) when (e.Message.Length > 0 && IsFormLimit(e))
        {
            return Error(StatusCodes.Status413PayloadTooLarge, $"request body exceeds the {maxRequestBytes >> 20} MB limit");
        }
        catch (BadHttpRequestException e)
        {
            return Error(e.StatusCode, CliErrors.Describe(e));
        }
        catch (UnsupportedMediaException e)
        {
            return Error(StatusCodes.Status415UnsupportedMediaType, e.Message);
        }
        catch (OperationCanceledException) when (request.HttpContext.RequestAborted.IsCancellationRequested)
        {
            return Error(499, "request aborted");
        }
        catch (NonFiniteOutputException e)
        {
            // The served weights are broken: the server's problem, said plainly (not a bug in the code either).
            return Error(StatusCodes.Status500InternalServerError, e.Message);
        }
        catch (Exception e) when (CliErrors.IsUserError(e))
        {
            // A bad image, text or request: the client's problem, not the server's.
            return Error(StatusCodes.Status400BadRequest, CliErrors.Describe(e));
        }
        catch (Exception e)
        {
            return Error(StatusCodes.Status500InternalServerError, $"internal error ({e.GetType().Name}): {UserText.OneLine(e.Message)}");
        }
    }

    private static bool IsFormLimit(InvalidDataException e) =>
        e.Message.Contains("limit", StringComparison.OrdinalIgnoreCase) && e.Message.Contains("exceeded", StringComparison.OrdinalIgnoreCase);

    private static IResult Error(int status, string message) =>
        Results.Json(new ErrorReply(message), CliJsonContext.Readable.ErrorReply, statusCode: status);

    internal sealed record ErrorReply(string Error);

    private static IResult JsonReply(Action<Utf8JsonWriter> write) => Results.Bytes(CliJson.ToUtf8(write), "application/json");
}
