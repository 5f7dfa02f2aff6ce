using System.Text.Json;

namespace ManagedClip.IO;

/// <summary>
/// JSON problems in the user's terms: where (line and column, counted from 1 like a text editor) and what, without
/// the reader's internal wording ("LineNumber: 0 | BytePositionInLine: 5") or type names.
/// </summary>
internal static class JsonErrors
{
    /// <summary>"line 3, column 7: '}' is invalid after a property name", from a parse error.</summary>
    public static string Describe(JsonException e)
    {
        var message = e.Message;
        int cut = message.IndexOf(" LineNumber:", StringComparison.Ordinal);
        if (cut < 0) cut = message.IndexOf(" Path:", StringComparison.Ordinal);
        // The reader quotes the offending text, which may hold line breaks or anything else the input held.
        var what = UserText.Quote((cut >= 0 ? message[..cut] : message).Trim().TrimEnd('.'), 120);
        return e.LineNumber is { } line
            ? $"line {line + 1}, column {(e.BytePositionInLine ?? 0) + 1}: {what}"
            : what;
    }

    /// <summary>
    /// The text of a JSON string, or an error naming <paramref name="where"/> when it holds a lone or reversed
    /// surrogate escape such as "\ud800" (valid JSON syntax, but not text).
    /// </summary>
    public static string Text(JsonElement value, string where)
    {
        try
        {
            return value.GetString()!;
        }
        catch (InvalidOperationException)
        {
            throw new InvalidDataException($"{where} is not valid text: it holds an unpaired surrogate escape (\\uD800–\\uDFFF)");
        }
    }

    /// <summary>
    /// Runs code that walks a parsed document. Looking a key up or reading a string unescapes it, and an unpaired
    /// surrogate escape then fails inside the JSON library (InvalidOperationException); that becomes an error naming
    /// <paramref name="where"/>.
    /// </summary>
    public static T Guard<T>(Func<T> read, string where)
    {
        try
        {
            return read();
        }
        catch (InvalidOperationException)
        {
            throw new InvalidDataException($"{where}: holds text that is not valid: an unpaired surrogate escape (\\uD800–\\uDFFF) in a key or a string");
        }
    }

    /// <summary>The name of a JSON property, with the same check as <see cref="Text"/>.</summary>
    public static string Name(JsonProperty property, string where)
    {
        try
        {
            return property.Name;
        }
        catch (InvalidOperationException)
        {
            throw new InvalidDataException($"{where}: a key is not valid text: it holds an unpaired surrogate escape (\\uD800–\\uDFFF)");
        }
    }
}

/// <summary>JSON value kinds as a person would name them ("an array", not "Array").</summary>
internal static class JsonKinds
{
    public static string Describe(JsonValueKind kind) => kind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True => "true",
        JsonValueKind.False => "false",
        JsonValueKind.Null => "null",
        _ => "nothing",
    };
}
