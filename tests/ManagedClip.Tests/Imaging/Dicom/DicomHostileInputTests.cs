using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using ManagedClip.Imaging;
using ManagedClip.Model;
using Xunit.Abstractions;
using static ManagedClip.Tests.Imaging.Dicom.DicomBytes;

namespace ManagedClip.Tests.Imaging.Dicom;

/// <summary>
/// Damaged and lying DICOM files, made from the reference files: each gets a one-line InvalidDataException that
/// starts with the file's name and says what is wrong, without reading past the data or allocating what the header
/// claims.
/// </summary>
public sealed class DicomHostileInputTests(ITestOutputHelper output)
{
    private static readonly ImagePreprocessor Preprocessor = ImagePreprocessor.For(ClipConfig.BiomedClip);

    private const uint RowsTag = 0x0028_0010, ColumnsTag = 0x0028_0011;

    /// <summary>Refused with a one-line message naming the file; returns the message.</summary>
    private string Refused(byte[] file, string name = "hostile.dcm", ImagePreprocessor? preprocessor = null)
    {
        var error = Assert.Throws<InvalidDataException>(() => (preprocessor ?? Preprocessor).PreprocessToRgb(file, name));
        output.WriteLine(error.Message);
        Assert.StartsWith(name + ": ", error.Message);
        Assert.DoesNotContain('\n', error.Message);
        return error.Message;
    }

    /// <summary>Refused, and the refusal allocated less than <paramref name="bound"/> bytes on this thread.</summary>
    private string RefusedWithin(byte[] file, long bound, ImagePreprocessor? preprocessor = null)
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        string message = Refused(file, preprocessor: preprocessor);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        output.WriteLine($"allocated {allocated:N0} bytes");
        Assert.True(allocated < bound, $"refusing allocated {allocated:N0} bytes (bound {bound:N0})");
        return message;
    }

    /// <summary>
    /// Every prefix at a 61-byte step that ends before the Pixel Data does (cuts in headers, meta, data set,
    /// sequences, pixel data, fragments, RLE segments, the deflate stream) is refused: never an exception from inside
    /// the reader, never a silently partial image. Cuts after the Pixel Data only lose trailing attributes and are valid.
    /// </summary>
    [Theory]
    [InlineData("MR_small")]
    [InlineData("MR_small_bigendian")]
    [InlineData("MR_small_implicit")]
    [InlineData("MR_small_deflated")]
    [InlineData("MR_small_RLE")]
    [InlineData("SC_rgb_rle_16bit_2frame")]
    [InlineData("CT_small_raw_dataset_implicit")]
    [InlineData("mr_small_voi_lut_and_window")]
    [InlineData("mr_brain_8bit_baseline_fragments")]
    [InlineData("MR_small_lossless_sv7_fragments_no_bot")]
    [InlineData("ct_small_12bit_extended")]
    [InlineData("SC_rgb_dcmtk_ebcys2")]
    [InlineData("MR_small_jpeg_ls_lossless")]
    [InlineData("ct_hu_signed_jpegls")]
    public void EveryTruncationBeforeThePixelDataEndIsRefused(string stem)
    {
        var file = Read(stem);
        bool deflated = stem.EndsWith("deflated");
        int dataSetStart = deflated ? file.Length - DataSetOf(file).Length : 0;
        int pixelEnd = deflated ? PixelDataEnd(Inflate(file.AsSpan(dataSetStart))) : PixelDataEnd(file);
        int refused = 0;
        for (int length = 1; length < file.Length; length += 61)
        {
            bool complete = deflated ? Inflate(file.AsSpan(dataSetStart, Math.Max(0, length - dataSetStart))).Length >= pixelEnd : length >= pixelEnd;
            if (complete) continue;
            var error = Assert.Throws<InvalidDataException>(() => Preprocessor.PreprocessToRgb(file.AsSpan(0, length), "cut.dcm"));
            Assert.StartsWith("cut.dcm: ", error.Message);
            Assert.DoesNotContain('\n', error.Message);
            refused++;
        }
        output.WriteLine($"{refused} truncations refused, e.g. {Refused(file[..(file.Length / 2)])}");
        Assert.True(refused > 20);
    }

    /// <summary>Where the Pixel Data element ends: its defined length, or its sequence delimiter (found by byte pattern).</summary>
    private static int PixelDataEnd(byte[] data)
    {
        var span = data.AsSpan();
        int little = span.LastIndexOf((ReadOnlySpan<byte>)[0xE0, 0x7F, 0x10, 0x00]), big = span.LastIndexOf((ReadOnlySpan<byte>)[0x7F, 0xE0, 0x00, 0x10]);
        bool bigEndian = big > little;
        int tag = Math.Max(little, big);
        bool explicitVr = data[tag + 4] == 'O';
        int start = tag + (explicitVr ? 12 : 8);
        uint length = bigEndian ? BinaryPrimitives.ReadUInt32BigEndian(span[(start - 4)..]) : BinaryPrimitives.ReadUInt32LittleEndian(span[(start - 4)..]);
        if (length != 0xFFFF_FFFF) return start + (int)length;
        return start + span[start..].IndexOf((ReadOnlySpan<byte>)[0xFE, 0xFF, 0xDD, 0xE0]) + 8;
    }

    /// <summary>As much of a raw deflate stream as inflates before it ends or breaks.</summary>
    private static byte[] Inflate(ReadOnlySpan<byte> deflated)
    {
        using var inflater = new DeflateStream(new MemoryStream(deflated.ToArray()), CompressionMode.Decompress);
        var result = new MemoryStream();
        var buffer = new byte[4096];
        try
        {
            for (int read; (read = inflater.Read(buffer)) > 0;) result.Write(buffer, 0, read);
        }
        catch (InvalidDataException)
        {
        }
        return result.ToArray();
    }

    [Fact]
    public void JpegFrameOfAnotherSizeThanTheDataSetSaysIsRefused()
    {
        var file = Read("mr_brain_8bit_baseline");
        var message = Refused(PatchUInt16(file, ShortValue(file, RowsTag, "US"), 200));
        Assert.Contains("JPEG frame is 240x256 with 1 component(s), but the data set says 240x200", message);
    }

    [Fact]
    public void DamagedJpegFrameIsRefused()
    {
        var file = (byte[])Read("ct_small_12bit_lossless_sv1").Clone();
        int fragment = PixelDataValue(file) + 8 + 4 + 8; // Basic Offset Table item with one entry, the fragment's item header
        Assert.Equal(0xFFD8, BinaryPrimitives.ReadUInt16BigEndian(file.AsSpan(fragment)));
        file.AsSpan(fragment + 2, 40).Fill(0xFF); // the markers after SOI become fill bytes and garbage
        Refused(file);
    }

    [Fact]
    public void PixelDataLengthPastTheEndIsRefused()
    {
        var file = Read("MR_small");
        int value = PixelDataValue(file, "OW");
        var message = RefusedWithin(PatchUInt32(file, value - 4, 0xFFFF_FFF0), 1 << 20);
        Assert.Contains("declares 4,294,967,280 bytes", message);
    }

    [Fact]
    public void ElementLengthPastTheEndIsRefused()
    {
        var file = Read("MR_small");
        int rows = Find(file, RowsTag, "US");
        var message = Refused(PatchUInt16(file[..(rows + 12)], rows + 6, 0xFFFF));
        Assert.Contains("truncated", message);
        Assert.Contains("(0028,0010)", message);
    }

    [Fact]
    public void RowsAndColumnsLargerThanTheDataAreRefusedBeforeAllocating()
    {
        // 64x64 → 4096x64: 262,144 pixels (under the limit) but only 8 KB of pixel data.
        var original = Read("MR_small");
        var file = PatchUInt16(original, ShortValue(original, RowsTag, "US"), 4096);
        var message = RefusedWithin(file, 256 << 10);
        Assert.Contains("Pixel Data holds 8,192 bytes", message);
        Assert.Contains("need 524,288", message);
    }

    [Fact]
    public void RowsTimesColumnsOverThePixelLimitAreRefusedBeforeDecoding()
    {
        var original = Read("MR_small_RLE");
        var file = PatchUInt16(PatchUInt16(original, ShortValue(original, RowsTag, "US"), 65535), ShortValue(original, ColumnsTag, "US"), 65535);
        var message = RefusedWithin(file, 256 << 10);
        Assert.Contains("65535x65535 = 4,294,836,225 pixels exceeds the limit of 100,000,000", message);
    }

    [Fact]
    public void MoreFramesThanTheOffsetTableListsAreRefused()
    {
        var file = Read("SC_rgb_rle_16bit_2frame");
        int frames = ShortValue(file, 0x0028_0008, "IS");
        Assert.Equal("2 ", Encoding.ASCII.GetString(file, frames, 2));
        Assert.Contains("Basic Offset Table has 2 entries for 9 frame(s)", Refused(Patch(file, frames, "9 "u8)));
    }

    [Fact]
    public void OffsetTableEntriesThatMissTheFragmentsAreRefused()
    {
        var file = Read("SC_rgb_rle_16bit_2frame");
        int table = PixelDataValue(file, "OW") + 8; // after the Basic Offset Table's item header: entries 0, 1272
        Assert.Contains("entry 1 (offset 2,147,483,647) does not point at a fragment", Refused(PatchUInt32(file, table + 4, 0x7FFF_FFFF)));
        Assert.Contains("entry 1 (offset 1,000) does not point at a fragment", Refused(PatchUInt32(file, table + 4, 1000)));
        Assert.Contains("entry 0 (offset 1,272) is out of order", Refused(PatchUInt32(file, table, 1272)));
    }

    [Fact]
    public void FragmentLengthPastTheEndIsRefused()
    {
        var file = Read("MR_small_RLE");
        int table = PixelDataValue(file, "OB");
        int fragment = table + 8 + 4; // Basic Offset Table item (8) with one entry (4), then the fragment's item
        var message = RefusedWithin(PatchUInt32(file, fragment + 4, 0x7FFF_FFF0), 1 << 20);
        Assert.Contains("declares 2,147,483,632 bytes", message);
    }

    [Fact]
    public void RleSegmentOffsetsOutsideTheFrameAreRefused()
    {
        var file = Read("SC_rgb_rle");
        int frame = PixelDataValue(file, "OB") + 8 + 8; // empty Basic Offset Table, then the fragment's item header
        Assert.Equal(3u, BitConverter.ToUInt32(file, frame)); // three segments: R, G, B
        Assert.Contains("segment 2 starts at 16,777,215", Refused(PatchUInt32(file, frame + 12, 0xFF_FFFF)));
        Assert.Contains("4 segments, but 3 sample(s) of 8 bits need 3", Refused(PatchUInt32(file, frame, 4)));
    }

    [Fact]
    public void ForgedRleSegmentThatDecodesShortIsRefused()
    {
        var file = Read("SC_rgb_rle");
        int frame = PixelDataValue(file, "OB") + 8 + 8;
        // The first segment made to end where it starts + 2 bytes: it decodes to far fewer than 100x100 bytes.
        Assert.Contains("segment 0 decodes to", Refused(PatchUInt32(file, frame + 8, (uint)(BitConverter.ToInt32(file, frame + 4) + 2))));
    }

    [Fact]
    public void DeepSequenceNestingIsRefusedWithoutExhaustingTheStack()
    {
        // 100,000 nested undefined-length sequences in a 1.6 MB file: a recursive reader without a cap would overflow the stack.
        const int depth = 100_000;
        var header = Element(0x0008_1115, "SQ", []); // tag, "SQ", 2 reserved bytes, then the length made undefined
        byte[] sequenceOpen = [.. header.AsSpan(0, 8), 0xFF, 0xFF, 0xFF, 0xFF, .. ItemHeader(0xFFFE_E000, 0xFFFF_FFFF)];
        var dataSet = new MemoryStream();
        dataSet.Write(Element(0x0008_0005, "CS", Text("ISO_IR 100")));
        for (int i = 0; i < depth; i++) dataSet.Write(sequenceOpen);
        var message = Refused(Part10("1.2.840.10008.1.2.1", dataSet.ToArray()));
        Assert.Contains("nested more than 64 deep", message);
    }

    [Fact]
    public void DeflateBombIsCappedByThePixelLimit()
    {
        // A 64 MB OB value of zeros deflates to ~60 KB. With a 1-megapixel limit the inflated data set may not
        // exceed 6 · 1,000,000 + 16 MiB bytes; the reader stops there, having allocated about that much.
        var small = new ImagePreprocessor(224, [0.5f, 0.5f, 0.5f], [0.5f, 0.5f, 0.5f], maxPixels: 1_000_000);
        var deflated = Deflate(stream =>
        {
            stream.Write(Element(0x0008_0005, "CS", Text("ISO_IR 100")));
            stream.Write(Element(0x0009_1001, "OB", [])[..8]);
            stream.Write(BitConverter.GetBytes(64u << 20));
            var zeros = new byte[1 << 20];
            for (int i = 0; i < 64; i++) stream.Write(zeros);
        });
        var file = Part10("1.2.840.10008.1.2.1.99", deflated);
        output.WriteLine($"bomb: {file.Length:N0} bytes");
        var message = RefusedWithin(file, 32L << 20, small);
        Assert.Contains("inflates to more than 22,777,216 bytes", message);
    }

    [Fact]
    public void DamagedDeflateStreamIsRefused()
    {
        var file = Read("MR_small_deflated");
        var damaged = (byte[])file.Clone();
        int dataSet = file.Length - DataSetOf(file).Length;
        damaged.AsSpan(dataSet + 2, 64).Fill(0xFF);
        Refused(damaged);
    }

    [Fact]
    public void UnknownVrIsRefused()
    {
        var file = Read("MR_small");
        int rows = Find(file, RowsTag, "US");
        Assert.Contains("unknown VR", Refused(Patch(file, rows + 4, "\0\0"u8)));
    }

    [Fact]
    public void UnknownTransferSyntaxIsRefusedByUid()
    {
        var file = Read("MR_small");
        int uid = ShortValue(file, 0x0002_0010, "UI");
        Assert.Equal("1.2.840.10008.1.2.1\0", Encoding.ASCII.GetString(file, uid, 20));
        Assert.Contains("transfer syntax 1.2.840.10008.1.2.9 is not supported", Refused(Patch(file, uid, "1.2.840.10008.1.2.9\0"u8)));
    }

    [Fact]
    public void TransferSyntaxThatIsNotAUidIsNotEchoed()
    {
        // Found by the dicom-jpeg-ls fuzz target: a damaged meta length made the "UID" the rest of the file, newlines
        // and all, and the refusal quoted it.
        var file = Read("MR_small");
        int uid = ShortValue(file, 0x0002_0010, "UI");
        var message = Refused(Patch(file, uid, "1.2.840\n10008\0"u8));
        Assert.Contains("damaged DICOM file: the Transfer Syntax UID (19 characters) is not a UID", message);
    }

    [Fact]
    public void FileWithoutPixelDataSaysSo()
    {
        var file = Part10("1.2.840.10008.1.2.1", [.. Element(0x0008_0016, "UI", Text("1.2.840.10008.5.1.4.1.1.88.11", '\0'))]);
        Assert.Contains("no Pixel Data (7FE0,0010)", Refused(file));
    }

    [Fact]
    public void WrongItemInsideEncapsulatedPixelDataIsRefused()
    {
        var file = Read("MR_small_RLE");
        int table = PixelDataValue(file, "OB");
        Assert.Contains("expected a pixel data fragment", Refused(PatchUInt16(file, table + 12 + 2, 0xE00D)));
    }

    [Fact]
    public void AWindowWidthBelowOneIsRefusedForLinear()
    {
        var file = Read("MR_small");
        int width = ShortValue(file, 0x0028_1051, "DS");
        string text = Encoding.ASCII.GetString(file, width, BitConverter.ToUInt16(file, width - 2));
        var patched = Patch(file, width, Encoding.ASCII.GetBytes("0.5".PadRight(text.Length)));
        Assert.Contains("Window Width 0.5 is invalid for the LINEAR window", Refused(patched));
    }
}
