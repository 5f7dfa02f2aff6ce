using System.Text.Json.Serialization;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.OpenApi;

namespace ManagedClip.Cli;

// The shapes of the server's requests and replies, for the OpenAPI document. The handlers write their JSON with
// Utf8JsonWriter (as the CLI does); these records state the same contracts as types, and ServerApiTests checks
// each documented reply against a real one.

/// <summary>POST /score: the model card's request.</summary>
internal sealed record ScoreRequest([property: JsonPropertyName("input_data")] ScoreInputData InputData);

/// <summary>Columns name "image" and "text"; each row holds an image (base64 or data URI) and "l1, l2, l3".</summary>
internal sealed record ScoreInputData(string[] Columns, int[]? Index, string[][] Data);

/// <summary>One row of /score's reply: probabilities in the order of the labels.</summary>
internal sealed record ScoreRow(float[] Probs, string[] Labels);

/// <summary>One image of /classify's reply (several images: an array of these).</summary>
internal sealed record ClassifyReply(string Image, string[] Labels, float[] Probs);

/// <summary>
/// An image of a several-image /classify that could not be classified, in its place in the array: its name and one
/// line saying what is wrong with it (the words the CLI's classify prints for that file).
/// </summary>
internal sealed record ItemError(string Image, string Error);

/// <summary>An image of a several-input /embed that could not be embedded: its name, kind "image", the one-line error.</summary>
internal sealed record EmbedError(string Input, string Kind, string Error);

/// <summary>A row of a several-row /score whose image could not be read or decoded: its labels and the one-line error (naming the row).</summary>
internal sealed record ScoreError(string[] Labels, string Error);

/// <summary>POST /embed as JSON.</summary>
internal sealed record EmbedRequest(string[]? Texts, string[]? Images);

/// <summary>One embedding: the input (file name, images[i], or the text), its kind ("image" or "text"), the unit vector.</summary>
internal sealed record EmbedRow(string Input, string Kind, float[] Embedding);

/// <summary>POST /search as JSON.</summary>
internal sealed record SearchRequest(string Text, int? K);

/// <summary>One hit of /search: the file as indexed, its path relative to the indexed folder, the cosine similarity.</summary>
internal sealed record SearchHitReply(string Path, [property: JsonPropertyName("relative_path")] string RelativePath, float Score);

/// <summary>Endpoint metadata the OpenAPI transformers below turn into the document.</summary>
internal static class ServerApiDocs
{
    /// <summary>A form field of a multipart/form-data (or URL-encoded) request body.</summary>
    public sealed record FormField(string Name, string Description, bool IsFile = false, bool Repeated = false, bool Required = false);

    /// <summary>The endpoint takes a form with these fields.</summary>
    public sealed record Form(params FormField[] Fields);

    /// <summary>
    /// The endpoint takes this JSON body. (Not <c>.Accepts&lt;T&gt;()</c>: routing would then turn other content
    /// types away with an empty 415 before the handler could say what to send.)
    /// </summary>
    public sealed record JsonBody(Type Type);

    /// <summary>A reply the endpoint gives: its schema type (null: bytes), content type, status.</summary>
    public sealed record Reply(Type? Type, string ContentType, string Description, int Status = StatusCodes.Status200OK);

    /// <summary>
    /// The 200 reply of a route that takes several items: an array of <paramref name="Item"/> or, for an item that
    /// failed alone, <paramref name="Error"/>, each in its place (oneOf); with <paramref name="Single"/>, a request of
    /// one item is answered by that object alone instead of an array.
    /// </summary>
    public sealed record Items(Type? Single, Type Item, Type Error, string Description);

    /// <summary>The errors every model route may answer with, each a one-line {"error"}.</summary>
    public sealed record Errors(params (int Status, string Description)[] Statuses);

    public static readonly Errors ModelErrors = new(
        (StatusCodes.Status400BadRequest, "A bad request: malformed JSON or form, a bad image, empty labels, too many inputs. {\"error\": one line}."),
        (StatusCodes.Status408RequestTimeout, "The body stopped arriving (no data for the read deadline, 10 s by default); the connection is closed."),
        (StatusCodes.Status413PayloadTooLarge, "The body exceeds --max-request-mb."),
        (StatusCodes.Status415UnsupportedMediaType, "The wrong content type for this route."),
        (StatusCodes.Status503ServiceUnavailable, "The work queue is full (Retry-After says when to retry), or the model failed to load."));

    public static void Configure(OpenApiOptions options)
    {
        options.AddDocumentTransformer((document, context, cancel) =>
        {
            document.Info = new OpenApiInfo
            {
                Title = "managedclip serve",
                Version = "v1",
                Description = "BiomedCLIP (ViT-B/16 + PubMedBERT) zero-shot classification, embeddings and index search, in pure managed C#.",
            };
            return Task.CompletedTask;
        });
        options.AddDocumentTransformer(AddNonApiRoutesAsync);
        options.AddOperationTransformer(async (operation, context, cancel) =>
        {
            var metadata = context.Description.ActionDescriptor.EndpointMetadata;
            foreach (var item in metadata)
            {
                switch (item)
                {
                    case JsonBody body:
                        operation.RequestBody ??= new OpenApiRequestBody { Content = new Dictionary<string, OpenApiMediaType>() };
                        operation.RequestBody.Content!["application/json"] = new OpenApiMediaType { Schema = await context.GetOrCreateSchemaAsync(body.Type, null, cancel) };
                        break;
                    case Form form:
                        operation.RequestBody ??= new OpenApiRequestBody { Content = new Dictionary<string, OpenApiMediaType>() };
                        var schema = FormSchema(form);
                        operation.RequestBody.Content!["multipart/form-data"] = new OpenApiMediaType { Schema = schema };
                        break;
                    case Reply reply:
                        operation.Responses ??= new OpenApiResponses();
                        operation.Responses[reply.Status.ToString(System.Globalization.CultureInfo.InvariantCulture)] =
                            await ResponseAsync(reply, type => context.GetOrCreateSchemaAsync(type, null, cancel));
                        break;
                    case Items items:
                        operation.Responses ??= new OpenApiResponses();
                        operation.Responses["200"] = await ItemsResponseAsync(items, context.Document!, type => context.GetOrCreateSchemaAsync(type, null, cancel));
                        break;
                    case Errors errors:
                        operation.Responses ??= new OpenApiResponses();
                        var error = await context.GetOrCreateSchemaAsync(typeof(ScoringServer.ErrorReply), null, cancel);
                        foreach (var (status, description) in errors.Statuses)
                            operation.Responses[status.ToString(System.Globalization.CultureInfo.InvariantCulture)] = new OpenApiResponse
                            {
                                Description = description,
                                Content = new Dictionary<string, OpenApiMediaType> { ["application/json"] = new OpenApiMediaType { Schema = error } },
                            };
                        break;
                }
            }
        });
    }

    private static OpenApiSchema FormSchema(Form form)
    {
        var properties = new Dictionary<string, IOpenApiSchema>();
        var required = new HashSet<string>();
        foreach (var field in form.Fields)
        {
            var one = new OpenApiSchema { Type = JsonSchemaType.String, Format = field.IsFile ? "binary" : null };
            properties[field.Name] = field.Repeated
                ? new OpenApiSchema { Type = JsonSchemaType.Array, Items = one, Description = field.Description }
                : new OpenApiSchema { Type = JsonSchemaType.String, Format = one.Format, Description = field.Description };
            if (field.Required) required.Add(field.Name);
        }
        return new OpenApiSchema { Type = JsonSchemaType.Object, Properties = properties, Required = required };
    }

    private static async Task<OpenApiResponse> ResponseAsync(Reply reply, Func<Type, Task<OpenApiSchema>> schemaOf) => new()
    {
        Description = reply.Description,
        Content = new Dictionary<string, OpenApiMediaType>
        {
            [reply.ContentType] = new OpenApiMediaType
            {
                Schema = reply.Type is { } type ? await schemaOf(type) : new OpenApiSchema { Type = JsonSchemaType.String, Format = "binary" },
            },
        },
    };

    private static async Task<OpenApiResponse> ItemsResponseAsync(Items items, OpenApiDocument document, Func<Type, Task<OpenApiSchema>> schemaOf)
    {
        // Each shape once under components/schemas (named after its record), referenced from the reply.
        async Task<IOpenApiSchema> Named(Type type)
        {
            if (document.Components?.Schemas?.ContainsKey(type.Name) != true) document.AddComponent(type.Name, await schemaOf(type));
            return new OpenApiSchemaReference(type.Name, document);
        }
        var array = new OpenApiSchema
        {
            Type = JsonSchemaType.Array,
            Items = new OpenApiSchema { OneOf = [await Named(items.Item), await Named(items.Error)] },
        };
        IOpenApiSchema schema = items.Single is { } single ? new OpenApiSchema { OneOf = [await Named(single), array] } : array;
        return new OpenApiResponse
        {
            Description = items.Description,
            Content = new Dictionary<string, OpenApiMediaType> { ["application/json"] = new OpenApiMediaType { Schema = schema } },
        };
    }

    /// <summary>
    /// The routes that are not minimal-API handlers (health checks, the Prometheus scrape, the web page) are not
    /// seen by the API explorer; they are described here so the document lists every route.
    /// </summary>
    private static async Task AddNonApiRoutesAsync(OpenApiDocument document, OpenApiDocumentTransformerContext context, CancellationToken cancel)
    {
        document.Paths ??= new OpenApiPaths();
        async Task Add(string path, string summary, params Reply[] replies)
        {
            var operation = new OpenApiOperation { Summary = summary, Responses = new OpenApiResponses() };
            foreach (var reply in replies)
                operation.Responses[reply.Status.ToString(System.Globalization.CultureInfo.InvariantCulture)] =
                    await ResponseAsync(reply, type => context.GetOrCreateSchemaAsync(type, null, cancel));
            document.Paths[path] = new OpenApiPathItem { Operations = new Dictionary<HttpMethod, OpenApiOperation> { [HttpMethod.Get] = operation } };
        }
        await Add("/healthz", "Liveness: answers while the model loads and while a request runs",
            new Reply(typeof(ScoringServer.HealthReply), "application/json", "The process is live; whether the model is loaded, the queue, the index size."));
        await Add("/readyz", "Readiness: 200 once the model is loaded",
            new Reply(typeof(ScoringServer.ReadyReply), "application/json", "The model is loaded: {\"status\": \"ready\", \"model\"}."),
            new Reply(typeof(ScoringServer.ReadyReply), "application/json", "Still loading ({\"status\": \"loading\"}) or the load failed ({\"status\": \"failed\", \"error\"}).", StatusCodes.Status503ServiceUnavailable));
        await Add("/metrics", "Metrics in the Prometheus text format (OpenTelemetry): http.server.*, managedclip_server_*, and the library's ManagedClip meter",
            new Reply(null, "text/plain", "Prometheus exposition format 0.0.4."));
        await Add("/", "The web page: classify an uploaded image, see the preprocessed image, search the index",
            new Reply(null, "text/html", "The page (HTML; its script and style sheet are /app.js and /app.css)."));
    }
}
