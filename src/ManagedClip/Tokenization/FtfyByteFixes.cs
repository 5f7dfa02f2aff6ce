namespace ManagedClip.Tokenization;

/// <summary>
/// The byte-level repairs ftfy 6.1.1 applies between re-encoding mojibake and decoding it as UTF-8
/// (<c>restore_byte_a0</c> and <c>replace_lossy_sequences</c>). Each mirrors a Python byte regex applied with
/// <c>re.sub</c>: leftmost match, alternatives tried in the written order, scanning resumes after a match.
/// </summary>
internal static class FtfyByteFixes
{
    // ALTERED_UTF8_RE: UTF-8 sequences that would be valid if a space were byte A0 (a NBSP some program turned into
    // a plain space). Returns the match length at `i`, or 0.
    private static int AlteredUtf8MatchLength(ReadOnlySpan<byte> s, int i)
    {
        static bool Cont(byte b) => b is >= 0x80 and <= 0xBF;
        static bool ContNoA0Or85(byte b) => b is >= 0x80 and <= 0x84 or >= 0x86 and <= 0x9F or >= 0xA1 and <= 0xBF;
        int left = s.Length - i;
        byte b0 = s[i];
        if (left >= 2 && b0 is 0xC2 or 0xC3 or 0xC5 or 0xCE or 0xD0 or 0xD9 && s[i + 1] == 0x20) return 2;
        if (left >= 3 && b0 is 0xE2 or 0xE3 && s[i + 1] == 0x20 && ContNoA0Or85(s[i + 2])) return 3;
        if (left >= 3 && b0 is >= 0xE0 and <= 0xE3 && ContNoA0Or85(s[i + 1]) && s[i + 2] == 0x20) return 3;
        if (left >= 4 && b0 == 0xF0)
        {
            byte b1 = s[i + 1], b2 = s[i + 2], b3 = s[i + 3];
            if (b1 == 0x20 && Cont(b2) && Cont(b3)) return 4;
            if (Cont(b1) && b2 == 0x20 && Cont(b3)) return 4;
            if (Cont(b1) && Cont(b2) && b3 == 0x20) return 4;
        }
        return 0;
    }

    /// <summary><c>ALTERED_UTF8_RE.search</c>.</summary>
    public static bool ContainsAlteredUtf8(ReadOnlySpan<byte> bytes)
    {
        for (int i = 0; i < bytes.Length; i++)
            if (AlteredUtf8MatchLength(bytes, i) > 0) return true;
        return false;
    }

    /// <summary>
    /// <c>restore_byte_a0</c>: first " Ã " as a word (not before "quele", "quela", "quilo", "s " or a second space)
    /// becomes "à " keeping the space, then every altered UTF-8 sequence gets its spaces turned back into A0.
    /// </summary>
    public static byte[] RestoreByteA0(byte[] bytes)
    {
        var withAGrave = new List<byte>(bytes.Length + 8);
        for (int i = 0; i < bytes.Length; i++)
        {
            withAGrave.Add(bytes[i]);
            if (bytes[i] == 0xC3 && i + 1 < bytes.Length && bytes[i + 1] == 0x20 && !FollowedByAGraveException(bytes, i + 2))
                withAGrave.Add(0xA0); // "\xc3 " -> "\xc3\xa0 "
        }
        var s = withAGrave.ToArray();
        for (int i = 0; i < s.Length;)
        {
            int length = AlteredUtf8MatchLength(s, i);
            if (length == 0) { i++; continue; }
            for (int k = i; k < i + length; k++)
                if (s[k] == 0x20) s[k] = 0xA0;
            i += length;
        }
        return s;
    }

    // A_GRAVE_WORD_RE's negative lookahead: (?! |quele|quela|quilo|s )
    private static bool FollowedByAGraveException(byte[] s, int at)
    {
        static bool StartsWith(byte[] s, int at, string ascii)
        {
            if (at + ascii.Length > s.Length) return false;
            for (int k = 0; k < ascii.Length; k++)
                if (s[at + k] != ascii[k]) return false;
            return true;
        }
        return StartsWith(s, at, " ") || StartsWith(s, at, "quele") || StartsWith(s, at, "quela")
               || StartsWith(s, at, "quilo") || StartsWith(s, at, "s ");
    }

    /// <summary>
    /// <c>replace_lossy_sequences</c>: a UTF-8-looking sequence in which a byte was lost (byte 1A, the sloppy codecs'
    /// stand-in for U+FFFD, or sometimes '?') decodes as U+FFFD as a whole (EF BF BD).
    /// </summary>
    public static byte[] ReplaceLossySequences(byte[] bytes)
    {
        List<byte>? output = null;
        int copiedUpTo = 0;
        for (int i = 0; i < bytes.Length;)
        {
            int length = LossyUtf8MatchLength(bytes, i);
            if (length == 0) { i++; continue; }
            output ??= new List<byte>(bytes.Length);
            for (int k = copiedUpTo; k < i; k++) output.Add(bytes[k]);
            output.Add(0xEF); output.Add(0xBF); output.Add(0xBD);
            i += length;
            copiedUpTo = i;
        }
        if (output == null) return bytes;
        for (int k = copiedUpTo; k < bytes.Length; k++) output.Add(bytes[k]);
        return output.ToArray();
    }

    // LOSSY_UTF8_RE, alternative by alternative.
    private static int LossyUtf8MatchLength(byte[] s, int i)
    {
        static bool Sub(byte b) => b == 0x1A;
        static bool SubOrQ(byte b) => b is 0x1A or (byte)'?';
        static bool SubOrCont(byte b) => b == 0x1A || b is >= 0x80 and <= 0xBF;
        static bool SubQOrCont(byte b) => b is 0x1A or (byte)'?' || b is >= 0x80 and <= 0xBF;
        int left = s.Length - i;
        byte b0 = s[i];
        if (left >= 2 && b0 is >= 0xC2 and <= 0xDF && Sub(s[i + 1])) return 2;
        if (left >= 2 && b0 is 0xC2 or 0xC3 && s[i + 1] == (byte)'?') return 2;
        if (left >= 6 && b0 == 0xED && s[i + 1] is >= 0xA0 and <= 0xAF && s[i + 3] == 0xED && s[i + 4] is >= 0xB0 and <= 0xBF)
        {
            if (SubOrQ(s[i + 2]) && SubQOrCont(s[i + 5])) return 6;
            if (SubQOrCont(s[i + 2]) && SubOrQ(s[i + 5])) return 6;
        }
        if (left >= 3 && b0 is >= 0xE0 and <= 0xEF)
        {
            if (SubOrQ(s[i + 1]) && SubOrCont(s[i + 2])) return 3;
            if (SubOrCont(s[i + 1]) && SubOrQ(s[i + 2])) return 3;
        }
        if (left >= 4 && b0 is >= 0xF0 and <= 0xF4)
        {
            byte b1 = s[i + 1], b2 = s[i + 2], b3 = s[i + 3];
            if (SubOrQ(b1) && SubOrCont(b2) && SubOrCont(b3)) return 4;
            if (SubOrCont(b1) && SubOrQ(b2) && SubOrCont(b3)) return 4;
            if (SubOrCont(b1) && SubOrCont(b2) && SubOrQ(b3)) return 4;
        }
        return Sub(b0) ? 1 : 0;
    }
}
