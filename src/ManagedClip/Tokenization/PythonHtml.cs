using System.Text;

namespace ManagedClip.Tokenization;

/// <summary>
/// Python 3.11's <c>html.unescape</c>: replaces every character reference matched by
/// <c>&amp;(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f &lt;&amp;#;]{1,32};?)</c>, with the HTML5 rules for numeric
/// references (Windows-1252 remapping of 0x80..0x9F, U+FFFD for surrogates and out-of-range numbers, nothing for
/// non-characters and most controls) and for named ones (exact name, else the longest known prefix such as "&amp;amp"
/// in "&amp;ampx").
/// One deliberate difference: a decimal reference with more than 4,300 digits makes Python raise (its int() digit
/// limit); here it is simply out of range and becomes U+FFFD.
/// </summary>
internal static class PythonHtml
{
    public static string Unescape(string text)
    {
        if (!text.Contains('&')) return text;
        var output = new StringBuilder(text.Length);
        int copiedUpTo = 0;
        for (int i = text.IndexOf('&'); i >= 0 && i < text.Length; i = text.IndexOf('&', i))
        {
            if (TryReplaceReference(text, i, out var replacement, out int end))
            {
                output.Append(text, copiedUpTo, i - copiedUpTo).Append(replacement);
                copiedUpTo = end;
                i = end;
            }
            else i++;
        }
        return output.Append(text, copiedUpTo, text.Length - copiedUpTo).ToString();
    }

    /// <summary>Matches the reference starting at the '&amp;' at <paramref name="ampersand"/>.</summary>
    private static bool TryReplaceReference(string text, int ampersand, out string replacement, out int end)
    {
        int i = ampersand + 1;
        replacement = "";
        end = i;
        if (i < text.Length && text[i] == '#')
        {
            bool hex = i + 1 < text.Length && text[i + 1] is 'x' or 'X';
            int digitsStart = i + 1;
            int digitsEnd = digitsStart;
            while (digitsEnd < text.Length && char.IsAsciiDigit(text[digitsEnd])) digitsEnd++;
            if (digitsEnd == digitsStart && hex)
            {
                digitsStart = i + 2;
                digitsEnd = digitsStart;
                while (digitsEnd < text.Length && char.IsAsciiHexDigit(text[digitsEnd])) digitsEnd++;
            }
            else hex = false;
            if (digitsEnd == digitsStart) return false; // '#' cannot start a name either
            end = digitsEnd < text.Length && text[digitsEnd] == ';' ? digitsEnd + 1 : digitsEnd;
            replacement = NumericReference(text.AsSpan(digitsStart, digitsEnd - digitsStart), hex);
            return true;
        }

        // Named: 1..32 code points that are not \t \n \f space < & # ;, then an optional ';'.
        int nameEnd = i, codePoints = 0;
        while (nameEnd < text.Length && codePoints < HtmlEntityTable.LongestHtml5Name
               && text[nameEnd] is not ('\t' or '\n' or '\f' or ' ' or '<' or '&' or '#' or ';'))
        {
            nameEnd += char.IsSurrogatePair(text, nameEnd) ? 2 : 1;
            codePoints++;
        }
        if (codePoints == 0) return false;
        if (nameEnd < text.Length && text[nameEnd] == ';') nameEnd++;
        end = nameEnd;
        string name = text[i..nameEnd];
        if (HtmlEntityTable.Html5.TryGetValue(name, out var value))
        {
            replacement = value;
            return true;
        }
        // Longest known prefix of at least 2 characters; the rest of the name is kept as text.
        // (Prefixes are ASCII names, so cutting by UTF-16 index is cutting by code point.)
        for (int length = name.Length - 1; length > 1; length--)
        {
            if (char.IsLowSurrogate(name[length])) continue;
            if (HtmlEntityTable.Html5.TryGetValue(name[..length], out value))
            {
                replacement = value + name[length..];
                return true;
            }
        }
        replacement = "&" + name;
        return true;
    }

    private static string NumericReference(ReadOnlySpan<char> digits, bool hex)
    {
        // Leading zeros never matter; more than 8 significant digits is beyond U+10FFFF in either base.
        digits = digits.TrimStart('0');
        if (digits.Length > 8) return "\uFFFD";
        long number = 0;
        foreach (char d in digits) number = number * (hex ? 16 : 10) + HexDigitValue(d);
        if (number is >= 0x80 and <= 0x9F) return SingleByteEncoding.SloppyWindows1252.Decode((byte)number).ToString();
        switch (number)
        {
            case 0x00: return "\uFFFD";
            case 0x0D: return "\r";
            case >= 0xD800 and <= 0xDFFF or > 0x10FFFF: return "\uFFFD";
        }
        if (number is >= 0x01 and <= 0x08 or >= 0x0E and <= 0x1F or 0x7F or 0x0B or >= 0xFDD0 and <= 0xFDEF
            || (number & 0xFFFE) == 0xFFFE)
            return "";
        return char.ConvertFromUtf32((int)number);
    }

    private static int HexDigitValue(char d) => d <= '9' ? d - '0' : (d | 0x20) - 'a' + 10;
}
