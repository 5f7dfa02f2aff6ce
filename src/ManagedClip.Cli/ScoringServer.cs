using System.Text.Json;
using Microsoft.AspNetCore.Http.Features;

namespace ManagedClip.Cli;

/// <summary>
/// <c>managedclip serve</c>: one loaded model behind an ASP.NET Core minimal API.
/// POST /score (the model card's schema), POST /classify (multipart: image file + labels), GET /healthz.
/// </summary>
internal static class ScoringServer
{
    /// <summary>Default cap on a request body; a 224-px model needs far less than this per image.</summary>
    public const long DefaultMaxRequestBytes = 32L << 20;

    public static WebApplication Build(ClipModel model, string urls, long maxRequestBytes)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls(urls);
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Limits.MaxRequestBodySize = maxRequestBytes);
        builder.Services.Configure<FormOptions>(form => form.MultipartBodyLengthLimit = maxRequestBytes);
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        var app = builder.Build();

        app.MapGet("/healthz", () => Results.Json(new HealthReply("ok", model.Source, model.EmbeddingSize, Kernels.KernelPaths.Best.ToString()), CliJsonContext.Readable.HealthReply));

        app.MapPost("/score", (HttpRequest request) => Guarded(maxRequestBytes, async () =>
        {
            JsonDocument body;
            try
            {
                body = await JsonDocument.ParseAsync(request.Body, cancellationToken: request.HttpContext.RequestAborted);
            }
            catch (JsonException e)
            {
                throw new RequestException($"malformed JSON: {e.Message}");
            }
            using (body)
            {
                var rows = ScoringSchema.ParseRequest(body.RootElement, allowFilePaths: false);
                var results = rows.Select(row => model.Classify([row.Image], row.Labels)[0]).ToList();
                return JsonReply(writer => ScoringSchema.WriteResponse(writer, results));
            }
        }));

        app.MapPost("/classify", (HttpRequest request) => Guarded(maxRequestBytes, async () =>
        {
            if (!request.HasFormContentType)
                throw new RequestException("send multipart/form-data with an 'image' file and a 'labels' field");
            var form = await request.ReadFormAsync(request.HttpContext.RequestAborted);
            var file = form.Files.GetFile("image") ?? throw new RequestException("missing the 'image' file field");
            string labelsText = form["labels"].ToString();
            var labels = ScoringSchema.SplitLabels(labelsText, "labels");
            string template = form.TryGetValue("template", out var t) && t.Count > 0 ? t.ToString() : ClipModel.DefaultTemplate;
            using var stream = new MemoryStream();
            await file.CopyToAsync(stream, request.HttpContext.RequestAborted);
            var image = ImageInput.FromBytes(stream.ToArray(), file.FileName);
            var result = model.Classify([image], labels, template)[0];
            return JsonReply(writer => ClassifyOutput.WriteOne(writer, file.FileName, result));
        }));

        return app;
    }

    /// <summary>GET /healthz: the model served and the kernel width this machine runs (Vector512, Vector256, …).</summary>
    internal sealed record HealthReply(string Status, string Model, int EmbeddingSize, string KernelPath);

    /// <summary>Maps what went wrong to a status code and a one-line JSON error; the server keeps serving.</summary>
    private static async Task<IResult> Guarded(long maxRequestBytes, Func<Task<IResult>> handler)
    {
        try
        {
            return await handler();
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
            return Error(e.StatusCode, e.Message);
        }
        catch (RequestException e)
        {
            return Error(StatusCodes.Status400BadRequest, e.Message);
        }
        catch (Exception e) when (CliErrors.IsUserError(e))
        {
            // A bad image or text in the request: the client's problem, not the server's.
            return Error(StatusCodes.Status400BadRequest, e.Message);
        }
        catch (OperationCanceledException)
        {
            return Error(499, "request aborted");
        }
        catch (Exception e)
        {
            return Error(StatusCodes.Status500InternalServerError, $"internal error: {e.GetType().Name}: {e.Message}");
        }
    }

    private static bool IsFormLimit(InvalidDataException e) =>
        e.Message.Contains("limit", StringComparison.OrdinalIgnoreCase) && e.Message.Contains("exceeded", StringComparison.OrdinalIgnoreCase);

    private static IResult Error(int status, string message) =>
        Results.Json(new ErrorReply(message), CliJsonContext.Readable.ErrorReply, statusCode: status);

    internal sealed record ErrorReply(string Error);

    private static IResult JsonReply(Action<Utf8JsonWriter> write) => Results.Bytes(CliJson.ToUtf8(write), "application/json");
}
