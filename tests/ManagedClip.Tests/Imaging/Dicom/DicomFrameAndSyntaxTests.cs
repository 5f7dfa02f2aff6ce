using System.Buffers.Binary;
using ManagedClip.Imaging;
using ManagedClip.Imaging.Dicom;
using ManagedClip.Model;
using Xunit.Abstractions;
using static ManagedClip.Tests.Imaging.Dicom.DicomBytes;

namespace ManagedClip.Tests.Imaging.Dicom;

/// <summary>
/// What the reference set does not hold on its own: frames other than the first, the Extended Offset Table, the
/// Encapsulated Uncompressed syntax, and recognising DICOM by content. The files are built from reference files
/// whose expected pixels are known, so each expectation comes from the reference tensors, not from the reader.
/// </summary>
public sealed class DicomFrameAndSyntaxTests(ITestOutputHelper output)
{
    private static readonly ImagePreprocessor Preprocessor = ImagePreprocessor.For(ClipConfig.BiomedClip);
    private static ReferenceTensors Reference => ReferenceTensors.Dicom;

    private static int[] Rendered(byte[] file, int frame = 0) =>
        Preprocessor.Decode(file, "built.dcm", frame).Bytes.Select(b => (int)b).ToArray();

    /// <summary>
    /// MR_small made two-frame: frame 1 is frame 0 upside down. The rendering of each frame must be the reference
    /// rendering, flipped for frame 1 (the window does not depend on the frame's content).
    /// </summary>
    [Fact]
    public void FramesOfANativeMultiFrameFileAreChosenByIndex()
    {
        var file = TwoFrameMrSmall();
        var expected = Reference.Integers("MR_small.rendered").Values;
        var flipped = Enumerable.Range(0, 64).SelectMany(row => expected.AsSpan((63 - row) * 64, 64).ToArray()).ToArray();
        DicomReferenceTests.AssertIdentical("frame 0", expected, Rendered(file, 0), [64, 64]);
        DicomReferenceTests.AssertIdentical("frame 1", flipped, Rendered(file, 1), [64, 64]);

        var error = Assert.Throws<InvalidDataException>(() => Preprocessor.Decode(file, "built.dcm", 2));
        output.WriteLine(error.Message);
        Assert.Equal("built.dcm: frame 2 does not exist: the DICOM file has 2 frame(s), numbered from 0", error.Message);
    }

    [Fact]
    public void ClipModelTakesTheFrameFromTheImageInput()
    {
        var file = TwoFrameMrSmall();
        var model = EndToEnd.TestModels.Tiny;
        var first = model.PreprocessToRgb(ImageInput.FromBytes(file, "built.dcm"));
        var second = model.PreprocessToRgb(ImageInput.FromBytes(file, "built.dcm").WithFrame(1));
        Assert.Equal(Reference.U8("MR_small.rgb224"), first);
        Assert.Equal(Preprocessor.PreprocessToRgb(file, "built.dcm", 1), second);
        Assert.NotEqual(first, second);
        Assert.NotEqual(model.EmbedImages([ImageInput.FromBytes(file, "a")])[0], model.EmbedImages([ImageInput.FromBytes(file, "a").WithFrame(1)])[0]);
    }

    [Fact]
    public void AFrameOtherThanTheFirstOfANonDicomImageIsRefused()
    {
        var png = File.ReadAllBytes(Path.Combine(TestData.Images, "tiny.png"));
        var error = Assert.Throws<InvalidDataException>(() => Preprocessor.PreprocessToRgb(png, "tiny.png", 1));
        Assert.Contains("frames can only be chosen in DICOM files", error.Message);
    }

    /// <summary>
    /// The two-frame RGB RLE file: its second frame is the first inverted (65535 − v, as the pydicom test data
    /// describes it); the reference stores only frame 1, so the inversion is the independent expectation.
    /// </summary>
    [Fact]
    public void SecondFrameOfTheTwoFrameRleFileIsTheFirstInverted()
    {
        var file = Read("SC_rgb_rle_16bit_2frame");
        var first = DicomImageReader.ReadFrame(file, "2frame.dcm", Preprocessor.MaxPixels, 0).Values;
        var second = DicomImageReader.ReadFrame(file, "2frame.dcm", Preprocessor.MaxPixels, 1).Values;
        Assert.Equal(Reference.Integers("SC_rgb_rle_16bit_2frame.pixels").Values, first);
        Assert.Equal(first.Select(v => 65535 - v), second);
    }

    /// <summary>The same two frames located through an Extended Offset Table (7FE0,0001) instead of the Basic one.</summary>
    [Fact]
    public void ExtendedOffsetTableLocatesTheFrames()
    {
        var original = Read("SC_rgb_rle_16bit_2frame");
        int header = Find(original, 0x7FE0_0010, "OW");
        int table = header + 12;
        Assert.Equal(8u, BinaryPrimitives.ReadUInt32LittleEndian(original.AsSpan(table + 4)));
        var offsets = original.AsSpan(table + 8, 8);
        byte[] extended = [.. BitConverter.GetBytes((ulong)BinaryPrimitives.ReadUInt32LittleEndian(offsets)),
                           .. BitConverter.GetBytes((ulong)BinaryPrimitives.ReadUInt32LittleEndian(offsets[4..]))];
        byte[] file = [.. original.AsSpan(0, header), .. Element(0x7FE0_0001, "OV", extended),
                       .. original.AsSpan(header, 12), .. ItemHeader(0xFFFE_E000, 0), .. original.AsSpan(table + 16)];
        for (int frame = 0; frame < 2; frame++)
            Assert.Equal(DicomImageReader.ReadFrame(original, "bot.dcm", Preprocessor.MaxPixels, frame).Values,
                DicomImageReader.ReadFrame(file, "eot.dcm", Preprocessor.MaxPixels, frame).Values);

        var forged = Patch(file, Find(file, 0x7FE0_0001, "OV") + 12 + 8, BitConverter.GetBytes(99999ul));
        var error = Assert.Throws<InvalidDataException>(() => DicomImageReader.ReadFrame(forged, "eot.dcm", Preprocessor.MaxPixels, 1));
        Assert.Contains("Extended Offset Table entry 1 (offset 99,999) does not point at a fragment", error.Message);
    }

    /// <summary>MR_small re-encoded as Encapsulated Uncompressed Explicit VR Little Endian (1.2.840.10008.1.2.1.98).</summary>
    [Fact]
    public void EncapsulatedUncompressedReadsLikeNative()
    {
        var original = Read("MR_small");
        var dataSet = DataSetOf(original);
        int pixels = Find(dataSet, 0x7FE0_0010, "OW");
        int length = (int)BinaryPrimitives.ReadUInt32LittleEndian(dataSet.AsSpan(pixels + 8));
        var value = dataSet.AsSpan(pixels + 12, length);
        byte[] encapsulated = [.. dataSet.AsSpan(0, pixels), .. Element(0x7FE0_0010, "OB", []).AsSpan(0, 8), 0xFF, 0xFF, 0xFF, 0xFF,
                               .. ItemHeader(0xFFFE_E000, 0), .. ItemHeader(0xFFFE_E000, (uint)length), .. value,
                               .. ItemHeader(0xFFFE_E0DD, 0)];
        var file = Part10("1.2.840.10008.1.2.1.98", encapsulated);
        Assert.Equal(Reference.Integers("MR_small.pixels").Values, DicomImageReader.ReadFrame(file, "e.dcm", Preprocessor.MaxPixels).Values);
        DicomReferenceTests.AssertIdentical("rendered", Reference.Integers("MR_small.rendered").Values, Rendered(file), [64, 64]);
    }

    /// <summary>Content detection: every reference DICOM file (including the bare data set) is DICOM, no other image is.</summary>
    [Fact]
    public void DicomIsRecognisedByContentAndNothingElseIs()
    {
        foreach (var file in DicomReferenceFile.All)
            Assert.True(DicomImageReader.IsDicom(File.ReadAllBytes(file.Path)), file.File);
        var others = Directory.GetFiles(TestData.Images).Concat(Directory.GetFiles(TestData.Jpeg))
            .Where(path => path.EndsWith(".png") || path.EndsWith(".jpg") || path.EndsWith(".jpeg")).ToList();
        Assert.True(others.Count > 20);
        foreach (var path in others) Assert.False(DicomImageReader.IsDicom(File.ReadAllBytes(path)), path);
        var noise = new byte[4096];
        new Random(7).NextBytes(noise);
        Assert.False(DicomImageReader.IsDicom(noise));
        Assert.False(DicomImageReader.IsDicom("patient notes, not a scan\n"u8));
        Assert.False(DicomImageReader.IsDicom(new byte[4096]));
    }

    /// <summary>
    /// Two JPEG frames of 9 fragments each and no offset table: the frames are told apart by the JPEG end-of-image
    /// marker that ends each frame's last fragment. Both must decode to the reference pixels.
    /// </summary>
    [Fact]
    public void JpegFramesWithoutAnOffsetTableAreFoundByTheirEndMarkers()
    {
        var original = Read("mr_brain_8bit_baseline_fragments");
        int header = Find(original, 0x7FE0_0010, "OB");
        int table = header + 12;
        int tableLength = (int)BinaryPrimitives.ReadUInt32LittleEndian(original.AsSpan(table + 4));
        int fragments = table + 8 + tableLength;
        int delimiter = original.AsSpan(fragments).IndexOf((ReadOnlySpan<byte>)[0xFE, 0xFF, 0xDD, 0xE0]) + fragments;
        var frame = original.AsSpan(fragments, delimiter - fragments);
        byte[] twoFrames = [.. original.AsSpan(0, table), .. ItemHeader(0xFFFE_E000, 0), .. frame, .. frame, .. original.AsSpan(delimiter)];
        var file = Splice(twoFrames, Find(twoFrames, 0x0028_0010, "US"), 0, Element(0x0028_0008, "IS", Text("2")));

        var expected = Reference.Integers("mr_brain_8bit_baseline.pixels").Values;
        for (int index = 0; index < 2; index++)
            Assert.Equal(expected, DicomImageReader.ReadFrame(file, "two.dcm", Preprocessor.MaxPixels, index).Values);
    }

    /// <summary>MR_small with Number of Frames 2 and a second frame that is the first upside down.</summary>
    private static byte[] TwoFrameMrSmall()
    {
        var file = Read("MR_small");
        int pixels = Find(file, 0x7FE0_0010, "OW");
        int length = (int)BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(pixels + 8));
        Assert.Equal(64 * 64 * 2, length);
        var frame = file.AsSpan(pixels + 12, length);
        var flipped = new byte[length];
        for (int row = 0; row < 64; row++) frame.Slice(row * 128, 128).CopyTo(flipped.AsSpan((63 - row) * 128));
        byte[] withPixels = [.. file.AsSpan(0, pixels), .. Element(0x7FE0_0010, "OW", [.. frame, .. flipped]), .. file.AsSpan(pixels + 12 + length)];
        int rows = Find(withPixels, 0x0028_0010, "US");
        return Splice(withPixels, rows, 0, Element(0x0028_0008, "IS", Text("2")));
    }
}
