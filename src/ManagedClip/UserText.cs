using System.Text;

namespace ManagedClip;

/// <summary>
/// Keeps what the user gave (a path, a tensor name, a label) readable inside a one-line error: line breaks and
/// other control characters are shown escaped, and long values are cut with their length said, so a 1 MB tensor
/// name cannot become a 1 MB message.
/// </summary>
internal static class UserText
{
    /// <summary>Longest value quoted whole.</summary>
    public const int MaxQuoted = 160;

    /// <summary>Longest error line a command or the server prints.</summary>
    public const int MaxMessage = 2000;

    /// <summary><paramref name="value"/> made printable on one line, cut to about <paramref name="max"/> characters.</summary>
    public static string Quote(string value, int max = MaxQuoted)
    {
        bool tooLong = value.Length > max;
        var text = tooLong ? value[..(max - 40)] : value;
        var output = new StringBuilder(text.Length + 16);
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            if (char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                output.Append(c).Append(text[++i]);
                continue;
            }
            if (char.IsControl(c) || char.IsSurrogate(c) || c is '\u2028' or '\u2029' or '\uFFFE' or '\uFFFF')
                output.Append(c switch { '\n' => "\\n", '\r' => "\\r", '\t' => "\\t", _ => $"\\u{(int)c:X4}" });
            else output.Append(c);
        }
        if (tooLong) output.Append($"… ({value.Length:N0} characters)");
        return output.ToString();
    }

    /// <summary>A message as one line of at most <see cref="MaxMessage"/> characters.</summary>
    public static string OneLine(string message) => Quote(message, MaxMessage);
}
