using ManagedClip.Imaging;

namespace ManagedClip.Tests.Imaging;

/// <summary>The PNG encoder: lossless round trips through an independent decoder (ImageSharp's), valid chunks.</summary>
public sealed class PngWriterTests
{
    public static TheoryData<string> Rgb224Tensors => new("MR_small.rgb224", "color-pl.rgb224", "SC_rgb_dcmtk_ebcys2.rgb224", "JPGExtended.rgb224");

    [Theory]
    [MemberData(nameof(Rgb224Tensors))]
    public void ModelInputsRoundTripExactly(string tensor)
    {
        var rgb = ReferenceTensors.Dicom.U8(tensor);
        var png = PngWriter.EncodeRgb(rgb, 224, 224);
        var decoded = ImageDecoding.Decode(png, tensor + ".png", 1_000_000);
        Assert.Equal(PillowMode.Rgb, decoded.Mode);
        Assert.Equal((224, 224), (decoded.Width, decoded.Height));
        Assert.Equal(rgb, decoded.Bytes);
        Assert.Null(TruncationCheck.FindPngDamage(png));
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(7, 3)]
    [InlineData(3, 300)]
    [InlineData(513, 2)]
    public void OddSizesAndNoiseRoundTripExactly(int width, int height)
    {
        // Random pixels exercise every filter type and wrap-around of the residuals.
        var rgb = new byte[width * height * 3];
        new Random(width * 1000 + height).NextBytes(rgb);
        var decoded = ImageDecoding.Decode(PngWriter.EncodeRgb(rgb, width, height), "noise.png", 1_000_000);
        Assert.Equal((width, height), (decoded.Width, decoded.Height));
        Assert.Equal(rgb, decoded.Bytes);
    }

    [Fact]
    public void ChunksCarryTheirCrc()
    {
        var png = PngWriter.EncodeRgb(new byte[3], 1, 1);
        Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A], png[..8]);
        // IEND has no data, so its CRC is a constant of the format: AE 42 60 82.
        Assert.Equal([0, 0, 0, 0, (byte)'I', (byte)'E', (byte)'N', (byte)'D', 0xAE, 0x42, 0x60, 0x82], png[^12..]);
    }

    [Fact]
    public void ASizeThatDoesNotMatchThePixelsIsRejected() =>
        Assert.Throws<ArgumentException>(() => PngWriter.EncodeRgb(new byte[10], 2, 2));
}
