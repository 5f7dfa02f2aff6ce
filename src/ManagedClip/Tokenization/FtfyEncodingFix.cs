using System.Text;

namespace ManagedClip.Tokenization;

/// <summary>
/// ftfy 6.1.1's <c>fix_encoding</c>: undo UTF-8 text that was decoded in a single-byte encoding ("mojibake",
/// e.g. "doesnâ€™t" → "doesn’t"), repeatedly, since text can be mangled more than once.
/// </summary>
internal static class FtfyEncodingFix
{
    /// <summary><c>fix_encoding_and_explain(text).text</c> with the default configuration.</summary>
    public static string FixEncoding(string text)
    {
        while (true)
        {
            var fixedText = FixOneStep(text);
            if (fixedText == text) return fixedText;
            text = fixedText;
        }
    }

    // _fix_encoding_one_step_and_explain
    private static string FixOneStep(string text)
    {
        if (text.Length == 0 || IsAscii(text) || !FtfyBadness.IsBad(text)) return text;

        // The usual case: UTF-8 bytes decoded in a single-byte encoding. Re-encode and decode as UTF-8.
        bool latin1Possible = false;
        foreach (var encoding in SingleByteEncoding.TriedForMojibake)
        {
            if (!encoding.CanEncode(text)) continue;
            latin1Possible |= encoding == SingleByteEncoding.Latin1;
            var bytes = encoding.Encode(text);
            if (FtfyByteFixes.ContainsAlteredUtf8(bytes)) bytes = FtfyByteFixes.RestoreByteA0(bytes);
            if (encoding.IsSloppy) bytes = FtfyByteFixes.ReplaceLossySequences(bytes);
            if (Utf8VariantsDecoder.TryDecode(bytes, out var decoded)) return decoded;
        }

        // Mojibake embedded in otherwise consistent text: fix the pieces that look like UTF-8 on their own.
        if (ContainsUtf8LookingSequence(text))
        {
            var fixedPieces = DecodeInconsistentUtf8(text);
            if (fixedPieces != text) return fixedPieces;
        }

        // Latin-1 with C1 controls that was meant as Windows-1252. (ftfy also checks for "windows-1252" among the
        // possible encodings here, a name its list never contains, so that early exit never happens.)
        if (latin1Possible && TryDecodeLatin1AsStrictWindows1252(text, out var windows1252) && windows1252 != text)
            return windows1252;

        if (ContainsC1Control(text)) return FixC1Controls(text);
        return text;
    }

    private static bool IsAscii(string text) => System.Text.Ascii.IsValid(text);

    private static bool ContainsC1Control(string text) => text.AsSpan().ContainsAnyInRange('\u0080', '\u009f');

    /// <summary><c>fix_c1_controls</c>: each U+0080..U+009F becomes its sloppy Windows-1252 character.</summary>
    public static string FixC1Controls(string text)
    {
        if (!ContainsC1Control(text)) return text;
        var chars = text.ToCharArray();
        for (int i = 0; i < chars.Length; i++)
            if (chars[i] is >= '\u0080' and <= '\u009f') chars[i] = SingleByteEncoding.SloppyWindows1252.Decode((byte)chars[i]);
        return new string(chars);
    }

    // text.encode('latin-1').decode('windows-1252'): strict Windows-1252 leaves 81, 8D, 8F, 90, 9D undefined.
    private static bool TryDecodeLatin1AsStrictWindows1252(string text, out string decoded)
    {
        var chars = text.ToCharArray();
        for (int i = 0; i < chars.Length; i++)
        {
            if (chars[i] is < '\u0080' or > '\u009f') continue;
            if (chars[i] is '\u0081' or '\u008d' or '\u008f' or '\u0090' or '\u009d') { decoded = text; return false; }
            chars[i] = SingleByteEncoding.SloppyWindows1252.Decode((byte)chars[i]);
        }
        decoded = new string(chars);
        return true;
    }

    // UTF8_CLUES: characters that bytes C2..DF, E0..EF, F0..F4 and continuation bytes 80..BF decode to in the
    // Latin-1-like encodings ftfy supports.
    private static readonly CodePointSet FirstOf2 = new(
        "ÂÃÄÅÆÇÈÉÊËÌÍÎÏÐÑÒÓÔÕÖ×ØÙÚÛÜÝÞßĂĆČĎĐĘĚĞİĹŃŇŐŘŞŢŮŰ",
        "ΒΓΔΕΖΗΘΙΚΛΜΝΞΟΠΡΣΤΥΦΧΨΩΪΫάέήίВГДЕЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯ");
    private static readonly CodePointSet FirstOf3 = new("àáâãäåæçèéêëìíîïăćčďęěĺŕΰαβγδεζηθικλμνξοабвгдежзийклмноп");
    private static readonly CodePointSet FirstOf4 = new("ðóđğπσру");
    private const string ContinuationLetters =
        "\u0080-\u00bfĄąĽľŁłŒœŚśŞşŠšŤťŸŹźŻżŽžƒˆˇ˘˛˜˝΄΅ΆΈΉΊΌΎΏЁЂЃЄЅІЇЈЉЊЋЌЎЏёђѓєѕіїјљњћќўџҐґ";
    private static readonly CodePointSet Continuation = new(ContinuationLetters, "–—―‘’‚“”„†‡•…‰‹›€№™ ");
    // Continuation characters that rarely stand for themselves next to mojibake (no spaces, dashes, quotes, ellipses).
    private static readonly CodePointSet ContinuationStrict = new(ContinuationLetters, "†‡•‰‹›€№™");

    /// <summary>
    /// UTF8_DETECTOR_RE at <paramref name="start"/>: not preceded by a strict continuation character, then one or more
    /// (first-of-2 + 1, first-of-3 + 2, first-of-4 + 3 continuation characters). Returns the match length or 0.
    /// </summary>
    private static int Utf8LookingSequenceLength(string text, int start)
    {
        if (start > 0 && ContinuationStrict.Contains(text[start - 1])) return 0;
        int i = start;
        while (i < text.Length)
        {
            char lead = text[i];
            int continuationCount = FirstOf2.Contains(lead) ? 1 : FirstOf3.Contains(lead) ? 2 : FirstOf4.Contains(lead) ? 3 : 0;
            if (continuationCount == 0 || i + continuationCount >= text.Length) break;
            bool all = true;
            for (int k = 1; k <= continuationCount; k++)
                if (!Continuation.Contains(text[i + k])) { all = false; break; }
            if (!all) break;
            i += continuationCount + 1;
        }
        return i - start;
    }

    private static bool ContainsUtf8LookingSequence(string text)
    {
        for (int i = 0; i < text.Length; i++)
            if (Utf8LookingSequenceLength(text, i) > 0) return true;
        return false;
    }

    /// <summary>
    /// <c>decode_inconsistent_utf8</c>: each UTF-8-looking run that is shorter than the whole text and looks bad on its
    /// own is replaced by <see cref="FixEncoding"/> of it.
    /// </summary>
    private static string DecodeInconsistentUtf8(string text)
    {
        var output = new StringBuilder(text.Length);
        int copiedUpTo = 0;
        for (int i = 0; i < text.Length;)
        {
            int length = Utf8LookingSequenceLength(text, i);
            if (length == 0) { i++; continue; }
            var piece = text.Substring(i, length);
            output.Append(text, copiedUpTo, i - copiedUpTo);
            output.Append(length < text.Length && FtfyBadness.IsBad(piece) ? FixEncoding(piece) : piece);
            i += length;
            copiedUpTo = i;
        }
        return output.Append(text, copiedUpTo, text.Length - copiedUpTo).ToString();
    }
}
