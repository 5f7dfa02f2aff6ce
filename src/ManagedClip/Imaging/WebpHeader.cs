using System.Buffers.Binary;

namespace ManagedClip.Imaging;

/// <summary>
/// The RIFF structure of a WebP file (Google's "WebP Container Specification"): its chunks, the extended header's
/// canvas and flags, and the first frame of an animation. Pillow 9.4 opens every WebP through libwebp's animation
/// decoder: the image is the canvas (its size is what the pixel limit checks), mode RGBA when
/// <c>WebPGetFeatures</c> reports alpha (VP8X's alpha bit, VP8L's alpha_is_used bit; a plain lossy VP8 has none),
/// else RGB, and an animation shows its first frame decoded into a transparent black canvas at its offset.
/// </summary>
internal sealed class WebpHeader
{
    private const uint AlphaFlag = 0x10, AnimationFlag = 0x02;

    private WebpHeader(List<(string FourCc, int Offset, int Length)> chunks, PillowMode mode, int width, int height, bool animated)
    {
        Chunks = chunks;
        Mode = mode;
        CanvasWidth = width;
        CanvasHeight = height;
        IsAnimated = animated;
    }

    /// <summary>Top-level chunks: four-character code, data offset and data length.</summary>
    public List<(string FourCc, int Offset, int Length)> Chunks { get; }

    /// <summary>The mode Pillow opens the file in.</summary>
    public PillowMode Mode { get; }

    /// <summary>Canvas size from VP8X (0 when the file has no extended header: the bitstream's size applies).</summary>
    public int CanvasWidth { get; }

    /// <inheritdoc cref="CanvasWidth"/>
    public int CanvasHeight { get; }

    /// <summary>VP8X's animation flag.</summary>
    public bool IsAnimated { get; }

    /// <summary>Reads the chunk list, or says what is truncated or malformed (as an error message) instead.</summary>
    public static WebpHeader Read(ReadOnlySpan<byte> webp, string sourceName)
    {
        if (webp.Length < 12 || !webp.StartsWith("RIFF"u8) || !webp.Slice(8, 4).SequenceEqual("WEBP"u8))
            throw InvalidImage.Error(sourceName, "malformed WebP: no RIFF/WEBP header");
        long riffEnd = 8L + BinaryPrimitives.ReadUInt32LittleEndian(webp[4..]);
        if (riffEnd > webp.Length)
            throw InvalidImage.Error(sourceName,
                $"truncated WebP: image file is truncated (the RIFF header declares {riffEnd:N0} bytes, the file has {webp.Length:N0})");
        var chunks = ReadChunks(webp, 12, (int)riffEnd, sourceName);
        if (chunks.Count == 0) throw InvalidImage.Error(sourceName, "malformed WebP: no chunks");

        var (first, offset, length) = chunks[0];
        var data = webp.Slice(offset, length);
        if (first == "VP8X")
        {
            if (length < 10) throw InvalidImage.Error(sourceName, "malformed WebP: VP8X chunk shorter than 10 bytes");
            int width = 1 + (data[4] | data[5] << 8 | data[6] << 16), height = 1 + (data[7] | data[8] << 8 | data[9] << 16);
            return new WebpHeader(chunks, (data[0] & AlphaFlag) != 0 ? PillowMode.Rgba : PillowMode.Rgb, width, height,
                (data[0] & AnimationFlag) != 0);
        }
        // Simple lossless: signature 0x2F, 14 bits width−1, 14 bits height−1, 1 bit alpha_is_used (bit 28).
        bool alpha = first == "VP8L" && length >= 5 && ((BinaryPrimitives.ReadUInt32LittleEndian(data[1..]) >> 28) & 1) != 0;
        return new WebpHeader(chunks, alpha ? PillowMode.Rgba : PillowMode.Rgb, 0, 0, animated: false);
    }

    /// <summary>
    /// The first frame of an animation as a standalone WebP file (its ALPH and VP8/VP8L chunks in a RIFF of their
    /// own, so the still-image decoder can read it) and where it goes on the canvas.
    /// </summary>
    public (byte[] Still, int X, int Y, int Width, int Height) FirstFrame(ReadOnlySpan<byte> webp, string sourceName)
    {
        var anmf = Chunks.FirstOrDefault(c => c.FourCc == "ANMF");
        if (anmf.FourCc is null || anmf.Length < 16) throw InvalidImage.Error(sourceName, "malformed animated WebP: no frame (ANMF chunk)");
        var frame = webp.Slice(anmf.Offset, anmf.Length);
        int x = 2 * (frame[0] | frame[1] << 8 | frame[2] << 16), y = 2 * (frame[3] | frame[4] << 8 | frame[5] << 16);
        int width = 1 + (frame[6] | frame[7] << 8 | frame[8] << 16), height = 1 + (frame[9] | frame[10] << 8 | frame[11] << 16);
        if ((long)x + width > CanvasWidth || (long)y + height > CanvasHeight)
            throw InvalidImage.Error(sourceName, $"malformed animated WebP: the first frame ({width}x{height} at {x},{y}) lies outside the {CanvasWidth}x{CanvasHeight} canvas");

        var parts = ReadChunks(webp, anmf.Offset + 16, anmf.Offset + anmf.Length, sourceName);
        var alpha = parts.FirstOrDefault(c => c.FourCc == "ALPH");
        var bitstream = parts.FirstOrDefault(c => c.FourCc is "VP8 " or "VP8L");
        if (bitstream.FourCc is null) throw InvalidImage.Error(sourceName, "malformed animated WebP: the first frame has no VP8/VP8L bitstream");

        var still = new MemoryStream();
        still.Write("RIFF\0\0\0\0WEBP"u8);
        if (alpha.FourCc is not null && bitstream.FourCc == "VP8 ")
        {
            // Lossy with a separate alpha plane needs the extended header to be read as one image.
            Span<byte> vp8x = stackalloc byte[10];
            vp8x.Clear();
            vp8x[0] = (byte)AlphaFlag;
            WriteUInt24(vp8x[4..], width - 1);
            WriteUInt24(vp8x[7..], height - 1);
            WriteChunk(still, "VP8X", vp8x);
            WriteChunk(still, "ALPH", webp.Slice(alpha.Offset, alpha.Length));
        }
        WriteChunk(still, bitstream.FourCc, webp.Slice(bitstream.Offset, bitstream.Length));
        var bytes = still.ToArray();
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(4), (uint)(bytes.Length - 8));
        return (bytes, x, y, width, height);
    }

    private static List<(string FourCc, int Offset, int Length)> ReadChunks(ReadOnlySpan<byte> webp, int start, int end, string sourceName)
    {
        var chunks = new List<(string FourCc, int Offset, int Length)>();
        for (long at = start; at < end;)
        {
            if (at + 8 > end)
                throw InvalidImage.Error(sourceName, $"truncated WebP: image file is truncated (a chunk header at byte {at:N0} is cut off)");
            string fourCc = System.Text.Encoding.ASCII.GetString(webp.Slice((int)at, 4));
            long length = BinaryPrimitives.ReadUInt32LittleEndian(webp[((int)at + 4)..]);
            if (at + 8 + length > end)
                throw InvalidImage.Error(sourceName,
                    $"truncated WebP: image file is truncated (chunk '{UserText.Quote(fourCc)}' at byte {at:N0} declares {length:N0} bytes, {Math.Max(0, end - at - 8):N0} follow)");
            chunks.Add((fourCc, (int)at + 8, (int)length));
            at += 8 + length + (length & 1); // chunks are padded to an even length
        }
        return chunks;
    }

    private static void WriteChunk(Stream output, string fourCc, ReadOnlySpan<byte> data)
    {
        output.Write(System.Text.Encoding.ASCII.GetBytes(fourCc));
        Span<byte> size = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(size, (uint)data.Length);
        output.Write(size);
        output.Write(data);
        if ((data.Length & 1) != 0) output.WriteByte(0);
    }

    private static void WriteUInt24(Span<byte> target, int value) =>
        (target[0], target[1], target[2]) = ((byte)value, (byte)(value >> 8), (byte)(value >> 16));
}
