using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.Json;
using ManagedClip.Imaging;
using ManagedClip.IO;

namespace ManagedClip.Cli;

// The model routes. Each admits itself to the work queue first (503 when full), reads and checks its input, waits
// for the model (a request sent while it loads is answered once it is ready), runs the model on the queue's turn,
// and answers JSON written as the CLI writes it (ReadableJsonEncoder, shortest round-trip floats).
internal static partial class ScoringServer
{
    /// <summary>Images one /classify, /embed request may carry.</summary>
    public const int MaxImagesPerRequest = 64;

    /// <summary>Texts one /embed request may carry (as many as /score's rows).</summary>
    public const int MaxTextsPerRequest = ScoringSchema.MaxRows;

    /// <summary>
    /// Characters one text may have. The text tower reads at most 256 tokens (about 1,500 characters of English);
    /// the rest is cut off anyway, so a longer text is refused rather than cleaned and tokenised for nothing.
    /// </summary>
    public const int MaxTextCharacters = 20_000;

    /// <summary>Largest k for /search.</summary>
    public const int MaxSearchHits = 1000;

    private static void MapModelRoutes(WebApplication app, ServedModel served, ModelWorkQueue queue, RequestBodyGate bodies, ServerMetrics metrics, ServerOptions options)
    {
        long max = options.MaxRequestBytes;

        // Runs work on the model's turn; the one place the server's model calls are metered (ServerMetrics.ModelWork:
        // the server's meter and the library's "ManagedClip" meter), with what the call did read from its result.
        async Task<T> RunModel<T>(HttpContext context, ModelWorkQueue.Ticket ticket, string route, string? input,
            Func<ClipModel, T> work, Func<T, ServerMetrics.Work> counted)
        {
            var model = await served.WaitAsync(context.RequestAborted);
            return await ticket.RunAsync(() => metrics.ModelWork(route, input, () => work(model), counted), context.RequestAborted);
        }

        app.MapPost("/score", (HttpRequest request) => Guarded(request, queue, max, async ticket =>
        {
            if (request.HasFormContentType)
                throw new UnsupportedMediaException("send the model card's JSON request as application/json (for a file upload use POST /classify)");
            using var body = await ReadBodyAsync(request, bodies);
            // Parsed on the model's turn, on its own short-lived thread: JsonDocument rents a buffer the size of the
            // body from the shared array pool, and a pool keeps what many threads return at once long after a burst.
            var results = await RunModel(request.HttpContext, ticket, "/score", "image", model =>
            {
                List<ScoringRow> rows;
                using (body) rows = ScoringSchema.ParseRequestBody(body.Bytes); // the buffer goes back once parsed
                // One row: its image's error is the request's (400), as before; several: each row alone.
                List<(ZeroShotResult? Result, string? Error)> answered = rows.Count == 1
                    ? [(model.Classify([rows[0].Image], rows[0].Labels)[0], null)]
                    : rows.Select(row => model.ClassifyEach([row.Image], row.Labels, ClipModel.DefaultTemplate, request.HttpContext.RequestAborted)[0]).ToList();
                RequestLog.Note(request.HttpContext, $"rows={rows.Count}{FailedNote(answered.Count(a => a.Error is not null))}");
                return (Rows: rows, Answered: answered);
            }, done => new ServerMetrics.Work(done.Answered.Count(a => a.Error is null), done.Rows.Sum(r => r.Labels.Length),
                done.Answered.Count(a => a.Error is not null)));
            return JsonReply(writer => ScoringSchema.WriteResponse(writer, results.Rows, results.Answered));
        }))
        .WithSummary("Zero-shot classification in the model card's schema")
        .WithDescription("The BiomedCLIP model card's real-time inference request: each row an image (base64 or data URI; the server reads no file paths) and comma-separated labels. Answers one {probs, labels} object per row, labels in the order given. With several rows, a row whose image cannot be read or decoded is answered {\"labels\", \"error\"} in its place and the others are scored (200); with one row its error is the request's (400).")
        .WithMetadata(new ServerApiDocs.JsonBody(typeof(ScoreRequest)))
        .WithMetadata(new ServerApiDocs.Items(null, typeof(ScoreRow), typeof(ScoreError),
            "One object per row, in order: {probs, labels}, or {labels, error} for a row whose image failed (several rows only)."))
        .WithMetadata(ServerApiDocs.ModelErrors);

        app.MapPost("/classify", (HttpRequest request) => Guarded(request, queue, max, async ticket =>
        {
            var form = await ReadFormAsync(request, bodies, "an 'image' file (one or more) and a 'labels' field");
            var images = await ReadImagesAsync(form, request.HttpContext.RequestAborted);
            if (images.Count == 0) throw new RequestException("missing the 'image' file field");
            var labels = ScoringSchema.SplitLabels(form["labels"].ToString(), "labels");
            string template = form.TryGetValue("template", out var t) && t.Count > 0 ? t.ToString() : ClipModel.DefaultTemplate;
            if (!template.Contains("{}")) throw new RequestException("template must contain {} where the label goes");
            // One image: one object, and its error is the request's (400), as before several were accepted; several:
            // an array in upload order, each image its result or its own error, the CLI's words for it.
            if (images.Count == 1)
            {
                RequestLog.Note(request.HttpContext, $"images=1 labels={labels.Length}");
                var result = await RunModel(request.HttpContext, ticket, "/classify", "image",
                    model => model.Classify([images[0].Image], labels, template)[0], _ => new ServerMetrics.Work(1, labels.Length));
                return JsonReply(writer => ClassifyOutput.WriteOne(writer, images[0].Name, result));
            }
            var results = await RunModel(request.HttpContext, ticket, "/classify", "image",
                model => model.ClassifyEach(images.Select(i => i.Image).ToList(), labels, template, request.HttpContext.RequestAborted),
                done => new ServerMetrics.Work(done.Count(r => r.Error is null), labels.Length, done.Count(r => r.Error is not null)));
            RequestLog.Note(request.HttpContext, $"images={images.Count} labels={labels.Length}{FailedNote(results.Count(r => r.Error is not null))}");
            return JsonReply(writer =>
            {
                writer.WriteStartArray();
                for (int i = 0; i < images.Count; i++)
                {
                    if (results[i].Result is { } result) ClassifyOutput.WriteOne(writer, images[i].Name, result);
                    else WriteItemError(writer, "image", images[i].Name, results[i].Error!);
                }
                writer.WriteEndArray();
            });
        }))
        .WithSummary("Zero-shot classification of uploaded images")
        .WithDescription("multipart/form-data: one or more 'image' files (PNG, JPEG, DICOM, BMP, GIF, TIFF, WebP, ...), 'labels' (comma-separated) and optionally 'template' (default \"this is a photo of {}\"). One image: one {image, labels, probs} object, or its error as a 400. Several: an array in upload order, each element {image, labels, probs} or {image, error} for an image that cannot be read or decoded (the others are classified; 200).")
        .WithMetadata(new ServerApiDocs.Form(
            new("image", "Image files, in the order they are answered.", IsFile: true, Repeated: true, Required: true),
            new("labels", "Candidate labels, comma-separated.", Required: true),
            new("template", "Prompt template; {} is replaced by each label.")))
        .WithMetadata(new ServerApiDocs.Items(typeof(ClassifyReply), typeof(ClassifyReply), typeof(ItemError),
            "One image: {image, labels, probs}. Several: an array in upload order, each {image, labels, probs} or {image, error}."))
        .WithMetadata(ServerApiDocs.ModelErrors);

        app.MapPost("/embed", (HttpRequest request) => Guarded(request, queue, max, async ticket =>
        {
            List<(ImageInput Image, string Name)> images;
            List<string> texts;
            if (request.HasFormContentType)
            {
                var form = await ReadFormAsync(request, bodies, "'image' files and/or 'text' fields");
                images = await ReadImagesAsync(form, request.HttpContext.RequestAborted);
                texts = form.TryGetValue("text", out var values) ? values.Select(v => v ?? "").ToList() : [];
            }
            else if (IsJson(request))
            {
                using var body = await ReadBodyAsync(request, bodies);
                (images, texts) = ParseEmbedJson(body.Bytes);
            }
            else
                throw new UnsupportedMediaException("send multipart/form-data ('image' files, 'text' fields) or application/json ({\"texts\": [...], \"images\": [base64, ...]})");
            if (images.Count == 0 && texts.Count == 0) throw new RequestException("nothing to embed: send at least one image or text");
            if (texts.Count > MaxTextsPerRequest) throw new RequestException($"{texts.Count} texts; at most {MaxTextsPerRequest} per request");
            for (int i = 0; i < texts.Count; i++) CheckText(texts[i], $"text {i + 1}");
            // One input: its error is the request's (400), as before; several: each image its embedding or its own
            // error (texts do not fail alone: each was checked with the request above).
            bool eachAlone = images.Count + texts.Count > 1;
            var (imageRows, textRows) = await RunModel(request.HttpContext, ticket, "/embed", images.Count > 0 ? "image" : "text", model =>
            {
                var inputs = images.Select(i => i.Image).ToList();
                (float[]? Embedding, string? Error)[] imageRows = inputs.Count == 0 ? []
                    : eachAlone ? model.EmbedImageStream(inputs, normalize: true, request.HttpContext.RequestAborted).Select(r => (r.Embedding, r.Error)).ToArray()
                    : [(model.EmbedImages(inputs)[0], null)];
                return (Images: imageRows, Texts: texts.Count > 0 ? model.EmbedTexts(texts) : []);
            }, done => new ServerMetrics.Work(done.Images.Count(r => r.Error is null), texts.Count, done.Images.Count(r => r.Error is not null)));
            RequestLog.Note(request.HttpContext, $"images={images.Count} texts={texts.Count}{FailedNote(imageRows.Count(r => r.Error is not null))}");
            return JsonReply(writer =>
            {
                writer.WriteStartArray();
                for (int i = 0; i < images.Count; i++)
                {
                    if (imageRows[i].Embedding is { } embedding) WriteEmbedding(writer, images[i].Name, "image", embedding);
                    else WriteItemError(writer, "input", images[i].Name, imageRows[i].Error!, kind: "image");
                }
                for (int i = 0; i < texts.Count; i++) WriteEmbedding(writer, texts[i], "text", textRows[i]);
                writer.WriteEndArray();
            });
        }))
        .WithSummary("Image and text embeddings")
        .WithDescription("L2-normalised embeddings in the shared image-text space (cosine = dot product): images first, in upload order, then texts in the order given. multipart/form-data ('image' files, 'text' fields) or application/json ({\"images\": [base64 or data URI, ...], \"texts\": [...]}). With several inputs, an image that cannot be read or decoded is answered {input, kind, error} in its place and the others are embedded (200); a request of one image answers its error as a 400.")
        .WithMetadata(new ServerApiDocs.JsonBody(typeof(EmbedRequest)))
        .WithMetadata(new ServerApiDocs.Form(
            new("image", "Image files.", IsFile: true, Repeated: true),
            new("text", "Texts, one per field.", Repeated: true)))
        .WithMetadata(new ServerApiDocs.Items(null, typeof(EmbedRow), typeof(EmbedError),
            "Images first in upload order, then texts: each {input, kind, embedding}, or {input, kind: \"image\", error} for an image that failed (several inputs only)."))
        .WithMetadata(ServerApiDocs.ModelErrors);

        app.MapPost("/search", (HttpRequest request) => Guarded(request, queue, max, async ticket =>
        {
            var index = served.Index ?? throw new NotFoundException("no index is loaded: start the server with --index DIR (an index made by 'managedclip index')");
            string text;
            int k = 10;
            if (request.HasFormContentType)
            {
                var form = await ReadFormAsync(request, bodies, "a 'text' field and optionally 'k'");
                text = form["text"].ToString();
                if (form.TryGetValue("k", out var kText) && kText.Count > 0 && !int.TryParse(kText.ToString(), out k))
                    throw new RequestException("k must be a whole number");
            }
            else if (IsJson(request))
            {
                using var body = await ReadBodyAsync(request, bodies);
                (text, k) = ParseSearchJson(body.Bytes);
            }
            else
                throw new UnsupportedMediaException("send application/json ({\"text\": \"...\", \"k\": 10}) or a form with 'text' and 'k'");
            if (string.IsNullOrWhiteSpace(text)) throw new RequestException("text is empty: give the words to search the images for");
            CheckText(text, "text");
            if (k < 1 || k > MaxSearchHits) throw new RequestException($"k must be between 1 and {MaxSearchHits}");
            RequestLog.Note(request.HttpContext, $"k={k} text={RequestLog.Prefix(text)}");
            var hits = await RunModel(request.HttpContext, ticket, "/search", "text",
                model => index.Search(model.EmbedText(text), k, request.HttpContext.RequestAborted), _ => new ServerMetrics.Work(0, 1));
            return JsonReply(writer => CliApp.WriteSearchHits(writer, hits));
        }))
        .WithSummary("Text-to-image search in the loaded index")
        .WithDescription("The k images of the index (serve --index DIR) closest to the text, best first; score is the cosine similarity. 404 when the server has no index.")
        .WithMetadata(new ServerApiDocs.JsonBody(typeof(SearchRequest)))
        .WithMetadata(new ServerApiDocs.Form(
            new("text", "The words to search for.", Required: true),
            new("k", "Number of hits (default 10).")))
        .Produces<SearchHitReply[]>(StatusCodes.Status200OK, "application/json")
        .WithMetadata(ServerApiDocs.ModelErrors, new ServerApiDocs.Reply(typeof(ErrorReply), "application/json", "No index is loaded.", StatusCodes.Status404NotFound));

        app.MapPost("/preprocess", (HttpRequest request) => Guarded(request, queue, max, async ticket =>
        {
            var form = await ReadFormAsync(request, bodies, "one 'image' file");
            var images = await ReadImagesAsync(form, request.HttpContext.RequestAborted);
            if (images.Count != 1) throw new RequestException(images.Count == 0 ? "missing the 'image' file field" : "send one 'image' file");
            var png = await RunModel(request.HttpContext, ticket, "/preprocess", null, model =>
            {
                var rgb = model.PreprocessToRgb(images[0].Image);
                var buffer = new MemoryStream();
                PngWriter.WriteRgb(buffer, rgb, model.ImageSize, model.ImageSize);
                return buffer.ToArray();
            }, _ => new ServerMetrics.Work(0, 0));
            return Results.Bytes(png, "image/png");
        }))
        .WithSummary("The image the model sees")
        .WithDescription("The uploaded image after the model's preprocessing (decode, bicubic resize of the shorter side, centre crop): the exact 224×224 RGB pixels the image tower is given before normalisation, as PNG.")
        .WithMetadata(new ServerApiDocs.Form(new ServerApiDocs.FormField("image", "One image file.", IsFile: true, Required: true)),
            new ServerApiDocs.Reply(null, "image/png", "The preprocessed image, 224×224 RGB PNG."), ServerApiDocs.ModelErrors);
    }

    private static bool IsJson(HttpRequest request) =>
        request.ContentType is { } type && (type.StartsWith("application/json", StringComparison.OrdinalIgnoreCase)
                                            || type.Contains("+json", StringComparison.OrdinalIgnoreCase));

    /// <summary>
    /// A request body in a buffer rented from the <see cref="RequestBodyGate"/>: <see cref="Bytes"/> is exactly the
    /// body (the buffer may be longer). Disposing gives the buffer back (once; later calls do nothing).
    /// </summary>
    private sealed class RequestBody(RequestBodyGate gate, byte[] buffer, int length) : IDisposable
    {
        private int returned;

        public ReadOnlyMemory<byte> Bytes => Volatile.Read(ref returned) == 0 ? buffer.AsMemory(0, length) : throw new ObjectDisposedException(nameof(RequestBody));

        public void Dispose()
        {
            if (Interlocked.Exchange(ref returned, 1) == 0) gate.Return(buffer, length);
        }
    }

    /// <summary>
    /// Takes a body slot for the rest of the request (waiting, without reading, while all are taken) and puts the
    /// per-read deadline in front of the body. From here the client is sent <c>100 Continue</c> if it asked.
    /// </summary>
    private static async Task<Stream> EnterBodyAsync(HttpRequest request, RequestBodyGate gate)
    {
        var lease = await gate.EnterAsync(request.HttpContext.RequestAborted);
        request.HttpContext.Response.RegisterForDispose(lease); // released once the answer is sent
        return new StallGuardStream(request.Body, gate.ReadTimeout, request.ContentLength);
    }

    /// <summary>The whole request body; Kestrel's <c>MaxRequestBodySize</c> stops it at the limit (413).</summary>
    private static async Task<RequestBody> ReadBodyAsync(HttpRequest request, RequestBodyGate gate)
    {
        var body = await EnterBodyAsync(request, gate);
        var cancel = request.HttpContext.RequestAborted;
        // A declared length within the limit is read into one buffer of that size, rented (no growing copies: a
        // growing stream allocates about five large arrays per body). A length over the limit is not allocated: the
        // read below fails with 413.
        long? limit = request.HttpContext.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpMaxRequestBodySizeFeature>()?.MaxRequestBodySize;
        if (request.ContentLength is long declared && declared <= (limit ?? 0) && declared <= Array.MaxLength)
        {
            var rented = new RequestBody(gate, gate.Rent((int)declared), (int)declared);
            try
            {
                await body.ReadExactlyAsync(MemoryMarshal.AsMemory(rented.Bytes), cancel);
                return rented;
            }
            catch (EndOfStreamException)
            {
                rented.Dispose();
                throw new RequestException($"the request body ends before its declared length of {declared} bytes");
            }
            catch
            {
                rented.Dispose();
                throw;
            }
        }
        var buffer = new MemoryStream();
        await body.CopyToAsync(buffer, cancel);
        return new RequestBody(gate, buffer.GetBuffer(), (int)buffer.Length);
    }

    /// <summary>A multipart or URL-encoded form; anything else is 415, a broken one 400.</summary>
    private static async Task<IFormCollection> ReadFormAsync(HttpRequest request, RequestBodyGate gate, string expected)
    {
        if (!request.HasFormContentType)
            throw new UnsupportedMediaException($"send multipart/form-data with {expected}");
        var original = request.Body;
        request.Body = await EnterBodyAsync(request, gate);
        try
        {
            return await request.ReadFormAsync(request.HttpContext.RequestAborted);
        }
        catch (InvalidDataException e) when (FormLimit(e, 0) is null)
        {
            throw new RequestException("malformed multipart/form-data body");
        }
        catch (IOException e) when (e is not BadHttpRequestException && !request.HttpContext.RequestAborted.IsCancellationRequested)
        {
            // The multipart reader's words for a body that stops before its closing boundary.
            throw new RequestException("malformed multipart/form-data body: it ends before the closing boundary");
        }
        finally
        {
            request.Body = original;
        }
    }

    /// <summary>The form's 'image' files in upload order, read into memory (the body limit bounds them all).</summary>
    private static async Task<List<(ImageInput Image, string Name)>> ReadImagesAsync(IFormCollection form, CancellationToken cancel)
    {
        var files = form.Files.GetFiles("image");
        if (files.Count > MaxImagesPerRequest)
            throw new RequestException($"{files.Count} images; at most {MaxImagesPerRequest} per request");
        var images = new List<(ImageInput, string)>(files.Count);
        foreach (var file in files)
        {
            var bytes = new byte[file.Length];
            await using (var stream = file.OpenReadStream()) await stream.ReadExactlyAsync(bytes, cancel);
            string name = string.IsNullOrEmpty(file.FileName) ? "image" : file.FileName;
            images.Add((ImageInput.FromBytes(bytes, UserText.Quote(name, 120)), name));
        }
        return images;
    }

    private static void CheckText(string text, string where)
    {
        if (text.Length > MaxTextCharacters)
            throw new RequestException($"{where} has {text.Length} characters; at most {MaxTextCharacters} (the model reads only the first 256 tokens)");
    }

    /// <summary><c>{"images": [base64 or data URI, ...], "texts": [...]}</c>; every problem names the field.</summary>
    private static (List<(ImageInput, string)> Images, List<string> Texts) ParseEmbedJson(ReadOnlyMemory<byte> body)
    {
        using var document = ParseJsonBody(body);
        var root = document.RootElement;
        if (root.ValueKind != JsonValueKind.Object)
            throw new RequestException("request must be a JSON object: {\"texts\": [...], \"images\": [...]}");
        var images = new List<(ImageInput, string)>();
        var texts = new List<string>();
        foreach (var property in root.EnumerateObject())
        {
            string key = KeyOf(property);
            if (key is not ("texts" or "images"))
                throw new RequestException($"unknown field \"{UserText.Quote(key, 40)}\": expected \"texts\" and/or \"images\"");
            if (property.Value.ValueKind != JsonValueKind.Array)
                throw new RequestException($"{key} must be an array of strings");
            int count = property.Value.GetArrayLength();
            int limit = key == "texts" ? MaxTextsPerRequest : MaxImagesPerRequest;
            if (count > limit) throw new RequestException($"{key} has {count} entries; at most {limit} per request");
            int i = 0;
            foreach (var item in property.Value.EnumerateArray())
            {
                string where = $"{key}[{i}]";
                if (item.ValueKind != JsonValueKind.String) throw new RequestException($"{where} must be a string");
                string value = JsonErrors.Text(item, where);
                if (key == "texts") texts.Add(value);
                else images.Add((ScoringSchema.ReadImage(value, where, where, allowFilePaths: false), where));
                i++;
            }
        }
        return (images, texts);
    }

    private static string KeyOf(JsonProperty property)
    {
        try
        {
            return property.Name;
        }
        catch (InvalidOperationException)
        {
            // Reading a key unescapes it; an unpaired surrogate escape fails inside the JSON library.
            throw new RequestException("a key holds an unpaired surrogate escape (\\uD800–\\uDFFF)");
        }
    }

    /// <summary><c>{"text": "...", "k": 10}</c>.</summary>
    private static (string Text, int K) ParseSearchJson(ReadOnlyMemory<byte> body)
    {
        using var document = ParseJsonBody(body);
        var root = document.RootElement;
        if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("text", out var text) || text.ValueKind != JsonValueKind.String)
            throw new RequestException("request must be a JSON object with a \"text\" string: {\"text\": \"...\", \"k\": 10}");
        int k = 10;
        if (root.TryGetProperty("k", out var kValue) && (kValue.ValueKind != JsonValueKind.Number || !kValue.TryGetInt32(out k)))
            throw new RequestException("k must be a whole number");
        return (JsonErrors.Text(text, "text"), k);
    }

    /// <summary>A JSON body as /score checks it: UTF-8 first, then JSON, each failure one line.</summary>
    private static JsonDocument ParseJsonBody(ReadOnlyMemory<byte> body)
    {
        if (!System.Text.Unicode.Utf8.IsValid(body.Span)) throw new RequestException("the request body is not valid UTF-8 text");
        try
        {
            return JsonDocument.Parse(body);
        }
        catch (JsonException e)
        {
            throw new RequestException($"malformed JSON: {JsonErrors.Describe(e)}");
        }
    }

    /// <summary>" failed=N" for the request log when items failed alone, else nothing.</summary>
    private static string FailedNote(int failed) => failed > 0 ? $" failed={failed}" : "";

    /// <summary>
    /// An item that failed alone in a reply of several: <c>{"image": name, "error": line}</c> (/embed:
    /// <c>{"input": name, "kind": "image", "error": line}</c>). The line is the library's, naming the image, as the
    /// CLI's <c>classify</c> prints it.
    /// </summary>
    private static void WriteItemError(Utf8JsonWriter writer, string nameField, string name, string error, string? kind = null)
    {
        writer.WriteStartObject();
        writer.WriteString(nameField, name);
        if (kind is not null) writer.WriteString("kind", kind);
        writer.WriteString("error", UserText.OneLine(error));
        writer.WriteEndObject();
    }

    private static void WriteEmbedding(Utf8JsonWriter writer, string input, string kind, float[] embedding)
    {
        writer.WriteStartObject();
        writer.WriteString("input", input);
        writer.WriteString("kind", kind);
        writer.WriteStartArray("embedding");
        foreach (var v in embedding) writer.WriteNumberValue(v);
        writer.WriteEndArray();
        writer.WriteEndObject();
    }
}
