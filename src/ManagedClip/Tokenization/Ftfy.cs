using System.Buffers;
using System.Text;

namespace ManagedClip.Tokenization;

/// <summary>
/// <c>ftfy.fix_text(text)</c> of ftfy 6.1.1 with its default configuration, the first step of open_clip's text
/// cleaning. The text is fixed in segments (lines, at most 1,000,000 code points each); every segment is put
/// through the fixers below until nothing changes. HTML entities are decoded until a segment containing '&lt;' is
/// seen (from then on the text is taken to be HTML).
/// Sources: ftfy <c>__init__.py</c>, <c>fixes.py</c>, <c>chardata.py</c>, <c>badness.py</c> (rspeer/python-ftfy 6.1.1).
/// </summary>
internal sealed class Ftfy
{
    /// <summary><c>TextFixerConfig.max_decode_length</c>, in code points.</summary>
    public const int MaxSegmentLength = 1_000_000;

    private bool _unescapeHtml = true; // "auto" until a segment contains '<'

    /// <summary><c>ftfy.fix_text(text)</c>.</summary>
    public static string FixText(string text)
    {
        var fixer = new Ftfy();
        var output = new StringBuilder(text.Length);
        for (int start = 0; start < text.Length;)
        {
            int end = NextSegmentEnd(text, start);
            output.Append(fixer.FixNextSegment(text[start..end]));
            start = end;
        }
        return output.ToString();
    }

    /// <summary>End of the segment starting at <paramref name="start"/>: just past the next '\n', or 1,000,000 code points.</summary>
    public static int NextSegmentEnd(string text, int start)
    {
        int newline = text.IndexOf('\n', start);
        int end = newline < 0 ? text.Length : newline + 1;
        // Cut long lines by code points (a surrogate pair counts once, as in a Python str).
        int codePoints = 0, i = start;
        while (i < end && codePoints < MaxSegmentLength)
        {
            i += char.IsSurrogatePair(text, i) ? 2 : 1;
            codePoints++;
        }
        return i;
    }

    /// <summary>Fixes the next segment in order (the HTML decision carries over to later segments).</summary>
    public string FixNextSegment(string segment)
    {
        if (_unescapeHtml && segment.Contains('<')) _unescapeHtml = false;
        return FixSegment(segment, _unescapeHtml);
    }

    // fix_and_explain(segment) with explain=False
    private static string FixSegment(string text, bool unescapeHtml)
    {
        while (true)
        {
            var original = text;
            if (unescapeHtml) text = FtfyHtml.Unescape(text);
            text = FtfyEncodingFix.FixEncoding(text);
            text = FtfyEncodingFix.FixC1Controls(text);
            text = Translate(text, LatinLigatures, LatinLigature);
            text = Translate(text, WidthForms, StandardWidth);
            text = Translate(text, CurlyQuotes, UncurledQuote);
            text = FixLineBreaks(text);
            text = FixSurrogates(text);
            text = RemoveTerminalEscapes(text);
            text = Translate(text, UnwantedControls, ControlCharacterRemoval);
            text = PythonUnicode.Normalize(text, NormalizationForm.FormC);
            if (text == original) return text;
        }
    }

    /// <summary>
    /// Python's <c>str.translate</c> with a per-character map: <paramref name="map"/> returns null to keep a character,
    /// otherwise its replacement ("" deletes). <paramref name="domain"/> holds every character the map changes (all in
    /// the BMP), so text without any of them is returned after one vectorized search.
    /// </summary>
    private static string Translate(string text, SearchValues<char> domain, Func<char, string?> map)
    {
        int first = text.AsSpan().IndexOfAny(domain);
        if (first < 0) return text;
        StringBuilder? output = null;
        for (int i = first; i < text.Length; i++)
        {
            var replacement = map(text[i]);
            if (replacement == null) { output?.Append(text[i]); continue; }
            output ??= new StringBuilder(text.Length).Append(text, 0, i);
            output.Append(replacement);
        }
        return output?.ToString() ?? text;
    }

    private static readonly SearchValues<char> LatinLigatures = SearchValues.Create("ĲĳŉǱǲǳǄǅǆǇǈǉǊǋǌﬀﬁﬂﬃﬄﬅﬆ");

    /// <summary><c>fix_latin_ligatures</c>: Latin ligatures and legacy digraphs become separate letters.</summary>
    private static string? LatinLigature(char c) => c switch
    {
        'Ĳ' => "IJ", 'ĳ' => "ij", 'ŉ' => "ʼn", 'Ǳ' => "DZ", 'ǲ' => "Dz", 'ǳ' => "dz",
        'Ǆ' => "DŽ", 'ǅ' => "Dž", 'ǆ' => "dž", 'Ǉ' => "LJ", 'ǈ' => "Lj", 'ǉ' => "lj",
        'Ǌ' => "NJ", 'ǋ' => "Nj", 'ǌ' => "nj",
        'ﬀ' => "ff", 'ﬁ' => "fi", 'ﬂ' => "fl", 'ﬃ' => "ffi", 'ﬄ' => "ffl", 'ﬅ' => "ſt", 'ﬆ' => "st",
        _ => null,
    };

    // fix_character_width: U+3000 → space, and each of U+FF01..U+FFEF whose NFKC form differs → that form
    // (full-width ASCII, half-width katakana/hangul/symbols). NFKC of these long-standing characters is stable
    // across Unicode versions, so .NET's normalizer gives Python's table.
    private static readonly Dictionary<char, string> WidthMap = BuildWidthMap();

    private static Dictionary<char, string> BuildWidthMap()
    {
        var map = new Dictionary<char, string> { ['\u3000'] = " " };
        for (char c = '\uFF01'; c < '\uFFF0'; c++)
        {
            var compatible = c.ToString().Normalize(NormalizationForm.FormKC);
            if (compatible != c.ToString()) map[c] = compatible;
        }
        return map;
    }

    private static readonly SearchValues<char> WidthForms = SearchValues.Create([.. WidthMap.Keys]);

    private static string? StandardWidth(char c) => WidthMap.TryGetValue(c, out var s) ? s : null;

    private static readonly SearchValues<char> CurlyQuotes = SearchValues.Create("\u02bc\u2018\u2019\u201a\u201b\u201c\u201d\u201e\u201f");

    /// <summary><c>uncurl_quotes</c>: U+02BC and U+2018..U+201B → ', U+201C..U+201F → ".</summary>
    private static string? UncurledQuote(char c) => c switch
    {
        '\u02bc' or >= '\u2018' and <= '\u201b' => "'",
        >= '\u201c' and <= '\u201f' => "\"",
        _ => null,
    };

    /// <summary>
    /// <c>remove_control_chars</c>: C0 controls other than \t \n \f \r, DEL, deprecated Arabic format controls
    /// U+206A..U+206F, the byte-order mark U+FEFF and interlinear annotation/object replacement U+FFF9..U+FFFC.
    /// </summary>
    private static readonly SearchValues<char> UnwantedControls = SearchValues.Create(
        "\u0000\u0001\u0002\u0003\u0004\u0005\u0006\u0007\u0008\u000b\u000e\u000f\u0010\u0011\u0012\u0013\u0014\u0015"
        + "\u0016\u0017\u0018\u0019\u001a\u001b\u001c\u001d\u001e\u001f\u007f\u206a\u206b\u206c\u206d\u206e\u206f"
        + "\ufeff\ufff9\ufffa\ufffb\ufffc");

    private static string? ControlCharacterRemoval(char c) => c switch
    {
        <= '\u0008' or '\u000b' or >= '\u000e' and <= '\u001f' or '\u007f' => "",
        >= '\u206a' and <= '\u206f' or '\ufeff' or >= '\ufff9' and <= '\ufffc' => "",
        _ => null,
    };

    /// <summary><c>fix_line_breaks</c>: \r\n, \r, U+2028, U+2029 and U+0085 all become \n.</summary>
    private static string FixLineBreaks(string text)
    {
        if (text.AsSpan().IndexOfAny('\r', '\u2028', '\u2029') < 0 && !text.Contains('\u0085')) return text;
        return text.Replace("\r\n", "\n").Replace('\r', '\n').Replace('\u2028', '\n').Replace('\u2029', '\n')
            .Replace('\u0085', '\n');
    }

    /// <summary>
    /// <c>fix_surrogates</c>: surrogate code points in a Python str are joined when they form a pair and become
    /// U+FFFD otherwise. A .NET string already holds pairs as one character, so only lone surrogates change.
    /// </summary>
    private static string FixSurrogates(string text)
    {
        int first = text.AsSpan().IndexOfAnyInRange('\uD800', '\uDFFF');
        if (first < 0) return text;
        char[]? chars = null;
        for (int i = first; i < text.Length; i++)
        {
            if (!char.IsSurrogate(text[i])) continue;
            if (char.IsSurrogatePair(text, i)) { i++; continue; }
            chars ??= text.ToCharArray();
            chars[i] = '\uFFFD';
        }
        return chars == null ? text : new string(chars);
    }

    /// <summary><c>remove_terminal_escapes</c>: ANSI sequences <c>\x1b\[(\d|;)*[a-zA-Z]</c> (\d: any Unicode digit).</summary>
    private static string RemoveTerminalEscapes(string text)
    {
        int escape = text.IndexOf('\u001b');
        if (escape < 0) return text;
        var output = new StringBuilder(text.Length);
        int copiedUpTo = 0;
        for (; escape >= 0; escape = text.IndexOf('\u001b', escape + 1))
        {
            if (escape < copiedUpTo || escape + 1 >= text.Length || text[escape + 1] != '[') continue;
            int i = escape + 2;
            while (i < text.Length)
            {
                if (text[i] == ';') { i++; continue; }
                int codePoint = PythonUnicode.CodePointAt(text, i, out int width);
                if (PythonUnicode.Category(codePoint) != System.Globalization.UnicodeCategory.DecimalDigitNumber) break;
                i += width;
            }
            if (i >= text.Length || !char.IsAsciiLetter(text[i])) continue;
            output.Append(text, copiedUpTo, escape - copiedUpTo);
            copiedUpTo = i + 1;
        }
        return copiedUpTo == 0 ? text : output.Append(text, copiedUpTo, text.Length - copiedUpTo).ToString();
    }
}
