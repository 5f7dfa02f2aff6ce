using System.Diagnostics;
using System.Text.Json;
using ManagedClip.IO;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using OpenTelemetry.Metrics;

namespace ManagedClip.Cli;

/// <summary>How <c>managedclip serve</c> is set up (command-line options; tests build it directly).</summary>
internal sealed record ServerOptions
{
    /// <summary>Addresses to listen on, separated by ';' (port 0: any free port).</summary>
    public string Urls { get; init; } = ScoringServer.DefaultUrls;

    /// <summary>Largest accepted request body (HTTP 413 beyond it).</summary>
    public long MaxRequestBytes { get; init; } = ScoringServer.DefaultMaxRequestBytes;

    /// <summary>Requests admitted to the model queue at once (HTTP 503 with Retry-After beyond it).</summary>
    public int QueueCapacity { get; init; } = ModelWorkQueue.DefaultCapacity;

    /// <summary>Log every request at Information on standard error (the CLI: yes; in-process tests: no).</summary>
    public bool LogRequests { get; init; } = true;

    /// <summary>Send the server's first requests to itself before /readyz says ready (<see cref="ServerWarmUp"/>).</summary>
    public bool WarmUp { get; init; }

    /// <summary>Request bodies read or held at once (<see cref="RequestBodyGate"/>); 0: the model's running requests
    /// plus half the cores.</summary>
    public int BodySlots { get; init; }

    /// <summary>Longest wait for the next bytes of a request body being read; a client that stalls longer gets 408.</summary>
    public TimeSpan BodyReadTimeout { get; init; } = RequestBodyGate.DefaultReadTimeout;
}

/// <summary>
/// <c>managedclip serve</c>: one model behind an ASP.NET Core minimal API, as a service is run: liveness and
/// readiness checks, a request log line per request, Prometheus metrics through OpenTelemetry, an OpenAPI document,
/// and a web page. Model work goes through a bounded queue (<see cref="ModelWorkQueue"/>): one request at a time,
/// the rest waiting up to its capacity, and 503 with Retry-After beyond it. Routes:
/// <list type="bullet">
/// <item><c>GET /</c>: the web page (<see cref="WebPage"/>); <c>GET /healthz</c> live, <c>GET /readyz</c> model loaded;
/// <c>GET /metrics</c>; <c>GET /openapi/v1.json</c>.</item>
/// <item><c>POST /score</c> (the model card's schema), <c>/classify</c>, <c>/embed</c>, <c>/search</c>,
/// <c>/preprocess</c>: see ScoringServer.Routes.cs.</item>
/// </list>
/// </summary>
internal static partial class ScoringServer
{
    /// <summary>Default cap on a request body; a 224-px model needs far less than this per image.</summary>
    public const long DefaultMaxRequestBytes = 32L << 20;

    /// <summary>Where <c>serve</c> listens when neither --urls, --port nor ASPNETCORE_URLS says.</summary>
    public const string DefaultUrls = "http://127.0.0.1:8080";

    /// <summary>Form fields and files one multipart or URL-encoded request may hold in all.</summary>
    public const int MaxFormParts = 512;

    /// <summary>Builds a server for a model that is already loaded (tests; the old signature).</summary>
    public static WebApplication Build(ClipModel model, string urls, long maxRequestBytes, int queueCapacity = ModelWorkQueue.DefaultCapacity) =>
        Build(ServedModel.Ready(model), new ServerOptions { Urls = urls, MaxRequestBytes = maxRequestBytes, QueueCapacity = queueCapacity, LogRequests = false });

    public static WebApplication Build(ServedModel served, ServerOptions options)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls(options.Urls);
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.Limits.MaxRequestBodySize = options.MaxRequestBytes;
            // What Kestrel reads ahead of the app per connection (default 1 MB): a request waiting for a body slot
            // (RequestBodyGate) holds at most this much of its body in the process; the rest waits in the client.
            // 64 kB is the smallest that still fits Kestrel's request-header limit (32 kB).
            kestrel.Limits.MaxRequestBufferSize = 64 << 10;
            ConnectionClock.Use(kestrel);
        });
        builder.Services.Configure<FormOptions>(form =>
        {
            form.MultipartBodyLengthLimit = options.MaxRequestBytes;
            form.ValueCountLimit = MaxFormParts;
        });

        // One compact line per message on standard error (standard output carries only the JSON the CLI prints).
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(console =>
        {
            console.SingleLine = true;
            console.UseUtcTimestamp = true;
            console.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ ";
        });
        builder.Logging.AddFilter<Microsoft.Extensions.Logging.Console.ConsoleLoggerProvider>(null, LogLevel.Warning);
        builder.Logging.AddFilter<Microsoft.Extensions.Logging.Console.ConsoleLoggerProvider>(RequestLog.Category,
            options.LogRequests ? LogLevel.Information : LogLevel.Warning);
        builder.Services.Configure<Microsoft.Extensions.Logging.Console.ConsoleLoggerOptions>(console => console.LogToStandardErrorThreshold = LogLevel.Trace);

        const int ModelConcurrency = 1; // each model call already uses every core
        var bodies = new RequestBodyGate(options.BodySlots > 0 ? options.BodySlots : RequestBodyGate.DefaultSlots(ModelConcurrency), options.BodyReadTimeout);
        var queue = new ModelWorkQueue(ModelConcurrency, options.QueueCapacity, onIdle: bodies.Trim);
        // A model call keeps a pool thread busy decoding the next images; requests must not wait for the pool to grow.
        ThreadPool.GetMinThreads(out int workers, out int completion);
        ThreadPool.SetMinThreads(Math.Max(workers, Environment.ProcessorCount + 8), completion);
        builder.Services.AddSingleton(queue); // disposed with the app
        builder.Services.AddSingleton(bodies);
        builder.Services.AddSingleton(served);
        builder.Services.AddSingleton<ServerMetrics>();
        var warmUp = options.WarmUp ? new ServerWarmUp() : ServerWarmUp.None();
        builder.Services.AddSingleton(warmUp);
        if (served.Index is { } index) builder.Services.AddSingleton(index); // disposed with the app

        // /healthz runs no check (the process answers: it is live); /readyz runs the "ready" ones.
        builder.Services.AddHealthChecks().AddCheck("model", () => served.Current is not null
            ? warmUp.IsDone ? HealthCheckResult.Healthy() : HealthCheckResult.Unhealthy("warming")
            : served.Failure is { } failure ? HealthCheckResult.Unhealthy(failure) : HealthCheckResult.Unhealthy("loading"), tags: ["ready"]);

        builder.Services.AddOpenTelemetry().WithMetrics(metrics => metrics
            .AddAspNetCoreInstrumentation()
            .AddMeter(ServerMetrics.MeterName, ServerMetrics.LibraryMeterName)
            .AddPrometheusExporter());

        builder.Services.ConfigureHttpJsonOptions(json => json.SerializerOptions.TypeInfoResolverChain.Insert(0, CliJsonContext.Default));
        builder.Services.AddOpenApi(ServerApiDocs.Configure);

        var app = builder.Build();
        var metrics = app.Services.GetRequiredService<ServerMetrics>();
        RequestLog.Use(app, metrics);

        // Answered on the request thread, never queued behind model work or the model's load.
        app.MapHealthChecks("/healthz", new HealthCheckOptions
        {
            Predicate = _ => false,
            ResponseWriter = (context, _) =>
            {
                context.Response.Headers["Server-Timing"] = ConnectionClock.Describe(context);
                return WriteJsonAsync(context, JsonSerializer.SerializeToUtf8Bytes(HealthOf(served, queue), CliJsonContext.Readable.HealthReply));
            },
        }).WithMetadata(new ServerApiDocs.Reply(typeof(HealthReply), "application/json", "The process is up (it answers while the model loads and while a request runs)."));
        app.MapHealthChecks("/readyz", new HealthCheckOptions
        {
            Predicate = check => check.Tags.Contains("ready"),
            ResponseWriter = (context, _) => WriteJsonAsync(context, JsonSerializer.SerializeToUtf8Bytes(ReadyOf(served, warmUp), CliJsonContext.Readable.ReadyReply)),
        }).WithMetadata(new ServerApiDocs.Reply(typeof(ReadyReply), "application/json", "200 once the model is loaded and the server has warmed up; 503 while it loads or warms up, or after a failed load."));
        app.MapPrometheusScrapingEndpoint("/metrics");
        app.MapOpenApi("/openapi/{documentName}.json");

        MapModelRoutes(app, served, queue, bodies, metrics, options);
        WebPage.Map(app);
        // Anything else: a one-line JSON error that says where the routes are, not an empty 404.
        app.MapFallback("{*path}", context => Error(StatusCodes.Status404NotFound,
            $"no route {context.Request.Method} {UserText.Quote(context.Request.Path.Value ?? "", 120)}: the routes are listed in /openapi/v1.json")
            .ExecuteAsync(context));
        app.Lifetime.ApplicationStarted.Register(() => metrics.RecordLoad(served));
        if (options.WarmUp) app.Lifetime.ApplicationStarted.Register(() => warmUp.Start(app, served, options.MaxRequestBytes));
        return app;
    }

    private static HealthReply HealthOf(ServedModel served, ModelWorkQueue queue)
    {
        var model = served.Current;
        return new HealthReply("ok", model is not null, model?.Source, model?.EmbeddingSize,
            model is null ? null : CliApp.PrecisionName(model.Precision), Kernels.KernelPaths.Best.ToString(),
            queue.Admitted, queue.Capacity, served.Index?.Rows);
    }

    private static ReadyReply ReadyOf(ServedModel served, ServerWarmUp warmUp) => served.Current is { } model
        ? new ReadyReply(warmUp.IsDone ? "ready" : "warming", model.Source, null)
        : served.Failure is { } failure ? new ReadyReply("failed", null, failure) : new ReadyReply("loading", null, null);

    private static Task WriteJsonAsync(HttpContext context, byte[] json)
    {
        context.Response.ContentType = "application/json";
        context.Response.Headers.CacheControl = "no-store";
        return context.Response.Body.WriteAsync(json).AsTask();
    }

    /// <summary>GET /healthz: the process is live; whether the model is loaded and which, in which precision
    /// (fp32, bf16, int8; null while it loads), the kernel width this
    /// machine runs (Vector512, Vector256, …), the requests admitted to the model queue against its capacity, and
    /// the rows of the index /search ranks (null without one).</summary>
    internal sealed record HealthReply(string Status, bool Ready, string? Model, int? EmbeddingSize, string? Precision, string KernelPath,
        int Requests, int MaxRequests, long? IndexRows);

    /// <summary>GET /readyz: <c>ready</c> (200), <c>loading</c>, <c>warming</c> or <c>failed</c> with the reason (503).</summary>
    internal sealed record ReadyReply(string Status, string? Model, string? Error);

    /// <summary>
    /// Admits the request to the model queue (503 with Retry-After when it is full, before the body is read), runs
    /// the handler, and maps what went wrong to a status code and a one-line JSON error: 400 for a bad request,
    /// 408 for a body that stopped arriving, 413 over the size limit, 415 for the wrong content type, 503 when the model could not be loaded, 500 only for
    /// our own bugs. The server keeps serving.
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
        return await Answered(request, maxRequestBytes, () => handler(ticket));
    }

    /// <summary>The error mapping of <see cref="Guarded"/>, for routes that need no queue ticket.</summary>
    private static async Task<IResult> Answered(HttpRequest request, long maxRequestBytes, Func<Task<IResult>> handler)
    {
        try
        {
            return await handler();
        }
        catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            return Error(StatusCodes.Status413PayloadTooLarge, $"request body exceeds the {maxRequestBytes >> 20} MB limit");
        }
        catch (RequestTimeoutException e)
        {
            // The rest of the body may never come: answer and close, rather than wait to drain it.
            request.HttpContext.Response.Headers.Connection = "close";
            return Error(StatusCodes.Status408RequestTimeout, e.Message);
        }
        catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status408RequestTimeout)
        {
            // Kestrel's own minimum data rate (MinRequestBodyDataRate) tripped: the body trickled in too slowly.
            return Error(StatusCodes.Status408RequestTimeout, "the request body arrived too slowly (under 240 bytes/s)");
        }
        catch (InvalidDataException e) when (FormLimit(e, maxRequestBytes) is { } limit)
        {
            return Error(limit.Status, limit.Message);
        }
        catch (BadHttpRequestException e)
        {
            return Error(e.StatusCode, CliErrors.Describe(e));
        }
        catch (UnsupportedMediaException e)
        {
            return Error(StatusCodes.Status415UnsupportedMediaType, e.Message);
        }
        catch (NotFoundException e)
        {
            return Error(StatusCodes.Status404NotFound, e.Message);
        }
        catch (OperationCanceledException) when (request.HttpContext.RequestAborted.IsCancellationRequested)
        {
            return Error(499, "request aborted");
        }
        catch (ModelUnavailableException e)
        {
            return Error(StatusCodes.Status503ServiceUnavailable, e.Message);
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

    /// <summary>
    /// ASP.NET Core's form reader reports each of its limits as an <see cref="InvalidDataException"/> worded
    /// "… limit N exceeded."; say which limit in the client's terms (the body size is 413, the others 400).
    /// </summary>
    private static (int Status, string Message)? FormLimit(InvalidDataException e, long maxRequestBytes)
    {
        string m = e.Message;
        if (!m.Contains("limit", StringComparison.OrdinalIgnoreCase) || !m.Contains("exceeded", StringComparison.OrdinalIgnoreCase)) return null;
        if (m.Contains("count", StringComparison.OrdinalIgnoreCase))
            return (StatusCodes.Status400BadRequest, $"the form has more than {MaxFormParts} fields and files; send fewer per request");
        if (m.Contains("headers", StringComparison.OrdinalIgnoreCase))
            return (StatusCodes.Status400BadRequest, "a multipart section's headers are too many or too long");
        if (m.Contains("boundary", StringComparison.OrdinalIgnoreCase))
            return (StatusCodes.Status400BadRequest, "the multipart boundary is too long");
        if (m.Contains("key length", StringComparison.OrdinalIgnoreCase) || m.Contains("value length", StringComparison.OrdinalIgnoreCase))
            return (StatusCodes.Status400BadRequest, "a form field's name or value is too long");
        return (StatusCodes.Status413PayloadTooLarge, $"request body exceeds the {maxRequestBytes >> 20} MB limit");
    }

    private static IResult Error(int status, string message) =>
        Results.Json(new ErrorReply(message), CliJsonContext.Readable.ErrorReply, statusCode: status);

    internal sealed record ErrorReply(string Error);

    private static IResult JsonReply(Action<Utf8JsonWriter> write) => Results.Bytes(CliJson.ToUtf8(write), "application/json");
}

/// <summary>A route that has nothing to answer with (HTTP 404), e.g. /search on a server started without an index.</summary>
internal sealed class NotFoundException(string message) : Exception(message);
