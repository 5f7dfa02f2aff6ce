using ManagedClip.Imaging.Dicom;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats;
using SixLabors.ImageSharp.Formats.Bmp;
using ManagedClip.Imaging.Jpeg;
using SixLabors.ImageSharp.Formats.Gif;
using SixLabors.ImageSharp.Formats.Pbm;
using SixLabors.ImageSharp.Formats.Png;
using SixLabors.ImageSharp.Formats.Tiff;
using SixLabors.ImageSharp.Formats.Tiff.Constants;
using SixLabors.ImageSharp.Formats.Webp;
using SixLabors.ImageSharp.Metadata;
using SixLabors.ImageSharp.PixelFormats;

namespace ManagedClip.Imaging;

/// <summary>
/// Encoded bytes → <see cref="NativeImage"/> in the mode <c>PIL.Image.open</c> would give (Pillow 9.4). JPEG is
/// decoded by our own libjpeg-turbo-exact <see cref="JpegDecoder"/> (so JPEG pixels equal Pillow's); the other
/// formats by ImageSharp. The header is identified first and checked against the pixel limit before any pixel is
/// decoded. No EXIF orientation is applied: open_clip's reference pipeline does not rotate either.
/// </summary>
internal static class ImageDecoding
{
    private static readonly Configuration Configuration = Configuration.Default.Clone();

    /// <summary>Decodes <paramref name="encoded"/> (named <paramref name="sourceName"/> in errors).</summary>
    /// <param name="encoded">The file's bytes.</param>
    /// <param name="sourceName">Name for messages.</param>
    /// <param name="maxPixels">Largest accepted width × height, checked before decoding.</param>
    /// <param name="frame">Zero-based frame of a multi-frame DICOM file; other formats only have frame 0.</param>
    /// <exception cref="InvalidDataException">Empty, unreadable, truncated, unsupported or over the pixel limit.</exception>
    public static unsafe NativeImage Decode(ReadOnlySpan<byte> encoded, string sourceName, long maxPixels, int frame = 0)
    {
        if (encoded.IsEmpty) throw InvalidImage.Error(sourceName, "the file is empty (0 bytes)");
        // DICOM is recognised from content (Part 10 signature, or a bare data set) and read by Dicom/, rendered to L or RGB.
        if (DicomImageReader.IsDicom(encoded)) return DicomImageReader.Decode(encoded, sourceName, maxPixels, frame);
        if (frame != 0)
            throw InvalidImage.Error(sourceName, $"frame {frame} was asked for, but frames can only be chosen in DICOM files (this one is not DICOM)");
        // Pillow's JPEG plugin claims files that start FF D8 FF; so does ours, ahead of ImageSharp.
        if (encoded.StartsWith(JpegSignature)) return DecodeJpeg(encoded, sourceName, maxPixels);
        fixed (byte* start = encoded)
        {
            using var stream = new UnmanagedMemoryStream(start, encoded.Length);
            var (info, format) = Identify(stream, encoded, sourceName);
            CheckSize(info.Width, info.Height, format, sourceName, maxPixels);
            string? damage = format is PngFormat ? TruncationCheck.FindPngDamage(encoded) : null;
            if (damage != null) throw InvalidImage.Error(sourceName, damage);

            stream.Position = 0;
            return format switch
            {
                PngFormat => DecodePng(stream, info.Metadata.GetPngMetadata(), sourceName),
                GifFormat => DecodeGif(stream, GifHeader.Read(encoded), sourceName),
                BmpFormat => Load<Rgba32>(stream, null, sourceName, BmpHeader.ReadMode(encoded)),
                TiffFormat => DecodeTiff(stream, sourceName),
                WebpFormat => Load<Rgba32>(stream, null, sourceName, WebpHeader.ReadMode(encoded)),
                _ => DecodeOther(stream, info, format, sourceName),
            };
        }
    }

    private static (IImageInfo Info, IImageFormat Format) Identify(Stream stream, ReadOnlySpan<byte> encoded, string sourceName)
    {
        IImageInfo? info;
        IImageFormat? format;
        try
        {
            info = Image.Identify(Configuration, stream, out format);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // Any failure inside the third-party header parser means the file is not a readable image.
            throw InvalidImage.Error(sourceName, $"unreadable image header ({e.Message.TrimEnd('.')})", e);
        }
        if (info is null || format is null)
            throw InvalidImage.Error(sourceName,
                $"not a supported image: the content is {ContentSniffer.Describe(encoded)}; readable formats are PNG, JPEG, DICOM, BMP, GIF, TIFF, WebP, TGA and PBM/PGM/PPM");
        return (info, format);
    }

    private static void CheckSize(int width, int height, IImageFormat format, string sourceName, long maxPixels)
    {
        if (width <= 0 || height <= 0)
            throw InvalidImage.Error(sourceName, $"{format.Name} header gives an empty image ({width}x{height})");
        long pixels = (long)width * height;
        if (pixels > maxPixels)
            throw InvalidImage.Error(sourceName,
                $"{format.Name} image of {width}x{height} = {pixels:N0} pixels exceeds the limit of {maxPixels:N0} pixels (refused before decoding)");
    }

    private static NativeImage DecodePng(Stream stream, PngMetadata png, string sourceName)
    {
        // Pillow 9.4 PngImagePlugin._MODES: grey 1 bit → "1", 2/4/8 bits → L, 16 bits → I (0..65535);
        // 16-bit colour keeps the high byte of each sample (rawmodes RGB;16B, RGBA;16B, LA;16B).
        bool sixteenBits = png.BitDepth == PngBitDepth.Bit16;
        var mode = png.ColorType switch
        {
            PngColorType.Grayscale => png.BitDepth switch
            {
                PngBitDepth.Bit1 => PillowMode.Bilevel,
                PngBitDepth.Bit16 => PillowMode.I,
                _ => PillowMode.L,
            },
            PngColorType.Rgb => PillowMode.Rgb,
            PngColorType.Palette => PillowMode.P,
            PngColorType.GrayscaleWithAlpha => PillowMode.LA,
            PngColorType.RgbWithAlpha => PillowMode.Rgba,
            var other => throw InvalidImage.Error(sourceName, $"PNG colour type {other} is not supported"),
        };
        return sixteenBits
            ? Load<Rgba64>(stream, null, sourceName, mode)
            : Load<Rgba32>(stream, null, sourceName, mode);
    }

    private static ReadOnlySpan<byte> JpegSignature => [0xFF, 0xD8, 0xFF];

    private static NativeImage DecodeJpeg(ReadOnlySpan<byte> encoded, string sourceName, long maxPixels)
    {
        // Pillow's modes: 1 component → L, 3 → RGB, 4 → CMYK (kept as CMYK through the resize, as Pillow does).
        var jpeg = JpegDecoder.Decode(encoded, sourceName, maxPixels);
        var mode = jpeg.Components switch { 1 => PillowMode.L, 3 => PillowMode.Rgb, _ => PillowMode.Cmyk };
        return NativeImage.FromBytes(mode, jpeg.Width, jpeg.Height, jpeg.Bytes!);
    }

    private static NativeImage DecodeGif(Stream stream, GifHeader header, string sourceName)
    {
        var decoder = new GifDecoder { DecodingMode = FrameDecodingMode.First };
        return Load<Rgba32>(stream, decoder, sourceName, header.Mode, header.CanvasColour);
    }

    private static NativeImage DecodeTiff(Stream stream, string sourceName)
    {
        // The frame metadata (photometric interpretation, samples) is only known after decoding, so TIFF is
        // decoded at 16 bits per channel and the mode chosen afterwards. Approximations: a 16-bit grey TIFF opens
        // as I;16 in Pillow and is treated here like I; CMYK and YCbCr become RGB before resizing (ImageSharp 2.x
        // decodes only to RGB pixel types, so the CMYK samples Pillow would resize are not available).
        var decoder = new TiffDecoder { DecodingMode = FrameDecodingMode.First };
        using var image = LoadImage<Rgba64>(stream, decoder, sourceName);
        var tiff = image.Frames.RootFrame.Metadata.GetTiffMetadata();
        int channels = tiff.BitsPerSample?.Channels ?? 1;
        int bitsPerPixel = (int)(tiff.BitsPerPixel ?? TiffBitsPerPixel.Bit24);
        var mode = tiff.PhotometricInterpretation switch
        {
            TiffPhotometricInterpretation.WhiteIsZero or TiffPhotometricInterpretation.BlackIsZero => channels >= 2
                ? PillowMode.LA
                : bitsPerPixel switch { 1 => PillowMode.Bilevel, <= 8 => PillowMode.L, _ => PillowMode.I },
            TiffPhotometricInterpretation.PaletteColor => PillowMode.P,
            TiffPhotometricInterpretation.Rgb when channels >= 4 => PillowMode.Rgba,
            _ => PillowMode.Rgb,
        };
        return PixelCopy.ToNative(image, mode, null);
    }

    private static NativeImage DecodeOther(Stream stream, IImageInfo info, IImageFormat format, string sourceName)
    {
        // TGA and PBM/PGM/PPM: the header's bit depth is the best available guide to Pillow's mode
        // (8-bit grey → L, 16-bit grey PGM → I, 32 bits → RGBA). Colour-mapped TGA is treated as RGB.
        int bits = info.PixelType.BitsPerPixel;
        var mode = bits switch
        {
            1 => PillowMode.Bilevel,
            8 => PillowMode.L,
            16 when format is PbmFormat => PillowMode.I,
            32 => PillowMode.Rgba,
            _ => PillowMode.Rgb,
        };
        return mode == PillowMode.I
            ? Load<Rgba64>(stream, null, sourceName, mode)
            : Load<Rgba32>(stream, null, sourceName, mode);
    }

    private static NativeImage Load<TPixel>(Stream stream, IImageDecoder? decoder, string sourceName, PillowMode mode,
        (byte R, byte G, byte B)? transparentColour = null)
        where TPixel : unmanaged, IPixel<TPixel>
    {
        using var image = LoadImage<TPixel>(stream, decoder, sourceName);
        return PixelCopy.ToNative(image, mode, transparentColour);
    }

    private static Image<TPixel> LoadImage<TPixel>(Stream stream, IImageDecoder? decoder, string sourceName)
        where TPixel : unmanaged, IPixel<TPixel>
    {
        try
        {
            return decoder is null
                ? Image.Load<TPixel>(Configuration, stream)
                : Image.Load<TPixel>(Configuration, stream, decoder);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // Any failure inside the third-party decoder means the pixel data is damaged or unsupported.
            throw InvalidImage.Error(sourceName, $"cannot decode the image data ({e.Message.TrimEnd('.')})", e);
        }
    }
}
