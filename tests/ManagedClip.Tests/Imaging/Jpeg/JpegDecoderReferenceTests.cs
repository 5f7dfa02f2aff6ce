using ManagedClip.Imaging.Jpeg;

namespace ManagedClip.Tests.Imaging.Jpeg;

/// <summary>
/// Every JPEG of <c>reference/jpeg</c> decodes to Pillow 9.4 / libjpeg-turbo 2.1.5's pixels, byte for byte
/// (tolerance 0: every step of the decode is integer arithmetic that the decoder reproduces exactly).
/// </summary>
public class JpegDecoderReferenceTests
{
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
}
