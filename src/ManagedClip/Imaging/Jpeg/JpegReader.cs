using System.Buffers.Binary;

namespace ManagedClip.Imaging.Jpeg;

/// <summary>Marker codes (the byte after 0xFF), T.81 Table B.1.</summary>
internal static class JpegMarker
{
    public const int Tem = 0x01;
    public const int Sof0 = 0xC0;   // SOF0..SOF15 are C0..CF except DHT, JPG and DAC
    public const int Dht = 0xC4;
    public const int Jpg = 0xC8;
    public const int Dac = 0xCC;
    public const int Sof15 = 0xCF;
    public const int Rst0 = 0xD0;
    public const int Rst7 = 0xD7;
    public const int Soi = 0xD8;
    public const int Eoi = 0xD9;
    public const int Sos = 0xDA;
    public const int Dqt = 0xDB;
    public const int Dnl = 0xDC;
    public const int Dri = 0xDD;
    public const int App0 = 0xE0;
    public const int App14 = 0xEE;
    public const int App15 = 0xEF;
    public const int Com = 0xFE;

    public static bool IsRestart(int marker) => marker is >= Rst0 and <= Rst7;

    public static string Name(int marker) => marker switch
    {
        Dht => "DHT",
        Dac => "DAC",
        Jpg => "JPG",
        >= Sof0 and <= Sof15 => $"SOF{marker - Sof0}",
        >= Rst0 and <= Rst7 => $"RST{marker - Rst0}",
        Soi => "SOI",
        Eoi => "EOI",
        Sos => "SOS",
        Dqt => "DQT",
        Dnl => "DNL",
        Dri => "DRI",
        >= App0 and <= App15 => $"APP{marker - App0}",
        Com => "COM",
        _ => $"0xFF{marker:X2}",
    };
}

/// <summary>
/// Walks the byte stream between entropy-coded segments: finds markers and reads their segments, the way
/// libjpeg's <c>jdmarker.c</c> does (garbage before a marker is skipped, any number of 0xFF fill bytes may
/// precede it, FF 00 outside a scan is skipped as stuffed data).
/// </summary>
internal ref struct JpegReader(ReadOnlySpan<byte> data)
{
    private readonly ReadOnlySpan<byte> data = data;

    /// <summary>Offset of the next unread byte.</summary>
    public int Position { get; set; }

    public readonly ReadOnlySpan<byte> Data => data;

    /// <summary>The file must start with SOI, with nothing before it (libjpeg's <c>first_marker</c>).</summary>
    public void ReadStartOfImage()
    {
        if (data.Length < 2 || data[0] != 0xFF || data[1] != JpegMarker.Soi)
            throw new JpegException("not a JPEG file: it does not start with the SOI marker FF D8");
        Position = 2;
    }

    /// <summary>The next marker code (position just after it); skips garbage, fill bytes and FF 00 pairs.</summary>
    /// <param name="where">Where the data would be ending, for the truncation message ("before …", "inside …").</param>
    public int NextMarker(string where)
    {
        while (true)
        {
            int ff = data[Position..].IndexOf((byte)0xFF);
            if (ff < 0) break;
            int p = Position + ff + 1;
            while (p < data.Length && data[p] == 0xFF) p++;
            if (p >= data.Length) break;
            Position = p + 1;
            if (data[p] != 0) return data[p];
        }
        Position = data.Length;
        throw JpegException.Truncated(where);
    }

    /// <summary>
    /// The payload of a marker segment (after its 2-byte length), and the position moved past it.
    /// A declared length below 2 gives an empty payload and <paramref name="bogusLength"/> (libjpeg's
    /// <c>skip_variable</c> skips nothing then; the table and header parsers reject it).
    /// </summary>
    public ReadOnlySpan<byte> ReadSegment(int marker, out bool bogusLength)
    {
        if (data.Length - Position < 2) throw JpegException.Truncated($"inside the {JpegMarker.Name(marker)} segment");
        int length = BinaryPrimitives.ReadUInt16BigEndian(data[Position..]);
        Position += 2;
        int payload = Math.Max(length - 2, 0);
        if (data.Length - Position < payload)
            throw JpegException.Truncated($"inside the {JpegMarker.Name(marker)} segment at byte {Position - 4} ({length} bytes declared)");
        var segment = data.Slice(Position, payload);
        Position += payload;
        bogusLength = length < 2;
        return segment;
    }
}
