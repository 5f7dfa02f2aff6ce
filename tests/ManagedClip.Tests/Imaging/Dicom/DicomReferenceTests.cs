using ManagedClip.Imaging;
using ManagedClip.Imaging.Dicom;
using ManagedClip.Model;
using Xunit.Abstractions;

namespace ManagedClip.Tests.Imaging.Dicom;

/// <summary>
/// Every file of <c>reference/dicom/</c> against pydicom 2.3.1 (cross-checked with dcmtk and GDCM), per stage so a
/// mismatch says where it starts: the stored values of frame 1, the 8-bit rendering of the README's rule, and the
/// open_clip preprocessing of that rendering. Tolerance 0 at every stage: the values are integers, the rendering is
/// the README's double arithmetic in its order, and the resize is Pillow-exact.
/// </summary>
public sealed class DicomReferenceTests(ITestOutputHelper output)
{
    private static readonly ImagePreprocessor Preprocessor = ImagePreprocessor.For(ClipConfig.BiomedClip);
    private static ReferenceTensors Reference => ReferenceTensors.Dicom;

    public static TheoryData<string> Required => new(DicomReferenceFile.All.Where(f => f.Required).Select(f => f.Stem));
    public static TheoryData<string> OutOfScope => new(DicomReferenceFile.All.Where(f => !f.Required).Select(f => f.Stem));

    [Fact]
    public void ManifestListsFortyFourRequiredFilesAndOneOutOfScope()
    {
        // Guards the theories below against an empty or partly read manifest. JPEG-LS (.4.80) is required since the
        // managed JPEG-LS decoder; JPEG 2000 stays out of scope.
        Assert.Equal(44, DicomReferenceFile.All.Count(f => f.Required));
        Assert.Equal(2, DicomReferenceFile.All.Count(f => f.Required && f.TransferSyntaxUid == "1.2.840.10008.1.2.4.80"));
        Assert.Equal(["1.2.840.10008.1.2.4.90"], DicomReferenceFile.All.Where(f => !f.Required).Select(f => f.TransferSyntaxUid));
    }

    [Theory]
    [MemberData(nameof(Required))]
    public void StoredValuesMatchPydicom(string stem)
    {
        var file = DicomReferenceFile.Get(stem);
        var frame = DicomImageReader.ReadFrame(File.ReadAllBytes(file.Path), file.Path, Preprocessor.MaxPixels);
        var attributes = frame.Attributes;
        Assert.Equal((file.Rows, file.Columns, file.Frames), (attributes.Rows, attributes.Columns, attributes.Frames));
        Assert.Equal(file.PixelsShape, attributes.SamplesPerPixel == 1
            ? [attributes.Rows, attributes.Columns]
            : [attributes.Rows, attributes.Columns, attributes.SamplesPerPixel]);
        var (dtype, expected) = Reference.Integers(file.PixelsTensor);
        Assert.Equal(file.PixelsDType, dtype switch { "U8" => "uint8", "U16" => "uint16", _ => "int16" });
        Assert.Equal(dtype, (attributes.BitsAllocated, attributes.Signed) switch { (8, false) => "U8", (16, false) => "U16", _ => "I16" });
        AssertIdentical($"{stem} pixels", expected, frame.Values, file.PixelsShape);
    }

    [Theory]
    [MemberData(nameof(Required))]
    public void RenderedImageMatchesTheRule(string stem)
    {
        var file = DicomReferenceFile.Get(stem);
        var image = Preprocessor.Decode(File.ReadAllBytes(file.Path), file.Path);
        Assert.Equal(file.RenderedShape.Length == 2 ? PillowMode.L : PillowMode.Rgb, image.Mode);
        Assert.Equal((file.Columns, file.Rows), (image.Width, image.Height));
        var (_, expected) = Reference.Integers(file.RenderedTensor);
        AssertIdentical($"{stem} rendered", expected, image.Bytes.Select(b => (int)b).ToArray(), file.RenderedShape);
    }

    [Theory]
    [MemberData(nameof(Required))]
    public void ModelInputMatchesOpenClip(string stem)
    {
        var file = DicomReferenceFile.Get(stem);
        var rgb = Preprocessor.PreprocessToRgb(file.Path);
        var (_, expected) = Reference.Integers(file.Rgb224Tensor);
        AssertIdentical($"{stem} rgb224", expected, rgb.Select(b => (int)b).ToArray(), [224, 224, 3]);
    }

    [Theory]
    [MemberData(nameof(OutOfScope))]
    public void Jpeg2000IsRefusedByName(string stem)
    {
        var file = DicomReferenceFile.Get(stem);
        var error = Assert.Throws<InvalidDataException>(() => Preprocessor.PreprocessToRgb(file.Path));
        output.WriteLine(error.Message);
        Assert.StartsWith(file.Path + ": ", error.Message);
        Assert.Contains(file.TransferSyntaxUid, error.Message);
        Assert.Contains("JPEG 2000", error.Message);
        Assert.DoesNotContain('\n', error.Message);
    }

    /// <summary>Equal arrays, or a report of how many values differ and where the first one is.</summary>
    internal static void AssertIdentical(string what, int[] expected, int[] actual, int[] shape)
    {
        Assert.True(expected.Length == actual.Length, $"{what}: {actual.Length} values, expected {expected.Length}");
        int differing = 0, first = -1, maxDifference = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            if (expected[i] == actual[i]) continue;
            if (differing++ == 0) first = i;
            maxDifference = Math.Max(maxDifference, Math.Abs(expected[i] - actual[i]));
        }
        if (differing == 0) return;
        int samples = shape.Length == 3 ? shape[2] : 1;
        int pixel = first / samples;
        Assert.Fail($"{what}: {differing:N0} of {expected.Length:N0} values differ (max {maxDifference}); first at row {pixel / shape[1]}, " +
                    $"column {pixel % shape[1]}, sample {first % samples}: expected {expected[first]}, got {actual[first]}");
    }
}
