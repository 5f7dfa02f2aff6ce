using System.Buffers.Binary;
using ManagedClip.Imaging;
using ManagedClip.Model;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats.Bmp;
using SixLabors.ImageSharp.Formats.Png;
using SixLabors.ImageSharp.Formats.Tiff;
using SixLabors.ImageSharp.Formats.Webp;
using SixLabors.ImageSharp.PixelFormats;

namespace ManagedClip.Tests.Imaging;

/// <summary>
/// Formats and modes the reference set does not cover. The reference PNGs are re-encoded losslessly into other
/// containers; where Pillow would open the result in the same mode, the crop must still equal the reference
/// bytes exactly. Where no Pillow output exists, the test checks the property the mode rule implies.
/// </summary>
public class FormatModeTests
{
    private const int Size = 224;
    private static readonly ImagePreprocessor Preprocessor = ImagePreprocessor.For(ClipConfig.BiomedClip);
    private static readonly ReferenceTensors Reference = ReferenceTensors.Preprocess;

    private static string ReferencePath(string name) => Path.Combine(TestData.Images, name + ".png");

    private static (PillowMode Mode, byte[] Rgb) Run(byte[] encoded, string name)
    {
        var native = Preprocessor.Decode(encoded, name);
        var rgb = new byte[Size * Size * 3];
        Preprocessor.ResizeCropToRgb(native, rgb);
        return (native.Mode, rgb);
    }

    private static byte[] Encode(Image image, SixLabors.ImageSharp.Formats.IImageEncoder encoder)
    {
        var stream = new MemoryStream();
        image.Save(stream, encoder);
        return stream.ToArray();
    }

    public static TheoryData<string> LosslessRgbEncoders => new() { "bmp24", "tiff", "webp-lossless" };

    [Theory]
    [MemberData(nameof(LosslessRgbEncoders))]
    public void LosslessRgbContainersGiveThePngResult(string container)
    {
        using var image = SixLabors.ImageSharp.Image.Load<Rgb24>(ReferencePath("ihc"));
        byte[] encoded = container switch
        {
            "bmp24" => Encode(image, new BmpEncoder { BitsPerPixel = BmpBitsPerPixel.Pixel24 }),
            "tiff" => Encode(image, new TiffEncoder { BitsPerPixel = TiffBitsPerPixel.Bit24 }),
            _ => Encode(image, new WebpEncoder { FileFormat = WebpFileFormatType.Lossless }),
        };
        var (mode, rgb) = Run(encoded, "ihc." + container);
        // WebP's mode follows its header's alpha flag (set or not by the encoder); opaque RGBA gives the same bytes.
        if (container != "webp-lossless") Assert.Equal(PillowMode.Rgb, mode);
        PreprocessReferenceTests.AssertBytesEqual(Reference.U8("ihc.rgb224"), rgb, $"ihc as {container}");
    }

    /// <summary>
    /// 16-bit colour PNG: Pillow keeps the high byte of each sample (RGB;16B), so low bytes of 200 must not round
    /// the value up (ImageSharp's own 16→8 conversion would).
    /// </summary>
    [Fact]
    public void SixteenBitColourKeepsTheHighByte()
    {
        using var eight = SixLabors.ImageSharp.Image.Load<Rgb24>(ReferencePath("ihc"));
        using var sixteen = new Image<Rgb48>(eight.Width, eight.Height);
        for (int y = 0; y < eight.Height; y++)
            for (int x = 0; x < eight.Width; x++)
            {
                var p = eight[x, y];
                sixteen[x, y] = new Rgb48((ushort)(p.R * 256 + 200), (ushort)(p.G * 256 + 200), (ushort)(p.B * 256 + 200));
            }
        var (mode, rgb) = Run(Encode(sixteen, new PngEncoder { BitDepth = PngBitDepth.Bit16, ColorType = PngColorType.Rgb }), "ihc16.png");
        Assert.Equal(PillowMode.Rgb, mode);
        PreprocessReferenceTests.AssertBytesEqual(Reference.U8("ihc.rgb224"), rgb, "ihc as 16-bit PNG");
    }

    /// <summary>16-bit grey PNG opens as mode I: values above 255 clip to white instead of being rescaled.</summary>
    [Theory]
    [InlineData(1000, 255)]
    [InlineData(100, 100)]
    public void SixteenBitGreyIsModeIAndClips(int value, byte expected)
    {
        using var image = new Image<L16>(300, 200, new L16((ushort)value));
        var (mode, rgb) = Run(Encode(image, new PngEncoder { BitDepth = PngBitDepth.Bit16, ColorType = PngColorType.Grayscale }), "grey16.png");
        Assert.Equal(PillowMode.I, mode);
        Assert.All(rgb, b => Assert.Equal(expected, b));
    }

    /// <summary>
    /// A 16-bit grey PNG holding gray.png's levels (v, not v·257) decodes to mode I with exactly those values, and
    /// the chain equals the naive mode-I transcription + crop + clip. (It is not the mode-L result: mode I does not
    /// clip the bicubic overshoot between the two passes, which moves edge pixels by a few levels.)
    /// </summary>
    [Fact]
    public void SixteenBitGreyFollowsTheModeIPath()
    {
        using var grey = SixLabors.ImageSharp.Image.Load<L8>(ReferencePath("gray"));
        using var wide = new Image<L16>(grey.Width, grey.Height);
        var levels = new int[grey.Width * grey.Height];
        for (int y = 0; y < grey.Height; y++)
            for (int x = 0; x < grey.Width; x++)
            {
                levels[y * grey.Width + x] = grey[x, y].PackedValue;
                wide[x, y] = new L16(grey[x, y].PackedValue);
            }
        var encoded = Encode(wide, new PngEncoder { BitDepth = PngBitDepth.Bit16, ColorType = PngColorType.Grayscale });
        var native = Preprocessor.Decode(encoded, "gray16.png");
        Assert.Equal(PillowMode.I, native.Mode);
        Assert.Equal(levels, native.Ints);

        var (mode, rgb) = Run(encoded, "gray16.png");
        var resized = NaiveBicubic.ResizeInt32(levels, 320, 240, 298, 224); // gray.png: 320x240 → 298x224, left 37
        for (int y = 0; y < Size; y++)
            for (int x = 0; x < Size; x++)
            {
                byte expected = (byte)Math.Clamp(resized[y * 298 + x + 37], 0, 255);
                Assert.Equal(expected, rgb[(y * Size + x) * 3]);
            }
    }

    /// <summary>1-bit grey PNG opens as mode "1", which Pillow resizes with NEAREST: no grey levels appear.</summary>
    [Fact]
    public void BilevelPngIsResizedNearest()
    {
        using var image = SixLabors.ImageSharp.Image.Load<L8>(ReferencePath("cell"));
        image.ProcessPixelRows(rows =>
        {
            for (int y = 0; y < rows.Height; y++)
                foreach (ref var p in rows.GetRowSpan(y)) p = new L8(p.PackedValue >= 128 ? (byte)255 : (byte)0);
        });
        var (mode, rgb) = Run(Encode(image, new PngEncoder { BitDepth = PngBitDepth.Bit1, ColorType = PngColorType.Grayscale }), "cell1.png");
        Assert.Equal(PillowMode.Bilevel, mode);
        Assert.All(rgb, b => Assert.True(b is 0 or 255));
        Assert.Contains((byte)0, rgb);
        Assert.Contains((byte)255, rgb);
    }

    /// <summary>An 8-bit BMP whose palette is exactly the grey ramp opens as L in Pillow (bicubic), so it equals gray.png.</summary>
    [Fact]
    public void GreyRampBmpIsModeL()
    {
        using var grey = SixLabors.ImageSharp.Image.Load<L8>(ReferencePath("gray"));
        var (mode, rgb) = Run(PaletteBmp(grey, index => index), "gray.bmp");
        Assert.Equal(PillowMode.L, mode);
        PreprocessReferenceTests.AssertBytesEqual(Reference.U8("gray.rgb224"), rgb, "gray as 8-bit grey-ramp BMP");
    }

    /// <summary>The same picture with any other palette order opens as P (nearest): only palette colours appear.</summary>
    [Fact]
    public void OtherPaletteBmpIsModeP()
    {
        using var grey = SixLabors.ImageSharp.Image.Load<L8>(ReferencePath("gray"));
        var (mode, rgb) = Run(PaletteBmp(grey, index => index ^ 1), "gray-swapped.bmp"); // entries 2k and 2k+1 swapped
        Assert.Equal(PillowMode.P, mode);
        var native = Preprocessor.Decode(PaletteBmp(grey, index => index ^ 1), "gray-swapped.bmp");
        var decodedLevels = native.Bytes.Where((_, i) => i % 3 == 0).ToHashSet();
        Assert.All(rgb, b => Assert.Contains(b, decodedLevels));
    }

    /// <summary>
    /// GIF frame 0 is mode P unless its palette is the grey ramp. palette.png's 37 colours written as a GIF (by hand,
    /// so the indices are exact) must give the palette reference (nearest).
    /// </summary>
    [Fact]
    public void PaletteGifIsModePAndMatchesThePaletteReference()
    {
        using var image = SixLabors.ImageSharp.Image.Load<Rgb24>(ReferencePath("palette"));
        var colours = new List<Rgb24>();
        var indices = new byte[image.Width * image.Height];
        for (int y = 0; y < image.Height; y++)
            for (int x = 0; x < image.Width; x++)
            {
                int index = colours.IndexOf(image[x, y]);
                if (index < 0) { index = colours.Count; colours.Add(image[x, y]); }
                indices[y * image.Width + x] = (byte)index;
            }
        var palette = new byte[3 * 256];
        for (int i = 0; i < colours.Count; i++) (palette[3 * i], palette[3 * i + 1], palette[3 * i + 2]) = (colours[i].R, colours[i].G, colours[i].B);
        var (mode, rgb) = Run(Gif(image.Width, image.Height, palette, indices, transparentIndex: null), "palette.gif");
        Assert.Equal(PillowMode.P, mode);
        PreprocessReferenceTests.AssertBytesEqual(Reference.U8("palette.rgb224"), rgb, "palette as GIF");
    }

    [Fact]
    public void GreyRampGifIsModeL()
    {
        var ramp = Enumerable.Range(0, 768).Select(i => (byte)(i / 3)).ToArray();
        var native = Preprocessor.Decode(Gif(4, 2, ramp, [10, 20, 30, 40, 50, 60, 70, 80], transparentIndex: null), "ramp.gif");
        Assert.Equal(PillowMode.L, native.Mode);
        Assert.Equal(new byte[] { 10, 20, 30, 40, 50, 60, 70, 80 }, native.Bytes);
    }

    /// <summary>Pillow keeps the transparent index's palette colour (convert("RGB") ignores transparency).</summary>
    [Fact]
    public void GifTransparentPixelsShowTheirPaletteColour()
    {
        var palette = new byte[3 * 256];
        (palette[0], palette[1], palette[2]) = ((byte)20, (byte)200, (byte)30);
        (palette[3], palette[4], palette[5]) = ((byte)200, (byte)10, (byte)10);
        var native = Preprocessor.Decode(Gif(2, 1, palette, [0, 1], transparentIndex: 1), "transparent.gif");
        Assert.Equal(PillowMode.P, native.Mode);
        Assert.Equal(new byte[] { 20, 200, 30, 200, 10, 10 }, native.Bytes);
    }

    /// <summary>A GIF89a with a 256-entry global table, optional graphic control extension, one full frame.</summary>
    private static byte[] Gif(int width, int height, byte[] palette, byte[] indices, int? transparentIndex)
    {
        var gif = new MemoryStream();
        gif.Write("GIF89a"u8);
        gif.Write([(byte)width, (byte)(width >> 8), (byte)height, (byte)(height >> 8), 0xF7, 0, 0]);
        gif.Write(palette.AsSpan(0, 768));
        if (transparentIndex is int t) gif.Write([0x21, 0xF9, 4, 1, 0, 0, (byte)t, 0]);
        gif.Write([0x2C, 0, 0, 0, 0, (byte)width, (byte)(width >> 8), (byte)height, (byte)(height >> 8), 0]);
        gif.WriteByte(8); // LZW minimum code size
        var data = LzwUncompressed(indices);
        for (int at = 0; at < data.Length; at += 255)
        {
            int length = Math.Min(255, data.Length - at);
            gif.WriteByte((byte)length);
            gif.Write(data, at, length);
        }
        gif.Write([0, 0x3B]);
        return gif.ToArray();
    }

    /// <summary>An uncompressed 8-bit BMP of a grey image with palette entry i = grey level paletteOf(i).</summary>
    private static byte[] PaletteBmp(Image<L8> grey, Func<int, int> paletteOf)
    {
        int stride = (grey.Width + 3) & ~3;
        int pixelsAt = 14 + 40 + 1024;
        var bmp = new byte[pixelsAt + stride * grey.Height];
        bmp[0] = (byte)'B';
        bmp[1] = (byte)'M';
        BinaryPrimitives.WriteInt32LittleEndian(bmp.AsSpan(2), bmp.Length);
        BinaryPrimitives.WriteInt32LittleEndian(bmp.AsSpan(10), pixelsAt);
        BinaryPrimitives.WriteInt32LittleEndian(bmp.AsSpan(14), 40);
        BinaryPrimitives.WriteInt32LittleEndian(bmp.AsSpan(18), grey.Width);
        BinaryPrimitives.WriteInt32LittleEndian(bmp.AsSpan(22), grey.Height); // positive: rows stored bottom-up
        BinaryPrimitives.WriteInt16LittleEndian(bmp.AsSpan(26), 1);
        BinaryPrimitives.WriteInt16LittleEndian(bmp.AsSpan(28), 8);
        var indexOfLevel = new int[256];
        for (int i = 0; i < 256; i++)
        {
            int level = paletteOf(i);
            indexOfLevel[level] = i;
            bmp[54 + 4 * i] = bmp[55 + 4 * i] = bmp[56 + 4 * i] = (byte)level;
        }
        for (int y = 0; y < grey.Height; y++)
            for (int x = 0; x < grey.Width; x++)
                bmp[pixelsAt + (grey.Height - 1 - y) * stride + x] = (byte)indexOfLevel[grey[x, y].PackedValue];
        return bmp;
    }

    /// <summary>
    /// GIF LZW data for 8-bit indices without compression: a clear code before every few pixels keeps the code
    /// width at 9 bits. Codes are packed least-significant bit first.
    /// </summary>
    private static byte[] LzwUncompressed(byte[] indices)
    {
        const int clear = 256, end = 257;
        var codes = new List<int> { clear };
        foreach (byte index in indices) codes.AddRange([index, clear]);
        codes.Add(end);
        var bytes = new List<byte>();
        int buffer = 0, bits = 0;
        foreach (int code in codes)
        {
            buffer |= code << bits;
            bits += 9;
            while (bits >= 8)
            {
                bytes.Add((byte)buffer);
                buffer >>= 8;
                bits -= 8;
            }
        }
        if (bits > 0) bytes.Add((byte)buffer);
        return bytes.ToArray();
    }
}
