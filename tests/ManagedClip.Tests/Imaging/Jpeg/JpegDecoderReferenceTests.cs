using ManagedClip.Imaging;
using ManagedClip.Imaging.Jpeg;
using ManagedClip.Model;

namespace ManagedClip.Tests.Imaging.Jpeg;

/// <summary>
/// Every JPEG of <c>reference/jpeg</c> decodes to Pillow 9.4 / libjpeg-turbo 2.1.5's pixels, byte for byte, and
/// gives open_clip's <c>rgb224</c> through the whole preprocessing (tolerance 0 for both: every step of the decode
/// is integer arithmetic the decoder reproduces, and the resize is already exact for PNG).
/// </summary>
public class JpegDecoderReferenceTests
{
    private static readonly ImagePreprocessor Preprocessor = ImagePreprocessor.For(ClipConfig.BiomedClip);

    public static TheoryData<string> Stems => new(JpegReferenceFile.All.Select(f => f.Stem));

    [Fact]
    public void ManifestListsFortyFourFiles() => Assert.Equal(44, JpegReferenceFile.All.Count);

    [Theory]
    [MemberData(nameof(Stems))]
    public void DecodesPillowsPixels(string stem)
    {
        var file = JpegReferenceFile.Named(stem);
        var image = JpegDecoder.Decode(File.ReadAllBytes(file.Path), file.Path, 100_000_000);
        Assert.Equal((file.Width, file.Height, file.Channels), (image.Width, image.Height, image.Components));
        Assert.Equal(8, image.Precision);
        file.AssertDecodedEqual(image.Bytes!);
    }

    [Theory]
    [MemberData(nameof(Stems))]
    public void PreprocessingGivesOpenClipsRgb224(string stem)
    {
        var file = JpegReferenceFile.Named(stem);
        var native = Preprocessor.Decode(File.ReadAllBytes(file.Path), file.Path);
        Assert.Equal(file.PilMode, native.Mode.PillowName());
        Assert.Equal((file.ResizeWidth, file.ResizeHeight), TorchvisionGeometry.ResizedSize(native.Width, native.Height, 224));
        Assert.Equal((file.CropLeft, file.CropTop), TorchvisionGeometry.CenterCropOffset(file.ResizeWidth, file.ResizeHeight, 224));
        var rgb = new byte[224 * 224 * 3];
        Preprocessor.ResizeCropToRgb(native, rgb);
        PreprocessReferenceTests.AssertBytesEqual(JpegReferenceFile.Tensors.U8(file.Rgb224Tensor), rgb, $"{stem} rgb224");
    }
}
