using System.Text.Json;

namespace ManagedClip.Cli;

/// <summary>Which exceptions are the user's to fix (reported as one line) rather than bugs.</summary>
internal static class CliErrors
{
    public static bool IsUserError(Exception e) => e is
        InvalidDataException or FileNotFoundException or DirectoryNotFoundException or IOException or
        UnauthorizedAccessException or ArgumentException or RequestException or JsonException or
        HttpRequestException or NotSupportedException or FormatException or UsageException;
}

/// <summary>A command line that parsed but asks for something impossible (exit code 2).</summary>
internal sealed class UsageException(string message) : Exception(message);
