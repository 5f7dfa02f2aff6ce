using ManagedClip.Imaging.Dicom;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats;
using SixLabors.ImageSharp.Formats.Bmp;
using ManagedClip.Imaging.Jpeg;
using SixLabors.ImageSharp.Formats.Gif;
using SixLabors.ImageSharp.Formats.Pbm;
using SixLabors.ImageSharp.Formats.Png;
using SixLabors.ImageSharp.Formats.Tga;
using SixLabors.ImageSharp.Formats.Tiff;
using SixLabors.ImageSharp.Formats.Tiff.Constants;
using SixLabors.ImageSharp.Formats.Webp;
using SixLabors.ImageSharp.Metadata;
using SixLabors.ImageSharp.PixelFormats;

namespace ManagedClip.Imaging;

/// <summary>
/// Encoded bytes → pixels in the mode <c>PIL.Image.open</c> would give (Pillow 9.4). JPEG is decoded by our own
/// libjpeg-turbo-exact <see cref="JpegDecoder"/> (so JPEG pixels equal Pillow's), DICOM by <see cref="DicomImageReader"/>
/// (rendered to L or RGB), the other formats by ImageSharp. The header is identified first and checked against the
/// pixel and aspect limits before any pixel is decoded. No EXIF orientation is applied: open_clip's reference
/// pipeline does not rotate either.
/// </summary>
internal static class ImageDecoding
{
    // Decoded pixels live in ordinary managed arrays (ImageSharp's default pools unmanaged memory, which the C
    // library's allocator tends to keep after a burst): the GC then returns them, and tests can count them.
    private static readonly Configuration Configuration = CreateConfiguration();

    private static Configuration CreateConfiguration()
    {
        var configuration = Configuration.Default.Clone();
        configuration.MemoryAllocator = new SixLabors.ImageSharp.Memory.SimpleGcMemoryAllocator();
        configuration.MaxDegreeOfParallelism = 1; // one image per thread; the caller runs images in parallel
        return configuration;
    }

    /// <summary>Gives the decoder's pooled pixel buffers back to the operating system (a server after a burst).</summary>
    public static void ReleaseRetainedMemory() => Configuration.MemoryAllocator.ReleaseRetainedResources();

    /// <summary>Decodes <paramref name="encoded"/> (named <paramref name="sourceName"/> in errors) into arrays.</summary>
    /// <param name="encoded">The file's bytes.</param>
    /// <param name="sourceName">Name for messages.</param>
    /// <param name="maxPixels">Largest accepted width × height, checked before decoding.</param>
    /// <param name="frame">Zero-based frame of a multi-frame DICOM file; other formats only have frame 0.</param>
    /// <exception cref="InvalidDataException">Empty, unreadable, truncated, unsupported or over the pixel limit.</exception>
    public static NativeImage Decode(ReadOnlySpan<byte> encoded, string sourceName, long maxPixels, int frame = 0)
    {
        using var rows = Open(encoded, sourceName, new ImageLimits(maxPixels, 0), frame);
        return NativeImage.CopyOf(rows);
    }

    /// <summary>
    /// Decodes <paramref name="encoded"/> (named <paramref name="sourceName"/> in errors), leaving the pixels in the
    /// decoder's buffer to be read row by row; the caller disposes the result.
    /// </summary>
    /// <exception cref="InvalidDataException">Empty, unreadable, truncated, unsupported or over a limit.</exception>
    public static unsafe PixelRows Open(ReadOnlySpan<byte> encoded, string sourceName, ImageLimits limits, int frame = 0)
    {
        if (encoded.IsEmpty) throw InvalidImage.Error(sourceName, "the file is empty (0 bytes)");
        // DICOM is recognised from content (Part 10 signature, or a bare data set) and read by Dicom/, rendered to L
        // or RGB. Its rows and columns are at most 65535, so only the pixel limit can refuse it.
        if (DicomImageReader.IsDicom(encoded)) return DicomImageReader.Decode(encoded, sourceName, limits.MaxPixels, frame);
        if (frame != 0)
            throw InvalidImage.Error(sourceName, $"frame {frame} was asked for, but frames can only be chosen in DICOM files (this one is not DICOM)");
        // Pillow's JPEG plugin claims files that start FF D8 FF; so does ours, ahead of ImageSharp.
        if (encoded.StartsWith(JpegSignature)) return DecodeJpeg(encoded, sourceName, limits.MaxPixels);
        // Formats ImageSharp 2.1 cannot open the way Pillow does: icons, animations, palettes without PLTE.
        if (IcoFile.IsIco(encoded)) return DecodeIco(encoded, sourceName, limits);
        WebpHeader? webp = null;
        if (encoded.Length >= 12 && encoded.StartsWith("RIFF"u8) && encoded.Slice(8, 4).SequenceEqual("WEBP"u8))
        {
            webp = WebpHeader.Read(encoded, sourceName); // refuses a truncated file
            if (webp.CanvasWidth > 0) limits.Check(webp.CanvasWidth, webp.CanvasHeight, "WebP canvas", sourceName);
            if (webp.IsAnimated) return DecodeAnimatedWebp(encoded, webp, sourceName, limits);
        }
        if (encoded.Length >= 4 && (encoded.StartsWith("II*\0"u8) || encoded.StartsWith("MM\0*"u8)) &&
            TiffHeader.FindDirectoryTruncation(encoded) is { } cutDirectory)
            throw InvalidImage.Error(sourceName, cutDirectory);
        fixed (byte* start = encoded)
        {
            using var stream = new UnmanagedMemoryStream(start, encoded.Length);
            var (info, format) = Identify(stream, encoded, sourceName);
            limits.Check(info.Width, info.Height, format.Name, sourceName);
            var tiff = format is TiffFormat ? TiffHeader.Read(encoded) : null;
            string? damage = format switch
            {
                PngFormat => TruncationCheck.FindPngDamage(encoded),
                GifFormat => TruncationCheck.FindGifDamage(encoded),
                BmpFormat => TruncationCheck.FindBmpDamage(encoded),
                TgaFormat => TruncationCheck.FindTgaDamage(encoded),
                PbmFormat => TruncationCheck.FindPnmDamage(encoded),
                TiffFormat => tiff?.FindTruncation(encoded.Length),
                _ => null,
            };
            if (damage != null) throw InvalidImage.Error(sourceName, damage);

            stream.Position = 0;
            return format switch
            {
                PngFormat when PngPalette.LacksPalette(encoded) =>
                    DecodePngBytes(PngPalette.WithGreyRamp(encoded), sourceName),
                PngFormat => DecodePng(stream, info.Metadata.GetPngMetadata(), sourceName),
                GifFormat => DecodeGif(stream, GifHeader.Read(encoded), sourceName),
                BmpFormat => Load<Rgba32>(stream, null, sourceName, BmpHeader.ReadMode(encoded)),
                TiffFormat when tiff?.AsInterleavedGrey(encoded) is { } relabelled => DecodeGreyAlphaTiff(relabelled, sourceName),
                TiffFormat when tiff?.WithRowsPerStripAtMostHeight(encoded) is { } clamped => DecodeTiffBytes(clamped, tiff, sourceName),
                TiffFormat => DecodeTiff(stream, tiff, sourceName),
                WebpFormat => Load<Rgba32>(stream, null, sourceName, webp!.Mode),
                _ => DecodeOther(stream, info, format, sourceName),
            };
        }
    }

    private static unsafe PixelRows DecodePngBytes(byte[] png, string sourceName)
    {
        fixed (byte* start = png)
        {
            using var stream = new UnmanagedMemoryStream(start, png.Length);
            var (info, _) = Identify(stream, png, sourceName);
            stream.Position = 0;
            return DecodePng(stream, info.Metadata.GetPngMetadata(), sourceName);
        }
    }

    private static unsafe PixelRows DecodeTiffBytes(byte[] tiff, TiffHeader? header, string sourceName)
    {
        fixed (byte* start = tiff)
        {
            using var stream = new UnmanagedMemoryStream(start, tiff.Length);
            return DecodeTiff(stream, header, sourceName);
        }
    }

    /// <summary>An LA TIFF decoded as grey twice as wide (<see cref="TiffHeader.AsInterleavedGrey"/>), split back into grey and alpha.</summary>
    private static PixelRows DecodeGreyAlphaTiff(byte[] relabelled, string sourceName)
    {
        using var grey = Open(relabelled, sourceName, new ImageLimits(long.MaxValue, 0));
        var la = NativeImage.Create(PillowMode.LA, grey.Width / 2, grey.Height);
        for (int y = 0; y < grey.Height; y++) grey.ReadRow(y, 0, la.Bytes.AsSpan(y * grey.Width, grey.Width));
        return la;
    }

    /// <summary>
    /// An animation opens as its first frame on the canvas (libwebp's WebPAnimDecoder, which Pillow uses): the
    /// canvas starts transparent black and the first frame is decoded straight into its rectangle, no blending.
    /// </summary>
    private static PixelRows DecodeAnimatedWebp(ReadOnlySpan<byte> encoded, WebpHeader webp, string sourceName, ImageLimits limits)
    {
        var (still, x, y, width, height) = webp.FirstFrame(encoded, sourceName);
        using var frame = Open(still, sourceName, limits);
        if (frame.Width != width || frame.Height != height)
            throw InvalidImage.Error(sourceName,
                $"malformed animated WebP: the first frame's bitstream is {frame.Width}x{frame.Height} but its frame header says {width}x{height}");
        var canvas = NativeImage.Create(PillowMode.Rgba, webp.CanvasWidth, webp.CanvasHeight);
        var row = new byte[frame.Width * frame.Channels];
        for (int r = 0; r < frame.Height; r++)
        {
            frame.ReadRow(r, 0, row);
            var target = canvas.Bytes.AsSpan(((y + r) * canvas.Width + x) * 4, frame.Width * 4);
            if (frame.Mode == PillowMode.Rgba) row.CopyTo(target);
            else
                for (int i = 0; i < frame.Width; i++)
                    (target[4 * i], target[4 * i + 1], target[4 * i + 2], target[4 * i + 3]) = (row[3 * i], row[3 * i + 1], row[3 * i + 2], 255);
        }
        if (webp.Mode == PillowMode.Rgba) return canvas;
        // RGB: Pillow reads the canvas as RGBX, so the alpha byte is dropped.
        var rgb = NativeImage.Create(PillowMode.Rgb, canvas.Width, canvas.Height);
        for (int i = 0; i < canvas.Width * canvas.Height; i++)
            (rgb.Bytes[3 * i], rgb.Bytes[3 * i + 1], rgb.Bytes[3 * i + 2]) = (canvas.Bytes[4 * i], canvas.Bytes[4 * i + 1], canvas.Bytes[4 * i + 2]);
        return rgb;
    }

    /// <summary>A Windows icon: the entry Pillow loads, as its PNG (own mode) or as RGBA with the mask as alpha.</summary>
    private static PixelRows DecodeIco(ReadOnlySpan<byte> encoded, string sourceName, ImageLimits limits)
    {
        var ico = IcoFile.Read(encoded, sourceName);
        var entry = encoded.Slice(ico.Offset, ico.Length);
        if (ico.IsPng(encoded)) return Open(entry, sourceName, limits);
        var (bmp, dib) = ico.ColourImageAsBmp(encoded, sourceName);
        limits.Check(dib.Width, dib.Height, "ICO", sourceName);
        var alpha = ico.Alpha(encoded, dib, sourceName);
        using var colour = Open(bmp, sourceName, limits);
        var rgba = NativeImage.Create(PillowMode.Rgba, dib.Width, dib.Height);
        var row = new byte[dib.Width * colour.Channels];
        for (int y = 0; y < dib.Height; y++)
        {
            colour.ReadRow(y, 0, row);
            for (int x = 0; x < dib.Width; x++)
            {
                int p = (y * dib.Width + x) * 4;
                // convert("RGBA"): grey (1, L) spreads to R, G and B; palette and RGB bytes are the colour.
                if (colour.Channels == 1) rgba.Bytes[p] = rgba.Bytes[p + 1] = rgba.Bytes[p + 2] = row[x];
                else (rgba.Bytes[p], rgba.Bytes[p + 1], rgba.Bytes[p + 2]) = (row[3 * x], row[3 * x + 1], row[3 * x + 2]);
                rgba.Bytes[p + 3] = alpha[y * dib.Width + x];
            }
        }
        return rgba;
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
            throw InvalidImage.Error(sourceName, $"unreadable image header{DecoderProblem(e)}", e);
        }
        if (info is null || format is null)
            throw InvalidImage.Error(sourceName,
                $"not a supported image: the content is {ContentSniffer.Describe(encoded)}; readable formats are PNG, JPEG, DICOM, BMP, GIF, TIFF, WebP, TGA and PBM/PGM/PPM");
        return (info, format);
    }

    private static PixelRows DecodePng(Stream stream, PngMetadata png, string sourceName)
    {
        // Pillow 9.4 PngImagePlugin._MODES: grey 1 bit → "1", 2/4/8 bits → L, 16 bits → I (0..65535);
        // 16-bit colour keeps the high byte of each sample (rawmodes RGB;16B, RGBA;16B, LA;16B).
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
        if (png.BitDepth != PngBitDepth.Bit16) return Load<Rgba32>(stream, null, sourceName, mode);
        // The narrowest ImageSharp pixel that holds the samples: the decoded buffer is the image's whole cost.
        return mode switch
        {
            PillowMode.I => Load<L16>(stream, null, sourceName, mode),
            PillowMode.Rgb => Load<Rgb48>(stream, null, sourceName, mode),
            _ => Load<Rgba64>(stream, null, sourceName, mode),
        };
    }

    private static ReadOnlySpan<byte> JpegSignature => [0xFF, 0xD8, 0xFF];

    private static NativeImage DecodeJpeg(ReadOnlySpan<byte> encoded, string sourceName, long maxPixels)
    {
        // Pillow's modes: 1 component → L, 3 → RGB, 4 → CMYK (kept as CMYK through the resize, as Pillow does).
        var jpeg = JpegDecoder.Decode(encoded, sourceName, maxPixels);
        var mode = jpeg.Components switch { 1 => PillowMode.L, 3 => PillowMode.Rgb, _ => PillowMode.Cmyk };
        return NativeImage.FromBytes(mode, jpeg.Width, jpeg.Height, jpeg.Bytes!);
    }

    private static PixelRows DecodeGif(Stream stream, GifHeader header, string sourceName)
    {
        var decoder = new GifDecoder { DecodingMode = FrameDecodingMode.First };
        return Load<Rgba32>(stream, decoder, sourceName, header.Mode, header.CanvasColour);
    }

    private static PixelRows DecodeTiff(Stream stream, TiffHeader? header, string sourceName)
    {
        // The mode comes from IFD0 as Pillow's OPEN_INFO reads it; 8-bit layouts decode into 8-bit pixels.
        // Approximations: a 16-bit grey TIFF opens as I;16 in Pillow and is treated here like I; CMYK becomes RGB
        // before resizing (ImageSharp 2.x decodes only to RGB pixel types, so the CMYK samples Pillow would resize
        // are not available).
        var decoder = new TiffDecoder { DecodingMode = FrameDecodingMode.First };
        if (header?.Mode is { } known)
        {
            if (known == PillowMode.I) return Load<Rgba64>(stream, decoder, sourceName, known);
            return header.IsEightBit ? Load<Rgba32>(stream, decoder, sourceName, known) : Load<Rgba64>(stream, decoder, sourceName, known);
        }
        // Other layouts: the frame metadata is only known after decoding, so decode at 16 bits and decide then.
        var image = LoadImage<Rgba64>(stream, decoder, sourceName);
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
        return new ImageSharpRows<Rgba64>(image, mode);
    }

    private static PixelRows DecodeOther(Stream stream, IImageInfo info, IImageFormat format, string sourceName)
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

    private static PixelRows Load<TPixel>(Stream stream, IImageDecoder? decoder, string sourceName, PillowMode mode,
        (byte R, byte G, byte B)? transparentColour = null)
        where TPixel : unmanaged, IPixel<TPixel> =>
        new ImageSharpRows<TPixel>(LoadImage<TPixel>(stream, decoder, sourceName), mode, transparentColour);

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
            throw InvalidImage.Error(sourceName, $"cannot decode the image data{DecoderProblem(e)}", e);
        }
    }

    /// <summary>
    /// What the decoder said, when it said it in words meant for people: ImageSharp's own format errors ("PNG Image
    /// does not contain a data chunk"). A crash inside the decoder (index, null or argument errors) names no problem
    /// the user can act on, so it becomes "the image data is damaged".
    /// </summary>
    private static string DecoderProblem(Exception e) => e switch
    {
        ImageFormatException or NotSupportedException => $" ({UserText.Quote(e.Message.TrimEnd('.'), 200)})",
        _ => ": the image data is damaged (the decoder could not read it)",
    };
}
