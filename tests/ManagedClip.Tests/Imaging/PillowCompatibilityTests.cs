using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using ManagedClip.Imaging;
using ManagedClip.Model;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats.Bmp;
using SixLabors.ImageSharp.Formats.Gif;
using SixLabors.ImageSharp.Formats.Pbm;
using SixLabors.ImageSharp.Formats.Tga;
using SixLabors.ImageSharp.Formats.Tiff;
using SixLabors.ImageSharp.Formats.Tiff.Constants;
using SixLabors.ImageSharp.Formats.Webp;
using SixLabors.ImageSharp.PixelFormats;
using Xunit.Abstractions;

namespace ManagedClip.Tests.Imaging;

/// <summary>
/// Where a user would compare with Pillow 9.4: files Pillow refuses as "image file is truncated" are refused (not
/// filled in), and files Pillow reads (1-bit and LA TIFF, ICO, animated WebP, palette PNG without PLTE) are read in
/// Pillow's mode with Pillow's pixels. No Pillow runs here; each expectation is derived from Pillow 9.4's source
/// (named in each test) and checked on files built byte by byte.
/// </summary>
public sealed class PillowCompatibilityTests(ITestOutputHelper output)
{
    private static readonly ImagePreprocessor Preprocessor = ImagePreprocessor.For(ClipConfig.BiomedClip);

    private InvalidDataException Refused(byte[] file, string name)
    {
        var error = Assert.Throws<InvalidDataException>(() => Preprocessor.Preprocess(file, name));
        output.WriteLine(error.Message);
        Assert.StartsWith(name + ": ", error.Message);
        Assert.DoesNotContain('\n', error.Message);
        return error;
    }

    private static Image<Rgb24> Picture(int width, int height)
    {
        var image = new Image<Rgb24>(width, height);
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++) image[x, y] = new Rgb24((byte)(x * 7), (byte)(y * 5), (byte)(x ^ y));
        return image;
    }

    private static byte[] Encode(Image image, SixLabors.ImageSharp.Formats.IImageEncoder encoder)
    {
        var stream = new MemoryStream();
        image.Save(stream, encoder);
        return stream.ToArray();
    }

    public static TheoryData<string> Containers => new() { "gif", "bmp", "tga", "tga-rle", "ppm", "pgm-plain", "tiff", "webp" };

    /// <summary>
    /// A whole file decodes; the same file cut at 60% of its length is refused as truncated (ImageFile.load:
    /// "image file is truncated" when the decoder still wants data at the end of the file; libwebp's demuxer for WebP).
    /// </summary>
    [Theory]
    [MemberData(nameof(Containers))]
    public void CutFilesAreRefusedAsTruncated(string container)
    {
        using var picture = Picture(90, 70);
        byte[] whole = container switch
        {
            "gif" => Encode(picture, new GifEncoder()),
            "bmp" => Encode(picture, new BmpEncoder { BitsPerPixel = BmpBitsPerPixel.Pixel24 }),
            "tga" => Encode(picture, new TgaEncoder { BitsPerPixel = TgaBitsPerPixel.Pixel24, Compression = TgaCompression.None }),
            "tga-rle" => Encode(picture, new TgaEncoder { BitsPerPixel = TgaBitsPerPixel.Pixel24, Compression = TgaCompression.RunLength }),
            "ppm" => Encode(picture, new PbmEncoder { ColorType = PbmColorType.Rgb, Encoding = PbmEncoding.Binary }),
            "pgm-plain" => Encode(picture, new PbmEncoder { ColorType = PbmColorType.Grayscale, Encoding = PbmEncoding.Plain }),
            "tiff" => Encode(picture, new TiffEncoder { BitsPerPixel = TiffBitsPerPixel.Bit24, Compression = TiffCompression.None }),
            _ => Encode(picture, new WebpEncoder { FileFormat = WebpFileFormatType.Lossless }),
        };
        Preprocessor.Preprocess(whole, "whole." + container); // the complete file is fine
        var error = Refused(whole[..(whole.Length * 6 / 10)], "cut." + container);
        Assert.Contains("truncated", error.Message);
    }

    /// <summary>
    /// A PNG whose chunks are all whole but whose IDAT inflates to only half the scanlines: Pillow's PNG decoder runs
    /// out of IDAT data before the last row ("image file is truncated"); ImageSharp would fill the rest with black.
    /// </summary>
    [Fact]
    public void PngWithTooLittleImageDataIsRefused()
    {
        int width = 40, height = 30;
        var raw = new byte[height * (1 + 3 * width)];
        new Random(1).NextBytes(raw);
        for (int y = 0; y < height; y++) raw[y * (1 + 3 * width)] = 0; // filter type None
        Assert.NotNull(Preprocessor.Preprocess(Png(width, height, 2, Zlib(raw)), "whole.png"));
        var error = Refused(Png(width, height, 2, Zlib(raw[..(raw.Length / 2)])), "short.png");
        Assert.Contains("image file is truncated", error.Message);
    }

    /// <summary>
    /// Palette PNG without PLTE: Pillow keeps the palette every new P image starts with (Palette.c ImagingPaletteNew:
    /// entry i = (i, i, i)), so index i shows as grey level i.
    /// </summary>
    [Fact]
    public void PalettePngWithoutPlteUsesPillowsGreyRamp()
    {
        int width = 6, height = 2;
        var raw = new byte[height * (1 + width)];
        byte[] indices = [0, 7, 50, 100, 200, 255, 1, 2, 3, 4, 5, 6];
        for (int y = 0; y < height; y++) indices.AsSpan(y * width, width).CopyTo(raw.AsSpan(y * (1 + width) + 1));
        var native = Preprocessor.Decode(Png(width, height, 3, Zlib(raw)), "noplte.png");
        Assert.Equal(PillowMode.P, native.Mode);
        Assert.Equal(indices.SelectMany(i => new[] { i, i, i }).ToArray(), native.Bytes);
    }

    /// <summary>TiffImagePlugin OPEN_INFO: (BlackIsZero, 1 bit) → "1"; (WhiteIsZero, 1 bit) → "1" via rawmode 1;I (inverted).</summary>
    [Theory]
    [InlineData(1)]
    [InlineData(0)]
    public void OneBitTiffIsModeOne(int photometric)
    {
        int width = 16, height = 3;
        byte[] rows = [0b1010_1010, 0b1111_0000, 0b0000_0000, 0b1111_1111, 0b1100_1100, 0b0011_0011];
        var native = Preprocessor.Decode(Tiff(width, height, [1], photometric, [], rows), "bilevel.tif");
        Assert.Equal(PillowMode.Bilevel, native.Mode);
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
            {
                bool set = (rows[y * 2 + x / 8] & (0x80 >> (x % 8))) != 0;
                bool white = photometric == 1 ? set : !set;
                Assert.Equal(white ? 255 : 0, native.Bytes[y * width + x]);
            }
    }

    /// <summary>OPEN_INFO (BlackIsZero, (8, 8), ExtraSamples (2,)) → "LA": grey and unassociated alpha kept as stored.</summary>
    [Fact]
    public void GreyAlphaTiffIsModeLA()
    {
        int width = 5, height = 4;
        var samples = Enumerable.Range(0, width * height * 2).Select(i => (byte)(i * 13 + 1)).ToArray();
        var native = Preprocessor.Decode(Tiff(width, height, [8, 8], 1, [2], samples), "la.tif");
        Assert.Equal(PillowMode.LA, native.Mode);
        Assert.Equal(samples, native.Bytes);
    }

    /// <summary>
    /// IcoImagePlugin: entries sorted by colour depth, then by area, then reversed; the first is loaded. A PNG entry
    /// keeps the PNG's own mode.
    /// </summary>
    [Fact]
    public void IcoLoadsTheLargestDeepestEntry()
    {
        using var small = Picture(16, 16);
        using var large = Picture(48, 48);
        var smallPng = Encode(small, new SixLabors.ImageSharp.Formats.Png.PngEncoder());
        var largePng = Encode(large, new SixLabors.ImageSharp.Formats.Png.PngEncoder { ColorType = SixLabors.ImageSharp.Formats.Png.PngColorType.Rgb });
        var ico = Ico((16, 16, 32, smallPng), (48, 48, 24, largePng), (48, 48, 8, smallPng)); // 48x48 at 24 bits wins
        var native = Preprocessor.Decode(ico, "icon.ico");
        Assert.Equal((PillowMode.Rgb, 48, 48), (native.Mode, native.Width, native.Height));
        Assert.Equal(Preprocessor.Decode(largePng, "large.png").Bytes, native.Bytes);
    }

    /// <summary>
    /// A BMP entry (IcoFile.frame): the lower half of a double-height DIB is the colour image; at 32 bits the alpha is
    /// each pixel's fourth byte, below that the 1-bit AND mask (set bit = transparent); the result is RGBA.
    /// </summary>
    [Theory]
    [InlineData(32)]
    [InlineData(24)]
    public void IcoBitmapEntryBecomesRgbaWithItsMask(int bits)
    {
        int width = 5, height = 3, stride = (width * bits / 8 + 3) & ~3, maskStride = 4;
        var dib = new MemoryStream();
        var header = new byte[40];
        BinaryPrimitives.WriteInt32LittleEndian(header, 40);
        BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(4), width);
        BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(8), 2 * height);
        BinaryPrimitives.WriteInt16LittleEndian(header.AsSpan(12), 1);
        BinaryPrimitives.WriteInt16LittleEndian(header.AsSpan(14), (short)bits);
        dib.Write(header);
        var expected = new byte[width * height * 4];
        for (int stored = 0; stored < height; stored++) // bottom-up
        {
            int y = height - 1 - stored;
            var row = new byte[stride];
            for (int x = 0; x < width; x++)
            {
                byte b = (byte)(10 * x + y), g = (byte)(50 + x), r = (byte)(200 - y), a = (byte)(40 * x + 3);
                int p = x * bits / 8;
                (row[p], row[p + 1], row[p + 2]) = (b, g, r);
                if (bits == 32) row[p + 3] = a;
                bool masked = (x + y) % 2 == 0;
                byte alpha = bits == 32 ? a : masked ? (byte)0 : (byte)255;
                (expected[(y * width + x) * 4], expected[(y * width + x) * 4 + 1], expected[(y * width + x) * 4 + 2], expected[(y * width + x) * 4 + 3]) = (r, g, b, alpha);
            }
            dib.Write(row);
        }
        for (int stored = 0; stored < height; stored++)
        {
            int y = height - 1 - stored;
            var mask = new byte[maskStride];
            for (int x = 0; x < width; x++)
                if ((x + y) % 2 == 0) mask[x / 8] |= (byte)(0x80 >> (x % 8));
            dib.Write(mask);
        }
        var native = Preprocessor.Decode(Ico((width, height, bits, dib.ToArray())), "bitmap.ico");
        Assert.Equal((PillowMode.Rgba, width, height), (native.Mode, native.Width, native.Height));
        Assert.Equal(expected, native.Bytes);
    }

    /// <summary>
    /// Animated WebP: libwebp's WebPAnimDecoder (which Pillow 9.4 uses for every WebP) gives the canvas with the first
    /// frame decoded into its rectangle over transparent black; VP8X's alpha flag decides RGBA or RGB.
    /// </summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void AnimatedWebpOpensAsItsFirstFrameOnTheCanvas(bool alpha)
    {
        using var first = Picture(6, 4);
        using var second = new Image<Rgb24>(6, 4, new Rgb24(255, 255, 255));
        var webp = AnimatedWebp(20, 10, alpha, (first, 8, 2), (second, 0, 0));
        var native = Preprocessor.Decode(webp, "anim.webp");
        Assert.Equal((alpha ? PillowMode.Rgba : PillowMode.Rgb, 20, 10), (native.Mode, native.Width, native.Height));
        int channels = native.Channels;
        for (int y = 0; y < 10; y++)
            for (int x = 0; x < 20; x++)
            {
                bool inside = x >= 8 && x < 14 && y >= 2 && y < 6;
                var p = native.Bytes.AsSpan((y * 20 + x) * channels, channels);
                var colour = inside ? first[x - 8, y - 2] : default;
                Assert.Equal(new[] { colour.R, colour.G, colour.B }, p[..3].ToArray());
                if (alpha) Assert.Equal(inside ? 255 : 0, p[3]);
            }
    }

    /// <summary>A WebP whose VP8X canvas is 16384² (268 MP) is refused by the pixel limit, whatever its bitstream says.</summary>
    [Fact]
    public void WebpCanvasOverThePixelLimitIsRefused()
    {
        using var small = Picture(4, 4);
        var webp = AnimatedWebp(16384, 16384, alpha: false, (small, 0, 0));
        var error = Refused(webp, "huge.webp");
        Assert.Contains("16384x16384", error.Message);
        Assert.Contains("exceeds the limit", error.Message);
    }

    /// <summary>ICO, animated WebP and PLTE-less PNG still go through the truncation checks.</summary>
    [Fact]
    public void NewFormatsRefuseTruncation()
    {
        using var picture = Picture(30, 20);
        var png = Encode(picture, new SixLabors.ImageSharp.Formats.Png.PngEncoder());
        var ico = Ico((30, 20, 32, png));
        Assert.Contains("truncated", Refused(ico[..(ico.Length - 40)], "cut.ico").Message);
        var webp = AnimatedWebp(30, 20, false, (picture, 0, 0));
        Assert.Contains("truncated", Refused(webp[..(webp.Length - 10)], "cut.webp").Message);
    }

    /// <summary>
    /// Found by the fuzz suite: RowsPerStrip far above the height means one strip (Pillow reads it so); the decoder
    /// must not size a buffer from it (it allocated 538 MB for a 1.6 KB file).
    /// </summary>
    [Fact]
    public void RowsPerStripAboveTheHeightCostsNothing()
    {
        var pixels = Enumerable.Range(0, 8 * 4 * 3).Select(i => (byte)i).ToArray();
        var honest = Preprocessor.Decode(Tiff(8, 4, [8, 8, 8], 2, [], pixels), "honest.tif");
        long before = GC.GetAllocatedBytesForCurrentThread();
        var lying = Preprocessor.Decode(Tiff(8, 4, [8, 8, 8], 2, [], pixels, rowsPerStrip: 67_108_880), "lying.tif");
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 16 << 20, "the strip buffer followed RowsPerStrip");
        Assert.Equal(honest.Bytes, lying.Bytes);
    }

    /// <summary>Found by the fuzz suite: a frame header whose size differs from its bitstream's is refused, not written past the canvas.</summary>
    [Fact]
    public void AnimatedWebpFrameOfTheWrongSizeIsRefused()
    {
        using var frame = Picture(6, 4);
        var webp = AnimatedWebp(20, 10, false, (frame, 0, 0));
        int anmf = webp.AsSpan().IndexOf("ANMF"u8);
        webp[anmf + 8 + 6] = 11; // frame width − 1: says 12, the bitstream holds 6
        var error = Refused(webp, "resized.webp");
        Assert.Contains("frame header says 12x4", error.Message);
    }

    // ----- file builders (formats as their specifications lay them out) -----

    private static byte[] Zlib(byte[] raw)
    {
        var stream = new MemoryStream();
        using (var zlib = new ZLibStream(stream, CompressionLevel.Fastest, leaveOpen: true)) zlib.Write(raw);
        return stream.ToArray();
    }

    /// <summary>An 8-bit PNG of the given colour type with one IDAT holding <paramref name="idat"/> (no PLTE).</summary>
    internal static byte[] Png(int width, int height, byte colourType, byte[] idat)
    {
        var file = new MemoryStream();
        file.Write([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]);
        var header = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(header, width);
        BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(4), height);
        header[8] = 8;
        header[9] = colourType;
        PngChunk(file, "IHDR", header);
        PngChunk(file, "IDAT", idat);
        PngChunk(file, "IEND", []);
        return file.ToArray();
    }

    internal static void PngChunk(Stream file, string type, byte[] data)
    {
        var buffer = new byte[4];
        BinaryPrimitives.WriteInt32BigEndian(buffer, data.Length);
        file.Write(buffer);
        var typed = Encoding.ASCII.GetBytes(type).Concat(data).ToArray();
        file.Write(typed);
        uint crc = 0xFFFFFFFF;
        foreach (byte b in typed)
        {
            crc ^= b;
            for (int k = 0; k < 8; k++) crc = (crc & 1) != 0 ? (crc >> 1) ^ 0xEDB88320u : crc >> 1;
        }
        BinaryPrimitives.WriteUInt32BigEndian(buffer, ~crc);
        file.Write(buffer);
    }

    /// <summary>A little-endian baseline TIFF: one uncompressed strip, the tags Pillow's OPEN_INFO reads.</summary>
    internal static byte[] Tiff(int width, int height, int[] bitsPerSample, int photometric, int[] extraSamples, byte[] strip,
        int? rowsPerStrip = null)
    {
        var entries = new List<(ushort Tag, ushort Type, int[] Values)>
        {
            (256, 4, [width]), (257, 4, [height]), (258, 3, bitsPerSample), (259, 3, [1]), (262, 3, [photometric]),
            (273, 4, [0]), (277, 3, [bitsPerSample.Length]), (278, 4, [rowsPerStrip ?? height]), (279, 4, [strip.Length]),
        };
        if (extraSamples.Length > 0) entries.Add((338, 3, extraSamples));
        int ifdSize = 2 + 12 * entries.Count + 4;
        var extra = new MemoryStream(); // values that do not fit in an entry
        int extraStart = 8 + ifdSize;
        var ifd = new MemoryStream();
        ifd.Write(BitConverter.GetBytes((ushort)entries.Count));
        int dataOffset = extraStart + entries.Sum(e => e.Values.Length * (e.Type == 3 ? 2 : 4) > 4 ? e.Values.Length * (e.Type == 3 ? 2 : 4) : 0);
        foreach (var (tag, type, values) in entries)
        {
            var actual = tag == 273 ? [dataOffset] : values;
            int size = type == 3 ? 2 : 4;
            ifd.Write(BitConverter.GetBytes(tag));
            ifd.Write(BitConverter.GetBytes(type));
            ifd.Write(BitConverter.GetBytes(actual.Length));
            var bytes = actual.SelectMany(v => size == 2 ? BitConverter.GetBytes((ushort)v) : BitConverter.GetBytes(v)).ToArray();
            if (bytes.Length <= 4) ifd.Write(bytes.Concat(new byte[4 - bytes.Length]).ToArray());
            else
            {
                ifd.Write(BitConverter.GetBytes(extraStart + (int)extra.Length));
                extra.Write(bytes);
            }
        }
        ifd.Write(BitConverter.GetBytes(0)); // no next IFD
        var file = new MemoryStream();
        file.Write("II*\0"u8);
        file.Write(BitConverter.GetBytes(8));
        file.Write(ifd.ToArray());
        file.Write(extra.ToArray());
        file.Write(strip);
        return file.ToArray();
    }

    /// <summary>An icon file: directory entries (width, height, bits, data) in order, data after the directory.</summary>
    internal static byte[] Ico(params (int Width, int Height, int Bits, byte[] Data)[] entries)
    {
        var file = new MemoryStream();
        file.Write([0, 0, 1, 0, (byte)entries.Length, 0]);
        int offset = 6 + 16 * entries.Length;
        foreach (var (width, height, bits, data) in entries)
        {
            file.Write([(byte)(width & 0xFF), (byte)(height & 0xFF), 0, 0, 1, 0, (byte)bits, 0]);
            file.Write(BitConverter.GetBytes(data.Length));
            file.Write(BitConverter.GetBytes(offset));
            offset += data.Length;
        }
        foreach (var entry in entries) file.Write(entry.Data);
        return file.ToArray();
    }

    /// <summary>
    /// An animated WebP (VP8X + ANIM + one ANMF per frame), each frame a lossless VP8L bitstream taken from a still
    /// WebP that ImageSharp encodes.
    /// </summary>
    internal static byte[] AnimatedWebp(int canvasWidth, int canvasHeight, bool alpha, params (Image<Rgb24> Frame, int X, int Y)[] frames)
    {
        var body = new MemoryStream();
        var vp8x = new byte[10];
        vp8x[0] = (byte)(0x02 | (alpha ? 0x10 : 0));
        WriteUInt24(vp8x, 4, canvasWidth - 1);
        WriteUInt24(vp8x, 7, canvasHeight - 1);
        RiffChunk(body, "VP8X", vp8x);
        RiffChunk(body, "ANIM", [255, 255, 255, 255, 0, 0]);
        foreach (var (frame, x, y) in frames)
        {
            var still = Encode(frame, new WebpEncoder { FileFormat = WebpFileFormatType.Lossless });
            int vp8l = IndexOf(still, "VP8L"u8);
            int length = BinaryPrimitives.ReadInt32LittleEndian(still.AsSpan(vp8l + 4));
            var anmf = new MemoryStream();
            var head = new byte[16];
            WriteUInt24(head, 0, x / 2);
            WriteUInt24(head, 3, y / 2);
            WriteUInt24(head, 6, frame.Width - 1);
            WriteUInt24(head, 9, frame.Height - 1);
            WriteUInt24(head, 12, 100);
            anmf.Write(head);
            RiffChunk(anmf, "VP8L", still.AsSpan(vp8l + 8, length).ToArray());
            RiffChunk(body, "ANMF", anmf.ToArray());
        }
        var file = new MemoryStream();
        file.Write("RIFF"u8);
        file.Write(BitConverter.GetBytes((int)body.Length + 4));
        file.Write("WEBP"u8);
        file.Write(body.ToArray());
        return file.ToArray();
    }

    private static int IndexOf(byte[] data, ReadOnlySpan<byte> what) => data.AsSpan().IndexOf(what);

    private static void RiffChunk(Stream output, string fourCc, byte[] data)
    {
        output.Write(Encoding.ASCII.GetBytes(fourCc));
        output.Write(BitConverter.GetBytes(data.Length));
        output.Write(data);
        if (data.Length % 2 == 1) output.WriteByte(0);
    }

    private static void WriteUInt24(byte[] target, int at, int value) =>
        (target[at], target[at + 1], target[at + 2]) = ((byte)value, (byte)(value >> 8), (byte)(value >> 16));
}
