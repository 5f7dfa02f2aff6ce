using System.Text;

namespace ManagedClip.Tests.Fuzz;

/// <summary>
/// Deterministic mutations of a seed input: the same (seed, case) always gives the same bytes, so a failing case is
/// reproduced from the numbers in its report. Byte-level operators for binary formats (bit flips, boundary integers
/// at aligned offsets, cuts, deletions, duplications, splices with another seed) and text operators for JSON and
/// plain text (boundary numbers, surrogate and control escapes, invalid UTF-8, deep nesting, repeated keys).
/// </summary>
internal static class Mutator
{
    private static readonly long[] BoundaryIntegers =
        [0, 1, -1, 2, 7, 8, 127, 128, 255, 256, 0x7FFF, 0x8000, 0xFFFF, 0x10000, int.MaxValue, int.MinValue, uint.MaxValue,
         1L << 32, long.MaxValue, 100_000, 65535 * 65535L];

    private static readonly string[] TextInsertions =
        ["-1", "0", "1e309", "-0.0", "99999999999999999999", "4294967296", "null", "true", "[]", "{}", "\"\"", "\\ud800",
         "\\udc00\\ud800", "\\u0000", "\\uFFFE", "\\\"", "\u0085", "\u2028", "\uFFFE", "\u0301", "&amp;", "&#xD800;", "Ã©",
         "[PAD]", "[MASK]", "\t", "\r\n", "\r", "#", "\"module.", "\"state_dict\"", "\"__metadata__\"", "\"dtype\":\"F16\""];

    /// <summary>One mutated input: 1–4 operators applied to <paramref name="seed"/>; <paramref name="others"/> feed splices.</summary>
    public static byte[] Mutate(Random random, byte[] seed, IReadOnlyList<byte[]> others, bool text)
    {
        var data = new List<byte>(seed);
        int operators = 1 + random.Next(4);
        for (int i = 0; i < operators; i++)
        {
            if (text && random.Next(2) == 0) MutateText(random, data);
            else MutateBytes(random, data, others);
        }
        return data.ToArray();
    }

    private static void MutateBytes(Random random, List<byte> data, IReadOnlyList<byte[]> others)
    {
        if (data.Count == 0) { data.Add((byte)random.Next(256)); return; }
        int at = random.Next(data.Count);
        switch (random.Next(9))
        {
            case 0: data[at] ^= (byte)(1 << random.Next(8)); break;
            case 1: data[at] = (byte)(new[] { 0, 1, 0x7F, 0x80, 0xFE, 0xFF })[random.Next(6)]; break;
            case 2: // a boundary integer of 1, 2, 4 or 8 bytes, either byte order, at an aligned offset
            {
                int width = 1 << random.Next(4);
                at -= at % width;
                long value = BoundaryIntegers[random.Next(BoundaryIntegers.Length)];
                var bytes = BitConverter.GetBytes(value).Take(width).ToArray();
                if (random.Next(2) == 0) Array.Reverse(bytes);
                for (int i = 0; i < width && at + i < data.Count; i++) data[at + i] = bytes[i];
                break;
            }
            case 3: data.RemoveRange(at, data.Count - at); break; // cut the file short
            case 4: data.RemoveRange(at, Math.Min(data.Count - at, 1 + random.Next(64))); break;
            case 5: // duplicate a range in place
            {
                int length = Math.Min(data.Count - at, 1 + random.Next(256));
                data.InsertRange(at, data.GetRange(at, length));
                break;
            }
            case 6:
            {
                var noise = new byte[1 + random.Next(32)];
                random.NextBytes(noise);
                data.InsertRange(at, noise);
                break;
            }
            case 7: // splice: the head of this input, the tail of another
            {
                var other = others[random.Next(others.Count)];
                if (other.Length == 0) break;
                int from = random.Next(other.Length);
                data.RemoveRange(at, data.Count - at);
                data.AddRange(other.AsSpan(from).ToArray());
                break;
            }
            default: // a run of one byte, as in zero-filled or 0xFF-filled damage
            {
                byte fill = random.Next(2) == 0 ? (byte)0 : (byte)0xFF;
                for (int i = at; i < Math.Min(data.Count, at + 1 + random.Next(512)); i++) data[i] = fill;
                break;
            }
        }
    }

    private static void MutateText(Random random, List<byte> data)
    {
        int at = data.Count == 0 ? 0 : random.Next(data.Count + 1);
        switch (random.Next(6))
        {
            case 0: data.InsertRange(at, Encoding.UTF8.GetBytes(TextInsertions[random.Next(TextInsertions.Length)])); break;
            case 1: // replace the digits around a position with a boundary number
            {
                int start = at, end = at;
                while (start > 0 && char.IsAsciiDigit((char)data[start - 1])) start--;
                while (end < data.Count && char.IsAsciiDigit((char)data[end])) end++;
                data.RemoveRange(start, end - start);
                data.InsertRange(start, Encoding.ASCII.GetBytes(BoundaryIntegers[random.Next(BoundaryIntegers.Length)].ToString()));
                break;
            }
            case 2: data.InsertRange(at, new[] { (byte)(0x80 + random.Next(0x80)) }); break; // a stray continuation byte: invalid UTF-8
            case 3: data.InsertRange(at, Encoding.ASCII.GetBytes(new string('[', 1 + random.Next(200)))); break;
            case 4: // repeat a line or a quoted key
            {
                if (data.Count == 0) break;
                int end = data.IndexOf((byte)'\n', at < data.Count ? at : 0);
                int start = data.LastIndexOf((byte)'\n', Math.Max(0, Math.Min(at, data.Count - 1)));
                if (end > start && start >= 0) data.InsertRange(end, data.GetRange(start, end - start));
                break;
            }
            default: // a random code point, possibly a surrogate half written as UTF-8 (invalid) or a non-character
            {
                int codePoint = random.Next(4) switch { 0 => random.Next(0x20), 1 => 0xD800 + random.Next(0x800), 2 => 0xFFF0 + random.Next(16), _ => random.Next(0x110000) };
                data.InsertRange(at, EncodeLoosely(codePoint));
                break;
            }
        }
    }

    /// <summary>UTF-8 bytes of any code point, surrogates included (as Python's "surrogatepass" would write them).</summary>
    private static byte[] EncodeLoosely(int c) => c switch
    {
        < 0x80 => [(byte)c],
        < 0x800 => [(byte)(0xC0 | c >> 6), (byte)(0x80 | c & 0x3F)],
        < 0x10000 => [(byte)(0xE0 | c >> 12), (byte)(0x80 | (c >> 6) & 0x3F), (byte)(0x80 | c & 0x3F)],
        _ => [(byte)(0xF0 | c >> 18), (byte)(0x80 | (c >> 12) & 0x3F), (byte)(0x80 | (c >> 6) & 0x3F), (byte)(0x80 | c & 0x3F)],
    };

    private const string Mojibake = "ÃƒÂ©â€™";

    /// <summary>A random string for the tokenizer: every kind of character the cleaning and BERT steps treat specially.</summary>
    public static string RandomText(Random random)
    {
        var text = new StringBuilder();
        int length = random.Next(4) == 0 ? random.Next(20_000) : random.Next(200);
        for (int i = 0; i < length; i++)
        {
            switch (random.Next(10))
            {
                case 0: text.Append((char)(0xD800 + random.Next(0x800))); break; // lone surrogate halves
                case 1: text.Append((char)random.Next(0x20)); break;
                case 2: text.Append(TextInsertions[random.Next(TextInsertions.Length)]); break;
                case 3: text.Append((char)(0x300 + random.Next(0x70))); break;  // combining marks
                case 4: text.Append((char)(0x4E00 + random.Next(0x5000))); break; // CJK
                case 5: text.Append(Mojibake[random.Next(Mojibake.Length)]); break; // pieces of text ftfy repairs
                case 6: text.Append(char.ConvertFromUtf32(random.Next(0x10000, 0x110000))); break;
                default: text.Append((char)random.Next(0x20, 0x7F)); break;
            }
        }
        return text.ToString();
    }
}
