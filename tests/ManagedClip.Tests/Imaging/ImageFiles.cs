using ManagedClip.Imaging;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats.Png;
using SixLabors.ImageSharp.PixelFormats;

namespace ManagedClip.Tests.Imaging;

/// <summary>Encodes test images (ImageSharp's encoders; what is tested is our decoding and resizing).</summary>
internal static class ImageFiles
{
    /// <summary>An 8-bit PNG of an L, RGB or RGBA image, in that colour type.</summary>
    public static byte[] Png(NativeImage image)
    {
        var stream = new MemoryStream();
        switch (image.Mode)
        {
            case PillowMode.L:
                using (var grey = Image.LoadPixelData<L8>(image.Bytes, image.Width, image.Height))
                    grey.Save(stream, new PngEncoder { ColorType = PngColorType.Grayscale, BitDepth = PngBitDepth.Bit8 });
                break;
            case PillowMode.Rgb:
                using (var rgb = Image.LoadPixelData<Rgb24>(image.Bytes, image.Width, image.Height))
                    rgb.Save(stream, new PngEncoder { ColorType = PngColorType.Rgb, BitDepth = PngBitDepth.Bit8 });
                break;
            case PillowMode.Rgba:
                using (var rgba = Image.LoadPixelData<Rgba32>(image.Bytes, image.Width, image.Height))
                    rgba.Save(stream, new PngEncoder { ColorType = PngColorType.RgbWithAlpha, BitDepth = PngBitDepth.Bit8 });
                break;
            default:
                throw new NotSupportedException($"PNG of mode {image.Mode}");
        }
        return stream.ToArray();
    }
}
