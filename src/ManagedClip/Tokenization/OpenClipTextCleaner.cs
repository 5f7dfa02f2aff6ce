using System.Buffers;
using System.Text;

namespace ManagedClip.Tokenization;

/// <summary>
/// open_clip 2.23's <c>_clean_whitespace</c> = <c>whitespace_clean(basic_clean(text))</c>:
/// <c>ftfy.fix_text</c>, <c>html.unescape</c> twice, <c>strip()</c>, <c>regex.sub(r"\s+", " ")</c>, <c>strip()</c>.
/// </summary>
internal static class OpenClipTextCleaner
{
    public static string Clean(string text) => CleanAfterFtfy(Ftfy.FixText(text));

    /// <summary>Everything after ftfy; applied to a piece of ftfy's output that ends in whitespace it equals the
    /// corresponding piece of the whole (see <see cref="OpenClipBertTokenizer"/>).</summary>
    public static string CleanAfterFtfy(string fixedText)
    {
        var unescaped = PythonUnicode.Strip(PythonHtml.Unescape(PythonHtml.Unescape(fixedText)));
        return PythonUnicode.Strip(CollapseWhitespace(unescaped));
    }

    private static readonly SearchValues<char> RegexWhitespace = SearchValues.Create(
        Enumerable.Range(0, 0x10000).Where(PythonUnicode.IsRegexWhitespace).Select(c => (char)c).ToArray());

    /// <summary><c>regex.sub(r"\s+", " ", text)</c>.</summary>
    private static string CollapseWhitespace(string text)
    {
        var output = new StringBuilder(text.Length);
        var rest = text.AsSpan();
        while (true)
        {
            int run = rest.IndexOfAny(RegexWhitespace);
            if (run < 0) return output.Append(rest).ToString();
            output.Append(rest[..run]).Append(' ');
            rest = rest[run..];
            int runLength = rest.IndexOfAnyExcept(RegexWhitespace);
            if (runLength < 0) return output.ToString();
            rest = rest[runLength..];
        }
    }
}
