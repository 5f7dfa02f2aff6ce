using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;

namespace ManagedClip.Cli;

/// <summary>
/// Escapes only what JSON requires or what could mislead a terminal, so labels and paths stay readable:
/// <c>"Röntgen"</c> is written as is, where System.Text.Json's default encoder writes <c>"R\u00F6ntgen"</c>.
/// Escaped: <c>"</c> and <c>\</c>; control characters (C0, DEL, C1: no terminal escape sequence can pass);
/// format characters (bidirectional overrides, zero-width characters), line and paragraph separators, lone
/// surrogates, private-use and unassigned code points. The output is valid JSON and plain printable text.
/// </summary>
internal sealed class ReadableJsonEncoder : JavaScriptEncoder
{
    public static ReadableJsonEncoder Instance { get; } = new();

    private ReadableJsonEncoder() { }

    // The longest escape of one scalar: a supplementary code point as two \uXXXX escapes.
    public override int MaxOutputCharactersPerInputCharacter => 12;

    public override bool WillEncode(int unicodeScalar)
    {
        if (unicodeScalar is < 0x20 or '"' or '\\' or (>= 0x7F and <= 0x9F)) return true;
        if (unicodeScalar < 0x7F) return false;
        if (unicodeScalar > 0x10FFFF) return true;
        return CharUnicodeInfo.GetUnicodeCategory(unicodeScalar) is UnicodeCategory.Format or UnicodeCategory.LineSeparator
            or UnicodeCategory.ParagraphSeparator or UnicodeCategory.Surrogate or UnicodeCategory.PrivateUse
            or UnicodeCategory.OtherNotAssigned;
    }

    public override unsafe int FindFirstCharacterToEncode(char* text, int textLength)
    {
        var span = new ReadOnlySpan<char>(text, textLength);
        for (int i = 0; i < span.Length;)
        {
            // A lone surrogate is not a scalar: it is escaped (DecodeFromUtf16 reports it as invalid).
            if (Rune.DecodeFromUtf16(span[i..], out var rune, out int used) != System.Buffers.OperationStatus.Done
                || WillEncode(rune.Value))
                return i;
            i += used;
        }
        return -1;
    }

    public override unsafe bool TryEncodeUnicodeScalar(int unicodeScalar, char* buffer, int bufferLength, out int numberOfCharactersWritten)
    {
        var destination = new Span<char>(buffer, bufferLength);
        numberOfCharactersWritten = 0;
        if (!WillEncode(unicodeScalar))
        {
            if (!new Rune(unicodeScalar).TryEncodeToUtf16(destination, out numberOfCharactersWritten)) return false;
            return true;
        }
        string escape = unicodeScalar switch
        {
            '"' => "\\\"",
            '\\' => "\\\\",
            '\n' => "\\n",
            '\r' => "\\r",
            '\t' => "\\t",
            '\b' => "\\b",
            '\f' => "\\f",
            <= 0xFFFF => $"\\u{unicodeScalar:X4}",
            // Above the BMP, JSON escapes a code point as its UTF-16 surrogate pair.
            _ => $"\\u{0xD800 + ((unicodeScalar - 0x10000) >> 10):X4}\\u{0xDC00 + ((unicodeScalar - 0x10000) & 0x3FF):X4}",
        };
        if (escape.Length > destination.Length) return false;
        escape.CopyTo(destination);
        numberOfCharactersWritten = escape.Length;
        return true;
    }
}
