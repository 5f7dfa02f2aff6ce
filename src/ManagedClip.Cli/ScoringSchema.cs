using System.Text;
using System.Text.Json;
using ManagedClip.IO;

namespace ManagedClip.Cli;

/// <summary>One row of a scoring request: an image and the candidate labels it is scored against.</summary>
internal sealed record ScoringRow(ImageInput Image, string[] Labels);

/// <summary>
/// The model card's real-time inference schema.
/// Request: <c>{"input_data": {"columns": ["image", "text"], "index": [0, 1], "data": [[IMAGE, "l1, l2, l3"], …]}}</c>
/// where IMAGE is base64 bytes, a data URI, or (command line only) a file path.
/// Response: one object per row, <c>[{"probs": [...], "labels": [...]}, …]</c>, labels in the order given.
/// </summary>
internal static class ScoringSchema
{
    /// <summary>Largest number of rows one request may carry.</summary>
    public const int MaxRows = 256;

    /// <summary>Largest number of labels one row may carry.</summary>
    public const int MaxLabels = 1000;

    /// <summary>Parses a request; every problem is a <see cref="RequestException"/> naming the field or row.</summary>
    /// <param name="json">The request body.</param>
    /// <param name="allowFilePaths">Whether an image may be a path on this machine (the CLI: yes; the server: no).</param>
    public static List<ScoringRow> ParseRequest(JsonElement json, bool allowFilePaths)
    {
        try
        {
            return ParseRequestUnguarded(json, allowFilePaths);
        }
        catch (InvalidOperationException)
        {
            // Looking a key up unescapes it; an unpaired surrogate escape fails inside the JSON library.
            throw new RequestException("the request holds text that is not valid: an unpaired surrogate escape (\\uD800–\\uDFFF) in a key or a string");
        }
    }

    private static List<ScoringRow> ParseRequestUnguarded(JsonElement json, bool allowFilePaths)
    {
        if (json.ValueKind != JsonValueKind.Object || !json.TryGetProperty("input_data", out var inputData) ||
            inputData.ValueKind != JsonValueKind.Object)
            throw new RequestException("request must be a JSON object with an \"input_data\" object");

        if (!inputData.TryGetProperty("columns", out var columns) || columns.ValueKind != JsonValueKind.Array)
            throw new RequestException("input_data.columns must be an array, e.g. [\"image\", \"text\"]");
        var columnNames = columns.EnumerateArray()
            .Select(c => c.ValueKind == JsonValueKind.String ? JsonErrors.Text(c, "input_data.columns") : throw new RequestException("input_data.columns must hold strings"))
            .ToList();
        int imageColumn = columnNames.IndexOf("image"), textColumn = columnNames.IndexOf("text");
        if (imageColumn < 0 || textColumn < 0)
            throw new RequestException($"input_data.columns must name \"image\" and \"text\" (got [{UserText.Quote(string.Join(", ", columnNames), 80)}])");

        if (!inputData.TryGetProperty("data", out var data) || data.ValueKind != JsonValueKind.Array)
            throw new RequestException("input_data.data must be an array of rows");
        int rowCount = data.GetArrayLength();
        if (rowCount == 0) throw new RequestException("input_data.data has no rows");
        if (rowCount > MaxRows) throw new RequestException($"input_data.data has {rowCount} rows; at most {MaxRows} per request");
        if (inputData.TryGetProperty("index", out var index) &&
            (index.ValueKind != JsonValueKind.Array || index.GetArrayLength() != rowCount))
            throw new RequestException($"input_data.index must be an array with one entry per row ({rowCount})");

        var rows = new List<ScoringRow>(rowCount);
        int r = 0;
        foreach (var row in data.EnumerateArray())
        {
            if (row.ValueKind != JsonValueKind.Array || row.GetArrayLength() != columnNames.Count)
                throw new RequestException($"row {r}: must be an array of {columnNames.Count} values matching input_data.columns");
            var image = row[imageColumn];
            var text = row[textColumn];
            string? imageText = image.ValueKind == JsonValueKind.String ? JsonErrors.Text(image, $"row {r}: image") : null;
            if (string.IsNullOrWhiteSpace(imageText))
                throw new RequestException($"row {r}: image must be a non-empty string (base64, data URI{(allowFilePaths ? " or file path" : "")})");
            if (text.ValueKind != JsonValueKind.String)
                throw new RequestException($"row {r}: text must be a string of comma-separated labels");
            rows.Add(new ScoringRow(ReadImage(imageText, r, allowFilePaths), SplitLabels(JsonErrors.Text(text, $"row {r}: text"), $"row {r}")));
            r++;
        }
        return rows;
    }

    /// <summary>
    /// A request body as the server receives it: UTF-8 (as Python's json.loads decodes it first), JSON, then the
    /// schema. Every problem is a <see cref="RequestException"/>.
    /// </summary>
    public static List<ScoringRow> ParseRequestBody(ReadOnlyMemory<byte> body)
    {
        if (!System.Text.Unicode.Utf8.IsValid(body.Span)) throw new RequestException("the request body is not valid UTF-8 text");
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(body);
        }
        catch (JsonException e)
        {
            throw new RequestException($"malformed JSON: {JsonErrors.Describe(e)}");
        }
        using (document) return ParseRequest(document.RootElement, allowFilePaths: false);
    }

    /// <summary>Splits "l1, l2, l3" into trimmed labels; empty lists and empty labels are errors.</summary>
    public static string[] SplitLabels(string text, string where)
    {
        var labels = text.Split(',').Select(l => l.Trim()).ToArray();
        if (labels.Length == 1 && labels[0].Length == 0)
            throw new RequestException($"{where}: the label list is empty");
        for (int i = 0; i < labels.Length; i++)
            if (labels[i].Length == 0)
                throw new RequestException($"{where}: label {i + 1} of {labels.Length} is empty (check the commas)");
        if (labels.Length > MaxLabels)
            throw new RequestException($"{where}: {labels.Length} labels; at most {MaxLabels}");
        return labels;
    }

    /// <summary>
    /// Writes the model card's response: one {"probs", "labels"} object per row, plus "precision" (fp32, bf16, int8)
    /// when <paramref name="precision"/> is given (the command line says which number format answered).
    /// </summary>
    public static void WriteResponse(Utf8JsonWriter writer, IReadOnlyList<ZeroShotResult> results, string? precision = null)
    {
        writer.WriteStartArray();
        foreach (var result in results) WriteRow(writer, result, precision);
        writer.WriteEndArray();
    }

    private static void WriteRow(Utf8JsonWriter writer, ZeroShotResult result, string? precision)
    {
        writer.WriteStartObject();
        writer.WriteStartArray("probs");
        foreach (var p in result.Probabilities) writer.WriteNumberValue(p);
        writer.WriteEndArray();
        writer.WriteStartArray("labels");
        foreach (var l in result.Labels) writer.WriteStringValue(l);
        writer.WriteEndArray();
        if (precision != null) writer.WriteString("precision", precision);
        writer.WriteEndObject();
    }

    /// <summary>
    /// The response when rows are answered one by one (several rows, server and command line): a row whose image
    /// failed is <c>{"labels", "error"}</c> in its place, the error one line naming the row's image.
    /// </summary>
    public static void WriteResponse(Utf8JsonWriter writer, IReadOnlyList<ScoringRow> rows, IReadOnlyList<(ZeroShotResult? Result, string? Error)> answered,
        string? precision = null)
    {
        writer.WriteStartArray();
        for (int r = 0; r < rows.Count; r++)
        {
            if (answered[r].Result is { } result)
            {
                WriteRow(writer, result, precision);
                continue;
            }
            writer.WriteStartObject();
            writer.WriteStartArray("labels");
            foreach (var l in rows[r].Labels) writer.WriteStringValue(l);
            writer.WriteEndArray();
            writer.WriteString("error", UserText.OneLine(answered[r].Error ?? "failed"));
            writer.WriteEndObject();
        }
        writer.WriteEndArray();
    }

    private static ImageInput ReadImage(string value, int row, bool allowFilePaths) =>
        ReadImage(value, $"row {row}", $"row {row} image", allowFilePaths);

    /// <summary>
    /// An image given in JSON as a data URI, base64 bytes or (command line only) a file path; problems are reported
    /// as "<paramref name="where"/>: image …", and the image is named <paramref name="name"/> in later errors.
    /// </summary>
    internal static ImageInput ReadImage(string value, string where, string name, bool allowFilePaths)
    {
        if (value.StartsWith("data:", StringComparison.OrdinalIgnoreCase))
        {
            int comma = value.IndexOf(',');
            if (comma < 0 || !value.AsSpan(0, comma).EndsWith(";base64", StringComparison.OrdinalIgnoreCase))
                throw new RequestException($"{where}: image data URI must be base64 (data:image/...;base64,...)");
            return ImageInput.FromBytes(DecodeBase64(value[(comma + 1)..], where), name);
        }
        if (allowFilePaths && File.Exists(value))
            return ImageInput.FromFile(value);
        if (LooksLikeBase64(value))
            return ImageInput.FromBytes(DecodeBase64(value, where), name);
        throw new RequestException(allowFilePaths
            ? $"{where}: image is not an existing file, a data URI, or base64: '{Shorten(value)}'"
            : $"{where}: image must be base64 bytes or a data URI (the server does not read file paths)");
    }

    private static bool LooksLikeBase64(string value) =>
        value.Length >= 16 && value.AsSpan().IndexOfAnyExcept(Base64Chars) < 0;

    private static readonly System.Buffers.SearchValues<char> Base64Chars = System.Buffers.SearchValues.Create(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=\r\n-_");

    private static readonly System.Buffers.SearchValues<char> NonStandardBase64 = System.Buffers.SearchValues.Create("\r\n-_");

    private static byte[] DecodeBase64(string text, string where)
    {
        // Standard padded base64, what nearly every client sends, is decoded as it is: a normalised copy of a
        // multi-megabyte image would be two more large strings per request.
        if (text.Length % 4 == 0 && text.AsSpan().IndexOfAny(NonStandardBase64) < 0)
            return DecodeStandardBase64(text, where);
        // Accept the URL-safe alphabet, line breaks and missing padding too: clients differ.
        var normalized = new StringBuilder(text.Length + 3);
        foreach (char c in text)
        {
            if (c is '\r' or '\n') continue;
            normalized.Append(c switch { '-' => '+', '_' => '/', _ => c });
        }
        while (normalized.Length % 4 != 0) normalized.Append('=');
        return DecodeStandardBase64(normalized.ToString(), where);
    }

    private static byte[] DecodeStandardBase64(string text, string where)
    {
        try
        {
            return Convert.FromBase64String(text);
        }
        catch (FormatException)
        {
            throw new RequestException($"{where}: image is not valid base64");
        }
    }

    private static string Shorten(string s) => UserText.Quote(s, 80);
}

/// <summary>A request that cannot be served as sent (HTTP 400, or a one-line CLI error).</summary>
internal sealed class RequestException(string message) : Exception(message);
