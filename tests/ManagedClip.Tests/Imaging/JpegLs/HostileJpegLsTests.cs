using ManagedClip.Imaging;
using ManagedClip.Imaging.JpegLs;
using ManagedClip.Model;
using Xunit.Abstractions;
using static ManagedClip.Tests.Imaging.Dicom.DicomBytes;

namespace ManagedClip.Tests.Imaging.JpegLs;

/// <summary>
/// Damaged and lying JPEG-LS streams, bare and inside DICOM: each is refused with one line that names the input and
/// says what is wrong, without hanging, reading past the data or allocating what a header claims.
/// </summary>
public sealed class HostileJpegLsTests(ITestOutputHelper output)
{
    private const long MaxPixels = 100_000_000;
    private static readonly ImagePreprocessor Preprocessor = ImagePreprocessor.For(ClipConfig.BiomedClip);

    private static byte[] Stream(string file) => File.ReadAllBytes(Path.Combine(TestData.Dicom, "jpegls", file));

    /// <summary>Refused with a one-line message naming the stream; returns the message.</summary>
    private string Refused(byte[] data, long maxPixels = MaxPixels)
    {
        var error = Assert.Throws<InvalidDataException>(() => JpegLsDecoder.Decode(data, "hostile.jls", maxPixels));
        output.WriteLine(error.Message);
        Assert.StartsWith("hostile.jls: ", error.Message);
        Assert.DoesNotContain('\n', error.Message);
        Assert.IsNotType<IndexOutOfRangeException>(error.InnerException); // a refusal, not a caught decoder bug
        Assert.IsNotType<ArgumentException>(error.InnerException);
        return error.Message;
    }

    // A 13×1 8-bit, one-component stream around the given scan bits (T.87 C.2.2, C.2.3).
    private static byte[] Tiny(byte[] scanData, int width = 13, byte near = 0, byte mappingTable = 0, byte[]? extraSegment = null) =>
    [
        0xFF, 0xD8,
        .. extraSegment ?? [],
        0xFF, 0xF7, 0x00, 0x0B, 8, 0x00, 0x01, (byte)(width >> 8), (byte)width, 1, 1, 0x11, 0,
        0xFF, 0xDA, 0x00, 0x08, 1, 1, mappingTable, near, 0, 0,
        .. scanData,
        0xFF, 0xD9,
    ];

    [Fact]
    public void TheTinyStreamDecodesWhenItsRunFitsTheLine()
    {
        // The control for the run test below: bits 1111 1111 0 then J[8] = 2 bits "00": 12 samples of 0, then the
        // interruption sample, Golomb k = 2: "1" "00" (the byte after FF carries 7 bits: 0 00 1 00 0 → 0x08).
        var image = JpegLsDecoder.Decode(Tiny([0xFF, 0x08]), "tiny.jls", MaxPixels);
        Assert.Equal((13, 1, 1), (image.Width, image.Height, image.Components));
    }

    [Fact]
    public void RunPastTheEndOfTheLine()
    {
        // Eight 1 bits take RUNindex to 8 (12 samples), then 0 and J[8] = 2 bits "11": 3 more, 15 > 13 on the line.
        // After FF the next byte carries 7 bits: 0x30 = stuffed 0, then 011 0000.
        Assert.Contains("run of 15 samples where only 13 remain", Refused(Tiny([0xFF, 0x30])));
    }

    [Fact]
    public void GolombCodeLongerThanLimit() =>
        Assert.Contains("longer than LIMIT", Refused(Tiny(new byte[40])));

    [Fact]
    public void NearOutOfRange() =>
        Assert.Contains("NEAR 200", Refused(Tiny([0x00], near: 200)));

    [Fact]
    public void PresetThresholdsOutOfRange()
    {
        // LSE type 1: MAXVAL 0 (default 255), T1 300 > MAXVAL.
        byte[] lse = [0xFF, 0xF8, 0x00, 0x0D, 1, 0, 0, 0x01, 0x2C, 0, 0, 0, 0, 0, 0];
        Assert.Contains("T1 = 300 is outside", Refused(Tiny([0x00], extraSegment: lse)));
        byte[] maxValue = [0xFF, 0xF8, 0x00, 0x0D, 1, 0x01, 0x00, 0, 0, 0, 0, 0, 0, 0, 0]; // MAXVAL 256 for 8 bits
        Assert.Contains("MAXVAL 256 is outside", Refused(Tiny([0x00], extraSegment: maxValue)));
        byte[] reset = [0xFF, 0xF8, 0x00, 0x0D, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]; // RESET 2 < 3
        Assert.Contains("RESET = 2 is outside", Refused(Tiny([0x00], extraSegment: reset)));
    }

    [Fact]
    public void MappingTablesAreRefusedByName() =>
        Assert.Contains("mapping tables", Refused(Tiny([0x00], mappingTable: 1)));

    [Fact]
    public void JpegFrameHeaderIsNotJpegLs()
    {
        var data = Tiny([0x00]);
        data[3] = 0xC3; // SOF55 → SOF3 (lossless JPEG)
        Assert.Contains("SOF3", Refused(data));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(17)]
    public void SamplePrecisionOutOfRange(byte precision)
    {
        var data = Tiny([0x00]);
        data[6] = precision;
        Assert.Contains($"precision {precision} is outside 2..16", Refused(data));
    }

    [Fact]
    public void HpColourTransformOnTwelveBitSamples()
    {
        var data = Stream("banny-hp1.jls");
        Assert.Equal(8, data[6]); // SOF55 precision
        data[6] = 12;
        Assert.Contains("HP colour transform on 12-bit samples", Refused(data));
    }

    [Fact]
    public void HugeFrameIsRefusedBeforeAllocating()
    {
        var data = Tiny([0x00]);
        data[7] = data[8] = data[9] = data[10] = 0xFF; // 65535 × 65535
        long before = GC.GetAllocatedBytesForCurrentThread();
        Assert.Contains("more than the limit", Refused(data));
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 1 << 20, "the refusal allocated the claimed frame");
    }

    [Fact]
    public void LyingHeightIsATruncatedScan()
    {
        var data = Stream("t8nde3.jls");
        int sof = data.AsSpan().IndexOf([(byte)0xFF, (byte)0xF7]);
        data[sof + 5] = 0x10; // 128 → 4096 rows (the scan holds 128)
        Assert.Contains("truncated JPEG-LS stream", Refused(data));
    }

    [Fact]
    public void WrongRestartMarker()
    {
        var data = Stream("test16_rm_5.jls");
        int sos = data.AsSpan().IndexOf([(byte)0xFF, (byte)0xDA]);
        int rst0 = sos + data.AsSpan(sos).IndexOf([(byte)0xFF, (byte)0xD0]);
        data[rst0 + 1] = 0xD1;
        Assert.Contains("expected restart marker RST0 before line 6 of 256, found marker 0xD1", Refused(data));
    }

    [Fact]
    public void StreamEndingAfterOneOfThreeScans()
    {
        var data = Stream("t8c0e0.jls");
        int second = data.AsSpan().LastIndexOf([(byte)0xFF, (byte)0xDA]); // the third scan's header
        Assert.Contains("before every component was decoded", Refused([.. data.AsSpan(0, second), 0xFF, 0xD9]));
    }

    /// <summary>
    /// 60 prefixes of a stream are refused (never a partial image, never a decoder exception), and 60 single-byte
    /// corruptions are refused or decode to a whole image.
    /// </summary>
    [Theory]
    [InlineData("t8nde3.jls")]
    [InlineData("t8c2e3.jls")]
    [InlineData("test8_ilv_none_rm_7.jls")]
    public void TruncationsAndCorruptionsAreRefusedOrDecoded(string file)
    {
        var data = Stream(file);
        int step = Math.Max(1, data.Length / 60);
        for (int length = 0; length < data.Length - 2; length += step)
            Refused(data[..length]);
        for (int at = 2; at < data.Length; at += step)
        {
            var damaged = (byte[])data.Clone();
            damaged[at] ^= 0x5A;
            try
            {
                var image = JpegLsDecoder.Decode(damaged, "hostile.jls", MaxPixels);
                Assert.Equal(image.Width * image.Height * image.Components, image.Samples.Length);
            }
            catch (InvalidDataException e)
            {
                Assert.StartsWith("hostile.jls: ", e.Message);
                Assert.DoesNotContain('\n', e.Message);
                Assert.IsNotType<IndexOutOfRangeException>(e.InnerException);
            }
        }
    }

    [Fact]
    public void DicomFrameOfOtherDimensionsIsRefused()
    {
        var file = Stream("SC_rgb_jpegls_line.dcm");
        var lying = PatchUInt16(file, ShortValue(file, 0x0028_0010, "US"), 99); // Rows 100 → 99
        var error = Assert.Throws<InvalidDataException>(() => Preprocessor.PreprocessToRgb(lying, "lying.dcm"));
        output.WriteLine(error.Message);
        Assert.StartsWith("lying.dcm: DICOM JPEG-LS frame is 100x100 with 3 component(s), but the data set says 100x99", error.Message);
    }

    [Fact]
    public void DicomBitsAllocatedBelowThePrecisionIsRefused()
    {
        var file = Stream("ct_small_12bit_jpegls.dcm");
        var lying = PatchUInt16(file, ShortValue(file, 0x0028_0100, "US"), 8);   // Bits Allocated 16 → 8
        lying = PatchUInt16(lying, ShortValue(lying, 0x0028_0101, "US"), 8);     // Bits Stored 12 → 8
        lying = PatchUInt16(lying, ShortValue(lying, 0x0028_0102, "US"), 7);     // High Bit 11 → 7
        var error = Assert.Throws<InvalidDataException>(() => Preprocessor.PreprocessToRgb(lying, "lying.dcm"));
        output.WriteLine(error.Message);
        Assert.StartsWith("lying.dcm: DICOM JPEG-LS frame has ", error.Message); // dcmcjpls codes 12 stored bits at P = 16
        Assert.EndsWith("-bit samples, more than Bits Allocated (8)", error.Message);
    }
}
