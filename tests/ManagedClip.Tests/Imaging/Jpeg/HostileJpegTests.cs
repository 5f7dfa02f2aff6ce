using ManagedClip.Imaging;
using ManagedClip.Imaging.Jpeg;
using ManagedClip.Model;
using Xunit.Abstractions;

namespace ManagedClip.Tests.Imaging.Jpeg;

/// <summary>
/// Damaged and lying JPEG files: each gets a one-line <see cref="InvalidDataException"/> naming the file, or decodes
/// as libjpeg decodes it, with memory bounded by the image it declares (checked before allocating).
/// </summary>
public class HostileJpegTests(ITestOutputHelper output)
{
    private const string Name = "hostile.jpg";

    private static byte[] Reference(string stem) => File.ReadAllBytes(JpegReferenceFile.Named(stem).Path);

    private InvalidDataException Refused(byte[] jpeg, long maxPixels = 100_000_000, JpegColorOutput mode = JpegColorOutput.Pillow)
    {
        var error = Assert.Throws<InvalidDataException>(() => JpegDecoder.Decode(jpeg, Name, maxPixels, mode));
        output.WriteLine(error.Message);
        AssertOneLine(error);
        return error;
    }

    private static void AssertOneLine(InvalidDataException error)
    {
        Assert.StartsWith(Name + ": ", error.Message);
        Assert.DoesNotContain('\n', error.Message);
        Assert.DoesNotContain("decoder failed", error.Message); // never an internal failure
    }

    /// <summary>Bytes allocated on this thread by <paramref name="action"/>.</summary>
    private static long Allocated(Action action)
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        action();
        return GC.GetAllocatedBytesForCurrentThread() - before;
    }

    public static TheoryData<string> TruncationFiles => new()
    {
        "pil_q75_420_defaults", "pil_q80_420_progressive", "cjpeg_arith_420", "cjpeg_arith_progressive_444",
        "cjpeg_restart_1row_420", "cjpeg_sequential_noninterleaved", "marker_fill_bytes", "pil_gray_q85",
    };

    /// <summary>
    /// Cut at 64 offsets through the file: refused as truncated (libjpeg would wait for more data; Pillow says
    /// "image file is truncated"), with at most the decoded image's size allocated — in fact nothing large,
    /// since the structure is checked first. Only a cut after the end of the image data may still decode.
    /// </summary>
    [Theory]
    [MemberData(nameof(TruncationFiles))]
    public void TruncatedAtManyOffsets(string stem)
    {
        var jpeg = Reference(stem);
        var file = JpegReferenceFile.Named(stem);
        long imageBytes = (long)file.Width * file.Height * file.Channels;
        for (int i = 1; i <= 64; i++)
        {
            int length = (int)((long)jpeg.Length * i / 65);
            var cut = jpeg[..length];
            long allocated = Allocated(() =>
            {
                try
                {
                    JpegDecoder.Decode(cut, Name, 100_000_000);
                }
                catch (InvalidDataException e)
                {
                    AssertOneLine(e);
                    Assert.True(e.Message.Contains("truncated") || e.Message.Contains("corrupt JPEG") || e.Message.Contains("not a JPEG"),
                        $"cut at {length}: {e.Message}");
                }
            });
            Assert.True(allocated < imageBytes + 200_000, $"cut at {length} of {jpeg.Length}: allocated {allocated:N0} bytes");
        }
        // Without its last two bytes (EOI) the file is incomplete too.
        Assert.Contains("truncated", Refused(jpeg[..^2]).Message);
    }

    [Fact]
    public void TruncatedFileThroughTheImagePipelineSaysTruncated()
    {
        var jpeg = Reference("pil_q80_420_progressive");
        var preprocessor = ImagePreprocessor.For(ClipConfig.BiomedClip);
        var error = Assert.Throws<InvalidDataException>(() => preprocessor.Preprocess(jpeg[..(jpeg.Length / 2)], Name));
        Assert.Equal($"{Name}: truncated JPEG: the data ends before the end-of-image marker (EOI) (image file is truncated)", error.Message);
    }

    /// <summary>A 1.8 KB file whose frame header claims 60000 × 60000 pixels: refused from the header, nothing large allocated.</summary>
    [Fact]
    public void HugeDeclaredSizeIsRefusedBeforeAllocating()
    {
        var jpeg = JpegEditor.WithSize(Reference("pil_sof1_16bit_qtables"), 60000, 60000);
        InvalidDataException? error = null;
        long allocated = Allocated(() => error = Assert.Throws<InvalidDataException>(() => JpegDecoder.Decode(jpeg, Name, 100_000_000)));
        output.WriteLine($"{error!.Message} (allocated {allocated:N0} bytes)");
        Assert.Contains("60000x60000 = 3,600,000,000 pixels exceeds the limit of 100,000,000 pixels", error.Message);
        Assert.True(allocated < 100_000, $"allocated {allocated:N0} bytes");
    }

    [Fact]
    public void LargerThanLibjpegsMaximumIsRefused()
    {
        var error = Refused(JpegEditor.WithSize(Reference("size_33x31"), 65535, 65535), maxPixels: long.MaxValue / 8);
        Assert.Contains("65535x65535", error.Message);
        Assert.Contains("65500", error.Message);
    }

    /// <summary>
    /// A frame header that claims more pixels than its data holds, within the limit: libjpeg decodes what data
    /// there is, then fills the rest of the scan with zero coefficients (uniform grey) once the data runs into EOI.
    /// </summary>
    [Fact]
    public void LyingFrameWithinTheLimitDecodesAsGrey()
    {
        var jpeg = JpegEditor.WithSize(Reference("pil_q75_420_defaults"), 1600, 1200);
        JpegImage? image = null;
        long allocated = Allocated(() => image = JpegDecoder.Decode(jpeg, Name, 100_000_000));
        Assert.Equal((1600, 1200, 3), (image!.Width, image.Height, image.Components));
        var lastRow = image.Bytes.AsSpan(1199 * 1600 * 3, 1600 * 3);
        Assert.True(lastRow.IndexOfAnyExcept((byte)128) < 0, "the rows past the data are not uniform grey (128)");
        Assert.True(allocated < 2 * 1600 * 1200 * 3, $"allocated {allocated:N0} bytes for a {1600 * 1200 * 3:N0}-byte image");
    }

    [Fact]
    public void ZeroHeightIsRefusedAsDnl() =>
        Assert.Contains("DNL", Refused(JpegEditor.WithSize(Reference("size_15x9"), 15, 0)).Message);

    [Fact]
    public void ZeroWidthIsRefused() =>
        Assert.Contains("empty JPEG image", Refused(JpegEditor.WithSize(Reference("size_15x9"), 0, 9)).Message);

    [Fact]
    public void MissingQuantisationTablesAreRefused() =>
        Assert.Contains("quantisation table 0", Refused(JpegEditor.RemoveAll(Reference("pil_q75_420_defaults"), 0xDB)).Message);

    /// <summary>
    /// libjpeg-turbo gives a sequential file without Huffman tables the standard ones (T.81 K.3), which is what
    /// Pillow's encoder wrote into this file: removing them changes nothing.
    /// </summary>
    [Fact]
    public void MissingHuffmanTablesInABaselineFileAreTheStandardOnes()
    {
        var original = Reference("pil_q75_420_defaults");
        var withoutTables = JpegEditor.RemoveAll(original, 0xC4);
        Assert.True(withoutTables.Length < original.Length - 400);
        var image = JpegDecoder.Decode(withoutTables, Name, 100_000_000);
        JpegReferenceFile.Named("pil_q75_420_defaults").AssertDecodedEqual(image.Bytes!);
    }

    [Fact]
    public void MissingHuffmanTablesInAProgressiveFileAreRefused() =>
        Assert.Contains("Huffman table", Refused(JpegEditor.RemoveAll(Reference("pil_q80_420_progressive"), 0xC4)).Message);

    /// <summary>A DHT whose counts declare three 1-bit codes (only two exist) is not a prefix code: refused as libjpeg does.</summary>
    [Fact]
    public void OversubscribedHuffmanTableIsRefused()
    {
        var jpeg = Reference("pil_q75_420_defaults");
        var dht = JpegEditor.First(jpeg, 0xC4);
        // The counts L1..L16 start after FF C4, the length and the class/index byte; keep their total (the segment's
        // length) by taking the three codes from a longer length.
        jpeg[dht.Offset + 5] += 3;
        int donor = Enumerable.Range(dht.Offset + 6, 15).First(i => jpeg[i] >= 3);
        jpeg[donor] -= 3;
        Assert.Contains("Huffman table", Refused(jpeg).Message);
    }

    [Fact]
    public void HuffmanTableWithMoreThan256CodesIsRefused()
    {
        var jpeg = Reference("pil_q75_420_defaults");
        var dht = JpegEditor.First(jpeg, 0xC4);
        jpeg[dht.Offset + 20] = 255; // L16 = 255: far more symbols than the segment holds
        Assert.Contains("DHT", Refused(jpeg).Message);
    }

    /// <summary>
    /// RST1 removed from a file with a restart every 5 MCUs. Where RST1 should be, libjpeg finds RST2 (one ahead),
    /// leaves it for later and decodes the next interval (MCUs 10–14) from no data; at the following restart the
    /// waiting RST2 is the expected one and decoding resumes. Every pixel outside MCUs 10–14 must be Pillow's.
    /// </summary>
    [Fact]
    public void MissingRestartMarkerResynchronisesAsLibjpeg()
    {
        var jpeg = Reference("cjpeg_restart_5blocks_444");
        var restarts = JpegEditor.RestartMarkers(jpeg);
        Assert.Equal(49, restarts.Count);
        Assert.Equal(0xD1, jpeg[restarts[1] + 1]);
        var damaged = jpeg.Where((_, i) => i != restarts[1] && i != restarts[1] + 1).ToArray();

        var image = JpegDecoder.Decode(damaged, Name, 100_000_000);
        var expected = JpegReferenceFile.Tensors.U8("cjpeg_restart_5blocks_444");
        int width = 145, differing = 0;
        for (int y = 0; y < 97; y++)
        {
            for (int x = 0; x < width; x++)
            {
                bool lost = y < 8 && x is >= 80 and < 120; // MCUs 10..14 of the first MCU row (8×8 MCUs, 4:4:4)
                for (int c = 0; c < 3; c++)
                {
                    int i = (y * width + x) * 3 + c;
                    if (lost) differing += image.Bytes![i] != expected[i] ? 1 : 0;
                    else Assert.True(image.Bytes![i] == expected[i], $"pixel ({y},{x}) channel {c} differs outside the lost interval");
                }
            }
        }
        Assert.True(differing > 0, "the interval decoded without its data should differ");
    }

    /// <summary>Restart markers in the wrong order (RST3 and RST4 swapped) decode without an exception, deterministically.</summary>
    [Fact]
    public void RestartMarkersOutOfOrderDecode()
    {
        var jpeg = Reference("cjpeg_restart_1row_420");
        var restarts = JpegEditor.RestartMarkers(jpeg);
        (jpeg[restarts[3] + 1], jpeg[restarts[4] + 1]) = (jpeg[restarts[4] + 1], jpeg[restarts[3] + 1]);
        var first = JpegDecoder.Decode(jpeg, Name, 100_000_000).Bytes!;
        var second = JpegDecoder.Decode(jpeg, Name, 100_000_000).Bytes!;
        Assert.Equal(first, second);
    }

    /// <summary>DRI 65535 in a file without restart markers: no restart point is ever reached, so nothing changes.</summary>
    [Fact]
    public void HugeRestartIntervalWithoutMarkersChangesNothing()
    {
        var jpeg = JpegEditor.InsertBefore(Reference("pil_q75_420_defaults"), 0xDA, [0xFF, 0xDD, 0x00, 0x04, 0xFF, 0xFF]);
        JpegReferenceFile.Named("pil_q75_420_defaults").AssertDecodedEqual(JpegDecoder.Decode(jpeg, Name, 100_000_000).Bytes!);
    }

    [Fact]
    public void FractionalSamplingIsRefused()
    {
        // Y 3×1 with chroma 2×1: 3 / 2 is not a whole upsampling ratio (libjpeg: not implemented).
        var jpeg = JpegEditor.WithSampling(JpegEditor.WithSampling(Reference("pil_q75_420_defaults"), 0, 3, 1), 1, 2, 1);
        Assert.Contains("fractional", Refused(jpeg).Message);
    }

    [Fact]
    public void TooManyBlocksPerMcuAreRefused() =>
        Assert.Contains("blocks per MCU", Refused(JpegEditor.WithSampling(Reference("pil_q75_420_defaults"), 0, 4, 4)).Message);

    [Fact]
    public void ZeroSamplingFactorIsRefused() =>
        Assert.Contains("sampling factors", Refused(JpegEditor.WithSampling(Reference("pil_q75_420_defaults"), 1, 0, 1)).Message);

    [Fact]
    public void NotAJpegIsRefused() => Assert.Contains("not a JPEG", Refused("\x89PNG\r\n"u8.ToArray()).Message);

    [Fact]
    public void SecondScanAfterACompleteBaselineImageIsRefused()
    {
        // libjpeg reads on to EOI after the last row (Pillow calls jpeg_finish_decompress); a second SOS there is an error.
        var jpeg = Reference("size_15x9");
        var sos = JpegEditor.First(jpeg, 0xDA);
        var scan = jpeg[sos.Offset..^2];
        Assert.Contains("another scan", Refused([.. jpeg[..^2], .. scan, 0xFF, 0xD9]).Message);
    }

    [Fact]
    public void HierarchicalJpegIsRefused()
    {
        var jpeg = Reference("size_15x9");
        jpeg[JpegEditor.Frame(jpeg).Offset + 1] = 0xC5; // SOF5: differential sequential
        Assert.Contains("hierarchical", Refused(jpeg).Message);
    }

    /// <summary>12-bit and lossless JPEG decode for DICOM (Raw) but, as plain image files, get Pillow's refusal in our words.</summary>
    [Fact]
    public void TwelveBitAndLosslessFilesAreNotOpenedAsImages()
    {
        var preprocessor = ImagePreprocessor.For(ClipConfig.BiomedClip);
        var twelveBit = JpegInDicomTests.EncapsulatedFirstFrame(File.ReadAllBytes(TestData.File("reference", "dicom", "ct_small_12bit_extended.dcm")));
        var lossless = JpegInDicomTests.EncapsulatedFirstFrame(File.ReadAllBytes(TestData.File("reference", "dicom", "MR_small_lossless_sv1.dcm")));

        var error = Assert.Throws<InvalidDataException>(() => preprocessor.Preprocess(twelveBit, "ct.jpg"));
        Assert.Equal("ct.jpg: 12-bit JPEG: Pillow 9.4, and so open_clip, cannot open it (12-bit JPEG is read only inside DICOM)", error.Message);
        error = Assert.Throws<InvalidDataException>(() => preprocessor.Preprocess(lossless, "mr.jpg"));
        Assert.StartsWith("mr.jpg: lossless JPEG (SOF3): Pillow 9.4, and so open_clip, cannot open it", error.Message);

        Assert.Equal(12, JpegDecoder.Decode(twelveBit, "ct.jpg", 1 << 20, JpegColorOutput.Raw).Precision);
        Assert.Equal(16, JpegDecoder.Decode(lossless, "mr.jpg", 1 << 20, JpegColorOutput.Raw).Precision);
    }

    /// <summary>
    /// Random damage (1–8 bytes overwritten anywhere after SOI) to files of every coding: each decode either succeeds
    /// or throws a one-line InvalidDataException — never another exception, never the decoder's internal-failure
    /// message — and allocates no more than the declared image needs.
    /// </summary>
    [Theory]
    [MemberData(nameof(TruncationFiles))]
    public void RandomDamageNeverCrashes(string stem)
    {
        var original = Reference(stem);
        var random = new Random(stem.Length * 7919);
        int decoded = 0, refused = 0;
        for (int trial = 0; trial < 150; trial++)
        {
            var jpeg = (byte[])original.Clone();
            for (int n = random.Next(1, 9); n > 0; n--) jpeg[random.Next(2, jpeg.Length)] = (byte)random.Next(256);
            try
            {
                // A damaged frame header may declare a larger image (up to the limit): decoded as grey, memory bounded by it.
                long allocated = Allocated(() => JpegDecoder.Decode(jpeg, Name, 1_000_000, trial % 2 == 0 ? JpegColorOutput.Pillow : JpegColorOutput.Raw));
                Assert.True(allocated < 16_000_000, $"trial {trial}: allocated {allocated:N0} bytes");
                decoded++;
            }
            catch (InvalidDataException e)
            {
                AssertOneLine(e);
                refused++;
            }
        }
        output.WriteLine($"{stem}: {decoded} decoded, {refused} refused");
    }
}
