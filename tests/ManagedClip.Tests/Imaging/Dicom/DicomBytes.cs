using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;

namespace ManagedClip.Tests.Imaging.Dicom;

/// <summary>
/// Builds and edits DICOM bytes for the tests, independently of the reader under test: element headers are found by
/// their tag and VR letters in explicit VR little endian files, and new files are written element by element.
/// </summary>
internal static class DicomBytes
{
    public static byte[] Read(string stem) => File.ReadAllBytes(DicomReferenceFile.Get(stem).Path);

    /// <summary>Offset of the first header of <paramref name="tag"/> with VR <paramref name="vr"/> (explicit VR little endian).</summary>
    public static int Find(byte[] data, uint tag, string vr)
    {
        Span<byte> header = stackalloc byte[6];
        BinaryPrimitives.WriteUInt16LittleEndian(header, (ushort)(tag >> 16));
        BinaryPrimitives.WriteUInt16LittleEndian(header[2..], (ushort)tag);
        header[4] = (byte)vr[0];
        header[5] = (byte)vr[1];
        int offset = data.AsSpan().IndexOf(header);
        Assert.True(offset >= 0, $"element ({tag >> 16:X4},{tag & 0xFFFF:X4}) {vr} not found");
        return offset;
    }

    /// <summary>Offset of a short-VR element's value (tag 4, VR 2, length 2).</summary>
    public static int ShortValue(byte[] data, uint tag, string vr) => Find(data, tag, vr) + 8;

    /// <summary>Offset of the Pixel Data value in an explicit VR little endian file (header: tag, VR, 2 reserved, length).</summary>
    public static int PixelDataValue(byte[] data, string vr = "OB") => Find(data, 0x7FE0_0010, vr) + 12;

    public static byte[] Patch(byte[] data, int offset, ReadOnlySpan<byte> bytes)
    {
        var copy = (byte[])data.Clone();
        bytes.CopyTo(copy.AsSpan(offset));
        return copy;
    }

    public static byte[] PatchUInt16(byte[] data, int offset, ushort value)
    {
        var bytes = new byte[2];
        BinaryPrimitives.WriteUInt16LittleEndian(bytes, value);
        return Patch(data, offset, bytes);
    }

    public static byte[] PatchUInt32(byte[] data, int offset, uint value)
    {
        var bytes = new byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(bytes, value);
        return Patch(data, offset, bytes);
    }

    /// <summary><paramref name="data"/> with <paramref name="count"/> bytes at <paramref name="offset"/> replaced by <paramref name="insert"/>.</summary>
    public static byte[] Splice(byte[] data, int offset, int count, byte[] insert) =>
        [.. data.AsSpan(0, offset), .. insert, .. data.AsSpan(offset + count)];

    /// <summary>An explicit VR little endian element.</summary>
    public static byte[] Element(uint tag, string vr, byte[] value)
    {
        bool longLength = vr is "OB" or "OW" or "SQ" or "UN" or "UT" or "OV";
        var header = new byte[longLength ? 12 : 8];
        BinaryPrimitives.WriteUInt16LittleEndian(header, (ushort)(tag >> 16));
        BinaryPrimitives.WriteUInt16LittleEndian(header.AsSpan(2), (ushort)tag);
        header[4] = (byte)vr[0];
        header[5] = (byte)vr[1];
        if (longLength) BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(8), (uint)value.Length);
        else BinaryPrimitives.WriteUInt16LittleEndian(header.AsSpan(6), (ushort)value.Length);
        return [.. header, .. value];
    }

    /// <summary>A text value padded to even length with a space (or NUL for UIDs).</summary>
    public static byte[] Text(string text, char pad = ' ') =>
        Encoding.ASCII.GetBytes(text.Length % 2 == 0 ? text : text + pad);

    /// <summary>An item, delimiter or undefined-length header: tag then a 32-bit length.</summary>
    public static byte[] ItemHeader(uint tag, uint length)
    {
        var header = new byte[8];
        BinaryPrimitives.WriteUInt16LittleEndian(header, (ushort)(tag >> 16));
        BinaryPrimitives.WriteUInt16LittleEndian(header.AsSpan(2), (ushort)tag);
        BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(4), length);
        return header;
    }

    /// <summary>A Part 10 file: 128-byte preamble, DICM, File Meta with the transfer syntax, then the encoded data set.</summary>
    public static byte[] Part10(string transferSyntaxUid, byte[] encodedDataSet)
    {
        var syntax = Element(0x0002_0010, "UI", Text(transferSyntaxUid, '\0'));
        var groupLength = Element(0x0002_0000, "UL", BitConverter.GetBytes((uint)syntax.Length));
        return [.. new byte[128], .. "DICM"u8, .. groupLength, .. syntax, .. encodedDataSet];
    }

    /// <summary>The data set of an explicit VR little endian Part 10 file (everything after its File Meta group).</summary>
    public static byte[] DataSetOf(byte[] part10)
    {
        int position = 132;
        while (BinaryPrimitives.ReadUInt16LittleEndian(part10.AsSpan(position)) == 0x0002)
        {
            string vr = Encoding.ASCII.GetString(part10, position + 4, 2);
            position += vr is "OB" or "UN" or "SQ" or "UT"
                ? 12 + (int)BinaryPrimitives.ReadUInt32LittleEndian(part10.AsSpan(position + 8))
                : 8 + BinaryPrimitives.ReadUInt16LittleEndian(part10.AsSpan(position + 6));
        }
        return part10[position..];
    }

    /// <summary>Raw deflate (no zlib header), as the Deflated transfer syntax stores the data set.</summary>
    public static byte[] Deflate(Action<Stream> write)
    {
        using var buffer = new MemoryStream();
        using (var deflate = new DeflateStream(buffer, CompressionLevel.Fastest, leaveOpen: true)) write(deflate);
        return buffer.ToArray();
    }
}
