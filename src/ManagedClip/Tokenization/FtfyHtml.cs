using System.Text;

namespace ManagedClip.Tokenization;

/// <summary>
/// ftfy 6.1.1's <c>unescape_html</c>, more cautious than Python's <c>html.unescape</c>: only references that end in
/// ';' (<c>&amp;#?[0-9A-Za-z]{1,24};</c>) are decoded, named ones from the HTML5 list plus upper-cased spellings
/// such as "&amp;NTILDE;", numeric ones by <c>html.unescape</c> provided it consumed the ';'.
/// </summary>
internal static class FtfyHtml
{
    private const int MaxNameLength = 24;

    public static string Unescape(string text)
    {
        if (!text.Contains('&')) return text;
        var output = new StringBuilder(text.Length);
        int copiedUpTo = 0;
        for (int i = text.IndexOf('&'); i >= 0; i = text.IndexOf('&', i + 1))
        {
            if (i < copiedUpTo) continue;
            int nameStart = i + 1 < text.Length && text[i + 1] == '#' ? i + 2 : i + 1;
            int nameEnd = nameStart;
            while (nameEnd < text.Length && nameEnd - nameStart <= MaxNameLength && char.IsAsciiLetterOrDigit(text[nameEnd]))
                nameEnd++;
            int nameLength = nameEnd - nameStart;
            if (nameLength is 0 or > MaxNameLength || nameEnd >= text.Length || text[nameEnd] != ';') continue;

            string reference = text[i..(nameEnd + 1)];
            output.Append(text, copiedUpTo, i - copiedUpTo).Append(Replacement(reference));
            copiedUpTo = nameEnd + 1;
        }
        return copiedUpTo == 0 ? text : output.Append(text, copiedUpTo, text.Length - copiedUpTo).ToString();
    }

    private static string Replacement(string reference)
    {
        if (HtmlEntityTable.Ftfy.TryGetValue(reference, out var value)) return value;
        if (reference.StartsWith("&#", StringComparison.Ordinal))
        {
            // Keep the reference unless html.unescape decoded all of it, ';' included.
            var unescaped = PythonHtml.Unescape(reference);
            return unescaped.Contains(';') ? reference : unescaped;
        }
        return reference;
    }
}
