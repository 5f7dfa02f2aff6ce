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
    /// corresponding piece of the whole (see <see cref="ClipTokenizer"/>).</summary>
    public static string CleanAfterFtfy(string fixedText)
    {
        var unescaped = PythonUnicode.Strip(PythonHtml.Unescape(PythonHtml.Unescape(fixedText)));
        return PythonUnicode.Strip(CollapseWhitespace(unescaped));
    }

    /// <summary><c>regex.sub(r"\s+", " ", text)</c> (the regex module's Unicode White_Space).</summary>
    private static string CollapseWhitespace(string text)
    {
        var output = new StringBuilder(text.Length);
        for (int i = 0; i < text.Length;)
        {
            if (!PythonUnicode.IsRegexWhitespace(text[i])) { output.Append(text[i++]); continue; }
            while (i < text.Length && PythonUnicode.IsRegexWhitespace(text[i])) i++;
            output.Append(' ');
        }
        return output.ToString();
    }
}
