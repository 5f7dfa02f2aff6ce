using System.Text;

namespace ManagedClip.Tokenization;

/// <summary>
/// ftfy's "utf-8-variants" decoder: strict UTF-8 (what Python's decoder accepts: shortest forms, no encoded
/// surrogates, nothing above U+10FFFF) plus two non-standard forms, CESU-8 surrogate pairs
/// (ED A0..AF 80..BF ED B0..BF 80..BF) and Java's C0 80 for U+0000. Anything else makes the attempt fail.
/// </summary>
internal static class Utf8VariantsDecoder
{
    public static bool TryDecode(ReadOnlySpan<byte> bytes, out string text)
    {
        var output = new StringBuilder(bytes.Length);
        int i = 0;
        while (i < bytes.Length)
        {
            byte b = bytes[i];
            if (b < 0x80) { output.Append((char)b); i++; continue; }
            if (b == 0xC0 && i + 1 < bytes.Length && bytes[i + 1] == 0x80) { output.Append('\0'); i += 2; continue; }
            if (b == 0xED && IsCesu8Pair(bytes[i..]))
            {
                int codePoint = 0x10000 + ((bytes[i + 1] & 0x0F) << 16) + ((bytes[i + 2] & 0x3F) << 10)
                                + ((bytes[i + 4] & 0x0F) << 6) + (bytes[i + 5] & 0x3F);
                output.Append(char.ConvertFromUtf32(codePoint));
                i += 6;
                continue;
            }
            if (!TryDecodeStandardSequence(bytes[i..], out int scalar, out int length))
            {
                text = "";
                return false;
            }
            PythonUnicode.AppendCodePoint(output, scalar);
            i += length;
        }
        text = output.ToString();
        return true;
    }

    private static bool IsCesu8Pair(ReadOnlySpan<byte> s) =>
        s.Length >= 6 && s[0] == 0xED && s[1] is >= 0xA0 and <= 0xAF && IsContinuation(s[2])
        && s[3] == 0xED && s[4] is >= 0xB0 and <= 0xBF && IsContinuation(s[5]);

    private static bool IsContinuation(byte b) => (b & 0xC0) == 0x80;

    // One well-formed multi-byte sequence (Unicode Table 3-7).
    private static bool TryDecodeStandardSequence(ReadOnlySpan<byte> s, out int scalar, out int length)
    {
        scalar = 0;
        byte lead = s[0];
        (length, int min, byte secondLow, byte secondHigh) = lead switch
        {
            >= 0xC2 and <= 0xDF => (2, 0x80, (byte)0x80, (byte)0xBF),
            0xE0 => (3, 0x800, (byte)0xA0, (byte)0xBF),
            >= 0xE1 and <= 0xEC or 0xEE or 0xEF => (3, 0x800, (byte)0x80, (byte)0xBF),
            0xED => (3, 0x800, (byte)0x80, (byte)0x9F),
            0xF0 => (4, 0x10000, (byte)0x90, (byte)0xBF),
            >= 0xF1 and <= 0xF3 => (4, 0x10000, (byte)0x80, (byte)0xBF),
            0xF4 => (4, 0x10000, (byte)0x80, (byte)0x8F),
            _ => (0, 0, (byte)0, (byte)0),
        };
        if (length == 0 || s.Length < length || s[1] < secondLow || s[1] > secondHigh) return false;
        scalar = lead & (0xFF >> (length + 1));
        for (int k = 1; k < length; k++)
        {
            if (!IsContinuation(s[k])) return false;
            scalar = (scalar << 6) | (s[k] & 0x3F);
        }
        return scalar >= min;
    }
}
