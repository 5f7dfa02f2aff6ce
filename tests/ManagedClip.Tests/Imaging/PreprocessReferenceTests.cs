using ManagedClip.Imaging;
using ManagedClip.Model;
using Xunit.Abstractions;

namespace ManagedClip.Tests.Imaging;

/// <summary>
/// The whole chain against open_clip 2.23 / torchvision 0.14 / Pillow 9.4 outputs in
/// <c>reference/preprocess.safetensors</c>: per stage (mode and size, resize target and crop, native crop,
/// RGB crop, normalised tensor) so that a mismatch says where it starts.
/// </summary>
public class PreprocessReferenceTests(ITestOutputHelper output)
{
    private const int Size = 224;
    private static readonly ImagePreprocessor Preprocessor = ImagePreprocessor.For(ClipConfig.BiomedClip);
    private static readonly ReferenceTensors Reference = ReferenceTensors.Preprocess;

    public static TheoryData<string> PngNames => new(ReferenceImage.All.Where(i => i.File.EndsWith(".png")).Select(i => i.Name));
    public static TheoryData<string> JpegNames => new(ReferenceImage.All.Where(i => i.File.EndsWith(".jpg")).Select(i => i.Name));
    public static TheoryData<string> AllNames => new(ReferenceImage.All.Select(i => i.Name));

    private static ReferenceImage Image(string name) => ReferenceImage.All.Single(i => i.Name == name);

    [Fact]
    public void ReferenceListsThirteenPngsAndTwoJpegs()
    {
        Assert.Equal(13, ReferenceImage.All.Count(i => i.File.EndsWith(".png")));
        Assert.Equal(2, ReferenceImage.All.Count(i => i.File.EndsWith(".jpg")));
    }

    [Theory]
    [MemberData(nameof(AllNames))]
    public void DecodesToPillowModeAndSize(string name)
    {
        var image = Image(name);
        var native = Preprocessor.Decode(File.ReadAllBytes(image.Path), image.Path);
        Assert.Equal(image.PilMode, native.Mode.PillowName());
        Assert.Equal((image.Width, image.Height), (native.Width, native.Height));
    }

    [Theory]
    [MemberData(nameof(AllNames))]
    public void ResizeTargetAndCropOffsetMatchTorchvision(string name)
    {
        var image = Image(name);
        var (width, height) = TorchvisionGeometry.ResizedSize(image.Width, image.Height, Size);
        Assert.Equal((image.ResizeWidth, image.ResizeHeight), (width, height));
        Assert.Equal((image.CropLeft, image.CropTop), TorchvisionGeometry.CenterCropOffset(width, height, Size));
    }

    /// <summary>Lossless inputs must give Pillow's bytes exactly: every step is integer or exactly replicated double math.</summary>
    [Theory]
    [MemberData(nameof(PngNames))]
    public void PngCropMatchesPillowByteForByte(string name)
    {
        var image = Image(name);
        var native = Preprocessor.Decode(File.ReadAllBytes(image.Path), image.Path);
        var cropped = Preprocessor.ResizeAndCrop(native);

        // Native-mode crop first (where the reference has one and it is comparable: P holds palette indices there).
        if (Reference.Contains($"{name}.cropped_native") && native.Mode != PillowMode.P)
            AssertBytesEqual(Reference.U8($"{name}.cropped_native"), cropped.Bytes, $"{name}.cropped_native ({native.Mode})");

        var rgb = new byte[Size * Size * 3];
        PillowConvert.ToRgb(cropped, rgb);
        AssertBytesEqual(Reference.U8($"{name}.rgb224"), rgb, $"{name}.rgb224");
    }

    /// <summary>
    /// ToTensor + Normalize on identical bytes: both sides compute ((float)v / 255 − mean) / std in float32, so the
    /// difference is expected to be 0; 1e-6 allows only for a different float evaluation order.
    /// </summary>
    [Theory]
    [MemberData(nameof(PngNames))]
    public void PngPixelValuesMatch(string name)
    {
        var image = Image(name);
        var actual = Preprocessor.Preprocess(image.Path);
        var expected = Reference.F32($"{name}.pixel_values");
        Assert.Equal(expected.Length, actual.Length);
        double max = MaxAbsDifference(expected, actual);
        output.WriteLine($"{name}.pixel_values max abs diff = {max:G3}");
        Assert.True(max <= 1e-6, $"{name}.pixel_values max abs diff {max:G3} > 1e-6");
    }

    /// <summary>
    /// Normalisation alone, on the reference's own rgb224 (so JPEG decoder differences are out of the picture).
    /// </summary>
    [Theory]
    [MemberData(nameof(AllNames))]
    public void NormalizeOfReferenceBytesMatchesPixelValues(string name)
    {
        var actual = new float[3 * Size * Size];
        Preprocessor.Normalize(Reference.U8($"{name}.rgb224"), actual);
        Assert.True(MaxAbsDifference(Reference.F32($"{name}.pixel_values"), actual) <= 1e-6);
    }

    /// <summary>
    /// JPEG decodes exactly as Pillow 9.4 / libjpeg-turbo 2.1.5 (our decoder reproduces libjpeg's integer IDCT, fancy
    /// upsampling and colour conversion), so the decoded pixels and rgb224 must be identical (tolerance 0), and the
    /// normalised tensor within 1e-6 as for PNG.
    /// </summary>
    [Theory]
    [MemberData(nameof(JpegNames))]
    public void JpegMatchesPillowExactly(string name)
    {
        var image = Image(name);
        var native = Preprocessor.Decode(File.ReadAllBytes(image.Path), image.Path);
        AssertBytesEqual(Reference.U8($"{name}.decoded"), native.Bytes, $"{name}.decoded");
        var rgb = new byte[Size * Size * 3];
        Preprocessor.ResizeCropToRgb(native, rgb);
        AssertBytesEqual(Reference.U8($"{name}.rgb224"), rgb, $"{name}.rgb224");
        double max = MaxAbsDifference(Reference.F32($"{name}.pixel_values"), Preprocessor.Preprocess(image.Path));
        output.WriteLine($"{name}.pixel_values max abs diff = {max:G3}");
        Assert.True(max <= 1e-6, $"{name}.pixel_values max abs diff {max:G3} > 1e-6");
    }

    internal static void AssertBytesEqual(byte[] expected, byte[] actual, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        int mismatches = 0, first = -1, maxDiff = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            if (expected[i] == actual[i]) continue;
            if (first < 0) first = i;
            mismatches++;
            maxDiff = Math.Max(maxDiff, Math.Abs(expected[i] - actual[i]));
        }
        Assert.True(mismatches == 0,
            $"{what}: {mismatches} of {expected.Length} bytes differ (max {maxDiff}); first at flat index {first}: expected {(first >= 0 ? expected[first] : 0)}, got {(first >= 0 ? actual[first] : 0)}");
    }

    private static double MaxAbsDifference(float[] expected, float[] actual)
    {
        double max = 0;
        for (int i = 0; i < expected.Length; i++) max = Math.Max(max, Math.Abs((double)expected[i] - actual[i]));
        return max;
    }
}
