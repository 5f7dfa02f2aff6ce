using System.Globalization;
using System.Text;

namespace ManagedClip.Tokenization;

/// <summary>
/// The character facts the reference tokenizer saw: Python 3.11 with <c>unicodedata</c> at Unicode 14.0.
/// .NET 10 ships newer tables (Unicode 16), so a character assigned after 14.0 must still look unassigned (Cn) here,
/// or BERT would keep a character that Python deletes. Both lists below were produced by comparing every code point
/// of Python 3.11's <c>unicodedata.category</c>/<c>str.lower</c> with .NET 10's
/// <see cref="CharUnicodeInfo.GetUnicodeCategory(int)"/>/<see cref="Rune.ToLowerInvariant"/>.
/// Code points are ints; a lone UTF-16 surrogate is its own code point (category Cs), as in a Python str.
/// </summary>
internal static class PythonUnicode
{
    // [start, end] ranges assigned in Unicode 15.0..16.0: Cn for Python 3.11.
    private static readonly (int Start, int End)[] AssignedAfterUnicode14 =
    [
        (0x897, 0x897), (0xCF3, 0xCF3), (0xECE, 0xECE), (0x1B4E, 0x1B4F), (0x1B7F, 0x1B7F), (0x1C89, 0x1C8A),
        (0x2427, 0x2429), (0x2FFC, 0x2FFF), (0x31E4, 0x31E5), (0x31EF, 0x31EF), (0xA7CB, 0xA7CD), (0xA7DA, 0xA7DC),
        (0x105C0, 0x105F3), (0x10D40, 0x10D65), (0x10D69, 0x10D85), (0x10D8E, 0x10D8F), (0x10EC2, 0x10EC4),
        (0x10EFC, 0x10EFF), (0x1123F, 0x11241), (0x11380, 0x11389), (0x1138B, 0x1138B), (0x1138E, 0x1138E),
        (0x11390, 0x113B5), (0x113B7, 0x113C0), (0x113C2, 0x113C2), (0x113C5, 0x113C5), (0x113C7, 0x113CA),
        (0x113CC, 0x113D5), (0x113D7, 0x113D8), (0x113E1, 0x113E2), (0x116D0, 0x116E3), (0x11B00, 0x11B09),
        (0x11BC0, 0x11BE1), (0x11BF0, 0x11BF9), (0x11F00, 0x11F10), (0x11F12, 0x11F3A), (0x11F3E, 0x11F5A),
        (0x1342F, 0x1342F), (0x13439, 0x13455), (0x13460, 0x143FA), (0x16100, 0x16139), (0x16D40, 0x16D79),
        (0x18CFF, 0x18CFF), (0x1B132, 0x1B132), (0x1B155, 0x1B155), (0x1CC00, 0x1CCF9), (0x1CD00, 0x1CEB3),
        (0x1D2C0, 0x1D2D3), (0x1DF25, 0x1DF2A), (0x1E030, 0x1E06D), (0x1E08F, 0x1E08F), (0x1E4D0, 0x1E4F9),
        (0x1E5D0, 0x1E5FA), (0x1E5FF, 0x1E5FF), (0x1F6DC, 0x1F6DC), (0x1F774, 0x1F776), (0x1F77B, 0x1F77F),
        (0x1F7D9, 0x1F7D9), (0x1F8B2, 0x1F8BB), (0x1F8C0, 0x1F8C1), (0x1FA75, 0x1FA77), (0x1FA87, 0x1FA89),
        (0x1FA8F, 0x1FA8F), (0x1FAAD, 0x1FAAF), (0x1FABB, 0x1FABF), (0x1FAC6, 0x1FAC6), (0x1FACE, 0x1FACF),
        (0x1FADA, 0x1FADC), (0x1FADF, 0x1FADF), (0x1FAE8, 0x1FAE9), (0x1FAF7, 0x1FAF8), (0x1FBCB, 0x1FBEF),
        (0x2B739, 0x2B739), (0x2EBF0, 0x2EE5D), (0x31350, 0x323AF),
    ];

    // The one code point already assigned in 14.0 whose category changed later (AHOM CONSONANT SIGN MEDIAL RA).
    private const int AhomMedialRa = 0x1171E;

    /// <summary><c>unicodedata.category</c> as of Unicode 14.0.</summary>
    public static UnicodeCategory Category(int codePoint)
    {
        if (codePoint is >= 0xD800 and <= 0xDFFF) return UnicodeCategory.Surrogate;
        if (IsAssignedAfterUnicode14(codePoint)) return UnicodeCategory.OtherNotAssigned;
        if (codePoint == AhomMedialRa) return UnicodeCategory.NonSpacingMark;
        return CharUnicodeInfo.GetUnicodeCategory(codePoint);
    }

    public static bool IsAssignedAfterUnicode14(int codePoint)
    {
        if (codePoint < AssignedAfterUnicode14[0].Start) return false;
        int lo = 0, hi = AssignedAfterUnicode14.Length - 1;
        while (lo <= hi)
        {
            int mid = (lo + hi) >> 1;
            var (start, end) = AssignedAfterUnicode14[mid];
            if (codePoint < start) hi = mid - 1;
            else if (codePoint > end) lo = mid + 1;
            else return true;
        }
        return false;
    }

    /// <summary>Python <c>str.isspace()</c> (also what <c>str.split()</c> and <c>str.strip()</c> use).</summary>
    public static bool IsSpace(int c) => c switch
    {
        >= 0x09 and <= 0x0D or >= 0x1C and <= 0x20 or 0x85 or 0xA0 or 0x1680 => true,
        >= 0x2000 and <= 0x200A or 0x2028 or 0x2029 or 0x202F or 0x205F or 0x3000 => true,
        _ => false,
    };

    /// <summary>
    /// <c>\s</c> of the <c>regex</c> module that open_clip imports as <c>re</c>: Unicode White_Space, which unlike
    /// <see cref="IsSpace"/> excludes the information separators U+001C..U+001F (and never includes U+200B..U+200D).
    /// </summary>
    public static bool IsRegexWhitespace(int c) => IsSpace(c) && c is not (>= 0x1C and <= 0x1F);

    /// <summary>Python <c>str.isalnum()</c> for one code point: letters (L*) and numbers (Nd, Nl, No).</summary>
    public static bool IsAlphanumeric(int c) => Category(c) switch
    {
        UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter
            or UnicodeCategory.ModifierLetter or UnicodeCategory.OtherLetter => true,
        UnicodeCategory.DecimalDigitNumber or UnicodeCategory.LetterNumber or UnicodeCategory.OtherNumber => true,
        _ => false,
    };

    /// <summary>
    /// Appends Python's <c>str.lower()</c> of a single code point. Python applies the full (SpecialCasing) mapping,
    /// whose only unconditional lower-case entry is U+0130 → "i\u0307" (.NET keeps U+0130); characters unassigned in
    /// Unicode 14.0 stay unchanged. Final-sigma context never applies because the caller lowers one code point at a time
    /// (as transformers' per-character regex does).
    /// </summary>
    public static void AppendLower(StringBuilder output, int codePoint)
    {
        if (codePoint == 0x130) { output.Append('i').Append('\u0307'); return; }
        if (codePoint is >= 0xD800 and <= 0xDFFF || IsAssignedAfterUnicode14(codePoint))
        {
            AppendCodePoint(output, codePoint);
            return;
        }
        AppendCodePoint(output, Rune.ToLowerInvariant(new Rune(codePoint)).Value);
    }

    /// <summary>The code point at <paramref name="index"/>; a lone surrogate is returned as itself (width 1).</summary>
    public static int CodePointAt(string text, int index, out int width)
    {
        char c = text[index];
        if (char.IsHighSurrogate(c) && index + 1 < text.Length && char.IsLowSurrogate(text[index + 1]))
        {
            width = 2;
            return char.ConvertToUtf32(c, text[index + 1]);
        }
        width = 1;
        return c;
    }

    public static void AppendCodePoint(StringBuilder output, int codePoint)
    {
        if (codePoint < 0x10000) output.Append((char)codePoint);
        else output.Append(char.ConvertFromUtf32(codePoint));
    }

    /// <summary>Python <c>str.strip()</c> with no argument.</summary>
    public static string Strip(string text)
    {
        int start = 0, end = text.Length;
        while (start < end && IsSpace(text[start])) start++;
        while (end > start && IsSpace(text[end - 1])) end--;
        return start == 0 && end == text.Length ? text : text[start..end];
    }

    /// <summary>
    /// <c>unicodedata.normalize(form, text)</c>. .NET's normalizer refuses strings holding U+FFFE or a lone surrogate,
    /// which Python normalizes as ordinary characters; both have no decomposition and combining class 0, so they block
    /// composition and reordering on either side, and normalizing the text between them piece by piece gives
    /// Python's result.
    /// </summary>
    public static string Normalize(string text, NormalizationForm form)
    {
        int barrier = IndexOfNormalizationBarrier(text, 0);
        if (barrier < 0) return text.IsNormalized(form) ? text : text.Normalize(form);
        var output = new StringBuilder(text.Length);
        for (int start = 0; start <= text.Length;)
        {
            int end = barrier < 0 ? text.Length : barrier;
            var piece = text[start..end];
            output.Append(piece.IsNormalized(form) ? piece : piece.Normalize(form));
            if (end == text.Length) break;
            output.Append(text[end]);
            start = end + 1;
            barrier = IndexOfNormalizationBarrier(text, start);
        }
        return output.ToString();
    }

    // U+FFFE or a surrogate that is not half of a pair.
    private static int IndexOfNormalizationBarrier(string text, int start)
    {
        for (int i = start; i < text.Length; i++)
        {
            char c = text[i];
            if (c == '\uFFFE') return i;
            if (char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1])) { i++; continue; }
            if (char.IsSurrogate(c)) return i;
        }
        return -1;
    }
}
