using System.Globalization;
using System.Text;

namespace ManagedClip.Retrieval;

/// <summary>How embedding rows are stored: float32, or float16 for half the size (rows widened to float32 when read).</summary>
public enum EmbeddingDType
{
    /// <summary>NumPy <c>'&lt;f4'</c>: the model's output bits, unchanged.</summary>
    Float32,

    /// <summary>NumPy <c>'&lt;f2'</c>: each value rounded to the nearest half (about 3 significant digits).</summary>
    Float16,
}

/// <summary>
/// The NumPy <c>.npy</c> format (version 1.0) for one C-ordered little-endian matrix [rows, columns], so that
/// <c>numpy.load(path, mmap_mode="r")</c> maps a part directly. Layout: the magic <c>\x93NUMPY</c>, version bytes
/// 1 and 0, a little-endian uint16 header length, then a Python dict literal padded with spaces and ended by a
/// newline so that the data starts on a 64-byte boundary.
/// </summary>
internal static class NpyFormat
{
    private static ReadOnlySpan<byte> Magic => [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y'];

    // The fixed part before the dict: magic (6), version (2), header length (2).
    private const int PreambleLength = 10;

    public static string Descr(EmbeddingDType dtype) => dtype == EmbeddingDType.Float16 ? "<f2" : "<f4";

    public static int ItemSize(EmbeddingDType dtype) => dtype == EmbeddingDType.Float16 ? 2 : 4;

    /// <summary>The header for a [rows, columns] matrix; the data follows it directly.</summary>
    public static byte[] Header(long rows, int columns, EmbeddingDType dtype)
    {
        var dict = $"{{'descr': '{Descr(dtype)}', 'fortran_order': False, 'shape': ({rows.ToString(CultureInfo.InvariantCulture)}, {columns.ToString(CultureInfo.InvariantCulture)}), }}";
        int unpadded = PreambleLength + dict.Length + 1; // + the closing newline
        int total = (unpadded + 63) / 64 * 64;
        var header = new byte[total];
        Magic.CopyTo(header);
        header[6] = 1;
        header[7] = 0;
        BitConverter.TryWriteBytes(header.AsSpan(8, 2), (ushort)(total - PreambleLength));
        Encoding.ASCII.GetBytes(dict, header.AsSpan(PreambleLength));
        header.AsSpan(PreambleLength + dict.Length, total - PreambleLength - dict.Length - 1).Fill((byte)' ');
        header[^1] = (byte)'\n';
        return header;
    }

    /// <summary>Shape, dtype and data offset of an .npy file, checked against its length; anything else is a clear error.</summary>
    public static (long Rows, int Columns, EmbeddingDType DType, long DataOffset) ReadHeader(string path, Stream stream)
    {
        long length = stream.Length;
        Span<byte> preamble = stackalloc byte[PreambleLength];
        if (length < PreambleLength || stream.ReadAtLeast(preamble, PreambleLength, throwOnEndOfStream: false) < PreambleLength)
            throw Corrupt(path, $"{length} bytes is too short for an .npy file (truncated?)");
        if (!preamble[..6].SequenceEqual(Magic)) throw Corrupt(path, "not an .npy file (magic \\x93NUMPY missing)");
        byte major = preamble[6];
        int headerLength;
        long dictStart;
        if (major == 1)
        {
            headerLength = BitConverter.ToUInt16(preamble[8..]);
            dictStart = PreambleLength;
        }
        else if (major is 2 or 3)
        {
            // Versions 2 and 3 (written by NumPy for huge headers) use a uint32 length; accepted for reading.
            Span<byte> more = stackalloc byte[2];
            if (stream.ReadAtLeast(more, 2, throwOnEndOfStream: false) < 2) throw Corrupt(path, "the header is truncated");
            uint length32 = BitConverter.ToUInt32([preamble[8], preamble[9], more[0], more[1]]);
            if (length32 > 1 << 20) throw Corrupt(path, $"header length {length32} is implausible");
            headerLength = (int)length32;
            dictStart = 12;
        }
        else throw Corrupt(path, $"unsupported .npy version {major}.{preamble[7]}");
        if (dictStart + headerLength > length) throw Corrupt(path, "the header runs past the end of the file (truncated?)");

        var dictBytes = new byte[headerLength];
        stream.ReadExactly(dictBytes);
        string dict;
        try
        {
            dict = new UTF8Encoding(false, true).GetString(dictBytes).Trim();
        }
        catch (DecoderFallbackException)
        {
            throw Corrupt(path, "the header is not text");
        }
        string descr = DictValue(path, dict, "descr").Trim('\'', '"');
        string fortran = DictValue(path, dict, "fortran_order");
        string shape = DictValue(path, dict, "shape");
        var dtype = descr switch
        {
            "<f4" => EmbeddingDType.Float32,
            "<f2" => EmbeddingDType.Float16,
            _ => throw Corrupt(path, $"dtype '{descr}' is not little-endian float32 or float16"),
        };
        if (fortran != "False") throw Corrupt(path, "the matrix is in Fortran order; C order is expected");
        var dims = shape.Trim('(', ')').Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        if (dims.Length != 2
            || !long.TryParse(dims[0], NumberStyles.None, CultureInfo.InvariantCulture, out long rows)
            || !int.TryParse(dims[1], NumberStyles.None, CultureInfo.InvariantCulture, out int columns)
            || columns < 1)
            throw Corrupt(path, $"shape {shape} is not (rows, columns)");
        long dataOffset = dictStart + headerLength;
        int item = ItemSize(dtype);
        if (rows > (long.MaxValue - dataOffset) / columns / item)
            throw Corrupt(path, $"shape {shape} is implausibly large");
        long expected = dataOffset + rows * columns * item;
        if (length != expected)
            throw Corrupt(path, $"{length} bytes, but shape ({rows}, {columns}) of {descr} needs {expected} (truncated or damaged?)");
        return (rows, columns, dtype, dataOffset);
    }

    // The value after 'key': up to the next top-level comma (a shape tuple keeps its commas).
    private static string DictValue(string path, string dict, string key)
    {
        int at = dict.IndexOf($"'{key}'", StringComparison.Ordinal);
        if (at < 0) throw Corrupt(path, $"the header has no '{key}'");
        int colon = dict.IndexOf(':', at);
        if (colon < 0) throw Corrupt(path, $"the header's '{key}' has no value");
        int depth = 0, i = colon + 1;
        for (; i < dict.Length; i++)
        {
            char c = dict[i];
            if (c == '(') depth++;
            else if (c == ')') depth--;
            else if ((c == ',' || c == '}') && depth == 0) break;
        }
        return dict[(colon + 1)..i].Trim();
    }

    private static InvalidDataException Corrupt(string path, string problem) => new($"{path}: {problem}.");
}
