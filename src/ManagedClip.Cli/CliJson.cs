using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace ManagedClip.Cli;

/// <summary>
/// JSON as the command line and the server write it: compact, non-ASCII kept readable
/// (<see cref="ReadableJsonEncoder"/>), and every serialised type generated at compile time
/// (<see cref="CliJsonContext"/>), so nothing depends on reflection (the native AOT build has none to offer).
/// </summary>
internal static class CliJson
{
    public static JsonWriterOptions WriterOptions { get; } = new() { Indented = false, Encoder = ReadableJsonEncoder.Instance };

    /// <summary>Runs <paramref name="write"/> on a fresh writer and returns the UTF-8 bytes.</summary>
    public static byte[] ToUtf8(Action<Utf8JsonWriter> write)
    {
        var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer, WriterOptions)) write(writer);
        return buffer.ToArray();
    }

    /// <summary>Writes one JSON value and a newline.</summary>
    public static void WriteLine(TextWriter output, Action<Utf8JsonWriter> write)
    {
        output.WriteLine(Encoding.UTF8.GetString(ToUtf8(write)));
        output.Flush();
    }

    /// <summary>A list of strings as one JSON array (for safetensors metadata).</summary>
    public static string StringArray(IReadOnlyList<string> values) =>
        JsonSerializer.Serialize(values.ToArray(), CliJsonContext.Default.StringArray);
}

/// <summary>The types the CLI and the server (de)serialise, with their JSON contracts generated at compile time.</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(string[]))]
[JsonSerializable(typeof(ScoringServer.HealthReply))]
[JsonSerializable(typeof(ScoringServer.ErrorReply))]
[JsonSerializable(typeof(ScoringServer.ReadyReply))]
// The server's request and reply shapes, for its OpenAPI document (ServerApiDocs.cs).
[JsonSerializable(typeof(ScoreRequest))]
[JsonSerializable(typeof(ScoreRow[]))]
[JsonSerializable(typeof(ClassifyReply))]
[JsonSerializable(typeof(EmbedRequest))]
[JsonSerializable(typeof(EmbedRow[]))]
[JsonSerializable(typeof(SearchRequest))]
[JsonSerializable(typeof(SearchHitReply[]))]
[JsonSerializable(typeof(ItemError))]
[JsonSerializable(typeof(EmbedError))]
[JsonSerializable(typeof(ScoreError))]
internal sealed partial class CliJsonContext : JsonSerializerContext
{
    /// <summary>The context with <see cref="ReadableJsonEncoder"/>: what the server answers with.</summary>
    public static CliJsonContext Readable { get; } =
        new(new JsonSerializerOptions { PropertyNamingPolicy = JsonNamingPolicy.CamelCase, Encoder = ReadableJsonEncoder.Instance });
}
