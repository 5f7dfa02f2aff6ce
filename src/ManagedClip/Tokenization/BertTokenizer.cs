using System.Globalization;
using System.Text;

namespace ManagedClip.Tokenization;

/// <summary>
/// transformers 4.35.2's slow <c>BertTokenizer.tokenize</c> with BiomedBERT's settings (lower-case, strip accents,
/// split CJK ideographs, WordPiece with 100-character words): text in, WordPiece tokens out, without [CLS]/[SEP].
/// Hand-written because Microsoft.ML.Tokenizers 2.0.1's BertTokenizer gives different ids for 15 of the 58 reference
/// texts: it drops ASCII symbols of categories Sm/Sk ("&lt;", "=", "^", "|", "~", "+", "`") instead of splitting them
/// off as BERT punctuation, drops words that become a lone [UNK] (e.g. an emoji), and matches "[mask]" as [MASK].
/// </summary>
internal sealed class BertTokenizer(WordPieceVocabulary vocabulary)
{
    private const int MaxWordCodePoints = 100; // max_input_chars_per_word

    /// <summary>WordPiece tokens of <paramref name="text"/>, produced lazily so a caller may stop early.</summary>
    public IEnumerable<string> Tokenize(string text)
    {
        // PreTrainedTokenizer.tokenize: special tokens written in the text are kept whole (case-sensitive match);
        // everything else is lower-cased one code point at a time and goes through BasicTokenizer + WordPiece.
        int start = 0;
        while (start < text.Length)
        {
            var (specialStart, special) = FindSpecialToken(text, start);
            int plainEnd = special == null ? text.Length : specialStart;
            if (plainEnd > start)
                foreach (var word in BasicTokenize(LowerEachCodePoint(text[start..plainEnd])))
                    foreach (var piece in WordPiece(word))
                        yield return piece;
            if (special == null) yield break;
            yield return special;
            start = specialStart + special.Length;
        }
    }

    // The leftmost special token at or after `start`. They cannot overlap ('[' only starts them, ']' only ends them).
    private static (int Index, string? Token) FindSpecialToken(string text, int start)
    {
        for (int i = text.IndexOf('[', start); i >= 0; i = text.IndexOf('[', i + 1))
            foreach (var token in WordPieceVocabulary.SpecialTokens)
                if (string.CompareOrdinal(text, i, token, 0, token.Length) == 0) return (i, token);
        return (-1, null);
    }

    private static string LowerEachCodePoint(string text)
    {
        var output = new StringBuilder(text.Length);
        for (int i = 0; i < text.Length;)
        {
            char c = text[i];
            if (char.IsAscii(c)) { output.Append(char.ToLowerInvariant(c)); i++; continue; } // ('\n' included)
            int codePoint = PythonUnicode.CodePointAt(text, i, out int width);
            PythonUnicode.AppendLower(output, codePoint);
            i += width;
        }
        return output.ToString();
    }

    /// <summary>
    /// BasicTokenizer.tokenize: delete NUL, U+FFFD and controls; whitespace → space; spaces around CJK ideographs;
    /// NFC; split on whitespace; per word: strip accents (NFD, drop Mn) and split off punctuation.
    /// (Its own lower-casing is a no-op here: the text was already lower-cased code point by code point.)
    /// </summary>
    private static IEnumerable<string> BasicTokenize(string text)
    {
        var cleaned = new StringBuilder(text.Length);
        for (int i = 0; i < text.Length;)
        {
            if (text[i] is >= ' ' and <= '~') { cleaned.Append(text[i++]); continue; } // printable ASCII stays
            int codePoint = PythonUnicode.CodePointAt(text, i, out int width);
            i += width;
            if (codePoint == 0 || codePoint == 0xFFFD || IsControl(codePoint)) continue;
            if (IsWhitespace(codePoint)) cleaned.Append(' ');
            else if (IsCjkIdeograph(codePoint)) cleaned.Append(' ').Append(char.ConvertFromUtf32(codePoint)).Append(' ');
            else PythonUnicode.AppendCodePoint(cleaned, codePoint);
        }
        var normalized = PythonUnicode.Normalize(cleaned.ToString(), NormalizationForm.FormC);
        foreach (var word in SplitOnPythonWhitespace(normalized))
            foreach (var piece in SplitOnPunctuation(StripAccents(word)))
                foreach (var token in SplitOnPythonWhitespace(piece)) // the final whitespace_tokenize(" ".join(...))
                    yield return token;
    }

    private static bool IsControl(int codePoint) =>
        codePoint is not ('\t' or '\n' or '\r') && PythonUnicode.Category(codePoint) is UnicodeCategory.Control
            or UnicodeCategory.Format or UnicodeCategory.OtherNotAssigned or UnicodeCategory.PrivateUse
            or UnicodeCategory.Surrogate;

    private static bool IsWhitespace(int codePoint) =>
        codePoint is ' ' or '\t' or '\n' or '\r' || PythonUnicode.Category(codePoint) == UnicodeCategory.SpaceSeparator;

    // BERT's "Chinese character" ranges: the CJK Unified Ideographs blocks and compatibility ideographs.
    private static bool IsCjkIdeograph(int c) =>
        c is >= 0x4E00 and <= 0x9FFF or >= 0x3400 and <= 0x4DBF or >= 0x20000 and <= 0x2A6DF
            or >= 0x2A700 and <= 0x2B73F or >= 0x2B740 and <= 0x2B81F or >= 0x2B820 and <= 0x2CEAF
            or >= 0xF900 and <= 0xFAFF or >= 0x2F800 and <= 0x2FA1F;

    /// <summary>Python <c>str.split()</c>: runs of <see cref="PythonUnicode.IsSpace"/> separate words.</summary>
    internal static IEnumerable<string> SplitOnPythonWhitespace(string text)
    {
        int i = 0;
        while (i < text.Length)
        {
            while (i < text.Length && PythonUnicode.IsSpace(text[i])) i++;
            int start = i;
            while (i < text.Length && !PythonUnicode.IsSpace(text[i])) i++;
            if (i > start) yield return text[start..i];
        }
    }

    private static string StripAccents(string word)
    {
        if (System.Text.Ascii.IsValid(word)) return word; // nothing to decompose, no marks
        var decomposed = PythonUnicode.Normalize(word, NormalizationForm.FormD);
        var output = new StringBuilder(decomposed.Length);
        for (int i = 0; i < decomposed.Length;)
        {
            int codePoint = PythonUnicode.CodePointAt(decomposed, i, out int width);
            if (PythonUnicode.Category(codePoint) != UnicodeCategory.NonSpacingMark) output.Append(decomposed, i, width);
            i += width;
        }
        return output.ToString();
    }

    // _run_split_on_punc: every punctuation character is a token of its own.
    private static IEnumerable<string> SplitOnPunctuation(string word)
    {
        int runStart = 0;
        for (int i = 0; i < word.Length;)
        {
            int codePoint = PythonUnicode.CodePointAt(word, i, out int width);
            if (IsPunctuation(codePoint))
            {
                if (i > runStart) yield return word[runStart..i];
                yield return word.Substring(i, width);
                runStart = i + width;
            }
            i += width;
        }
        if (runStart < word.Length) yield return word[runStart..];
    }

    // ASCII symbols count as punctuation too (e.g. "$", "^", "`"), then every Unicode P* category.
    private static bool IsPunctuation(int c) =>
        c is >= 33 and <= 47 or >= 58 and <= 64 or >= 91 and <= 96 or >= 123 and <= 126
        || PythonUnicode.Category(c) is UnicodeCategory.ConnectorPunctuation or UnicodeCategory.DashPunctuation
            or UnicodeCategory.OpenPunctuation or UnicodeCategory.ClosePunctuation
            or UnicodeCategory.InitialQuotePunctuation or UnicodeCategory.FinalQuotePunctuation
            or UnicodeCategory.OtherPunctuation;

    /// <summary>
    /// WordpieceTokenizer.tokenize for one word: greedy longest-match-first, continuation pieces prefixed "##";
    /// a word over 100 code points, or one that cannot be covered, is a single [UNK].
    /// </summary>
    private IEnumerable<string> WordPiece(string word)
    {
        if (word.Length > 2 * MaxWordCodePoints) return ["[UNK]"]; // surely over 100 code points
        // Piece boundaries fall on code points, as in Python's list(token).
        var boundaries = new List<int>(word.Length + 1); // UTF-16 offset of each code point, plus the end
        for (int i = 0; i < word.Length; i += char.IsSurrogatePair(word, i) ? 2 : 1) boundaries.Add(i);
        int codePoints = boundaries.Count;
        boundaries.Add(word.Length);
        if (codePoints > MaxWordCodePoints) return ["[UNK]"];

        var pieces = new List<string>();
        for (int start = 0; start < codePoints;)
        {
            string? match = null;
            int end = codePoints;
            for (; end > start; end--)
            {
                var candidate = word[boundaries[start]..boundaries[end]];
                if (start > 0) candidate = "##" + candidate;
                if (vocabulary.TryGetId(candidate, out _)) { match = candidate; break; }
            }
            if (match == null) return ["[UNK]"];
            pieces.Add(match);
            start = end;
        }
        return pieces;
    }
}
