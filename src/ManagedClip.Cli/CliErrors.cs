using System.Text.Json;

namespace ManagedClip.Cli;

/// <summary>Which exceptions are the user's to fix (reported as one line) rather than bugs, and how they read.</summary>
internal static class CliErrors
{
    public static bool IsUserError(Exception e) => e is
        InvalidDataException or FileNotFoundException or DirectoryNotFoundException or IOException or
        UnauthorizedAccessException or ArgumentException or RequestException or JsonException or
        HttpRequestException or NotSupportedException or FormatException or UsageException or UnsupportedMediaException or
        NonFiniteOutputException;

    /// <summary>
    /// The message in the user's terms, on one bounded line: without .NET's " (Parameter 'x')" suffix, and a JSON
    /// error as its line and column.
    /// </summary>
    public static string Describe(Exception e)
    {
        var message = e switch
        {
            JsonException json => "malformed JSON: " + ManagedClip.IO.JsonErrors.Describe(json),
            ArgumentException { ParamName: { } name } argument when argument.Message.EndsWith($" (Parameter '{name}')", StringComparison.Ordinal) =>
                argument.Message[..^$" (Parameter '{name}')".Length],
            _ => e.Message,
        };
        return UserText.OneLine(message);
    }
}

/// <summary>A request sent with a content type the endpoint does not take (HTTP 415).</summary>
internal sealed class UnsupportedMediaException(string message) : Exception(message);

/// <summary>A command line that parsed but asks for something impossible (exit code 2).</summary>
internal sealed class UsageException(string message) : Exception(message);
