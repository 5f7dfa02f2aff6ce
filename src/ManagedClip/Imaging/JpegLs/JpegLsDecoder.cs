using System.Buffers.Binary;

namespace ManagedClip.Imaging.JpegLs;

/// <summary>A decoded JPEG-LS image: samples <c>[height, width, components]</c>, each 0..2^Precision − 1.</summary>
internal sealed record JpegLsImage(int Width, int Height, int Components, int Precision, int Near, ushort[] Samples);

/// <summary>
/// A JPEG-LS decoder (ITU-T T.87 | ISO/IEC 14495-1), for DICOM's JPEG-LS transfer syntaxes: lossless and
/// near-lossless, 2 to 16 bits, 1 to 4 components in any interleave mode (none: one scan per component; line;
/// sample), preset coding parameters (LSE), restart markers, and the HP colour transforms of CharLS's "mrfx"
/// APP8 segment.
/// </summary>
/// <remarks>
/// <para>The stream is JPEG's marker syntax (T.87 Annex C): SOI, tables and miscellaneous segments, the SOF55
/// frame header, then scans (SOS, entropy-coded data), EOI. The scans' coding is <see cref="JpegLsScanDecoder"/>.</para>
/// <para>Not supported, each refused by name: mapping tables (palettes, LSE 2/3 used by a scan), sub-sampled
/// components, point transforms, image sizes given in an LSE 4 segment or by a DNL marker.</para>
/// <para>The pixel count is checked against the caller's limit before the output is allocated; the per-scan work
/// is bounded by the image size (every Golomb code word is at most LIMIT bits, every run ends with its line).</para>
/// </remarks>
internal static class JpegLsDecoder
{
    private const byte Soi = 0xD8, Eoi = 0xD9, Sos = 0xDA, Dri = 0xDD, Sof55 = 0xF7, Lse = 0xF8, App8 = 0xE8, Dnl = 0xDC;

    /// <summary>Decodes <paramref name="data"/> (named <paramref name="sourceName"/> in errors).</summary>
    /// <exception cref="InvalidDataException">Anything it cannot decode, as one line naming <paramref name="sourceName"/>.</exception>
    public static JpegLsImage Decode(ReadOnlySpan<byte> data, string sourceName, long maxPixels)
    {
        if (data.IsEmpty) throw InvalidImage.Error(sourceName, "the JPEG-LS stream is empty (0 bytes)");
        try
        {
            return new Decoding(maxPixels).Run(data);
        }
        catch (JpegLsException e)
        {
            throw InvalidImage.Error(sourceName, e.Message, e);
        }
        catch (Exception e) when (e is IndexOutOfRangeException or ArgumentException or OverflowException)
        {
            // A decoder bug on damaged data must still read as a bad file, not as a crash; the fuzz tests look for these.
            throw InvalidImage.Error(sourceName, $"damaged JPEG-LS stream: the decoder failed on damaged data ({e.GetType().Name})", e);
        }
    }

    private sealed class Decoding(long maxPixels)
    {
        private int width, height, precision;
        private byte[]? componentIds;      // [components]
        private bool[]? decoded;           // [components]: a scan has delivered it
        private ushort[]? samples;         // [height, width, components]
        private JpegLsPresets presets;
        private int restartInterval, colorTransform, scanNear;

        public JpegLsImage Run(ReadOnlySpan<byte> data)
        {
            if (data.Length < 2 || data[0] != 0xFF || data[1] != Soi)
                throw new JpegLsException("not a JPEG-LS stream: it does not start with the JPEG start-of-image marker (FF D8)");
            int position = 2;
            while (true)
            {
                var (marker, at) = NextMarker(data, position);
                if (marker < 0)
                {
                    // The data ended without EOI: acceptable once every component is decoded (some writers drop it).
                    if (samples is not null && decoded!.All(d => d)) return Image();
                    throw JpegLsException.Truncated(samples is null ? "before the frame header (no SOF55)" : "before every component was decoded");
                }
                position = at;
                switch (marker)
                {
                    case Eoi:
                        if (samples is null) throw new JpegLsException("JPEG-LS stream has no frame (EOI before SOF55)");
                        if (!decoded!.All(d => d)) throw new JpegLsException("JPEG-LS stream ends (EOI) before every component was decoded");
                        return Image();
                    case Sof55:
                        ReadFrameHeader(Segment(data, ref position, "frame header"));
                        break;
                    case Lse:
                        ReadPresets(Segment(data, ref position, "LSE segment"));
                        break;
                    case Dri:
                        ReadRestartInterval(Segment(data, ref position, "DRI segment"));
                        break;
                    case App8:
                        ReadApp8(Segment(data, ref position, "APP8 segment"));
                        break;
                    case Sos:
                        var scan = ReadScanHeader(Segment(data, ref position, "scan header"));
                        var parameters = JpegLsParameters.Create(precision, scan.Near, presets);
                        scanNear = Math.Max(scanNear, scan.Near);
                        position = new JpegLsScanDecoder(parameters).Decode(data, position, scan, samples!, width, height, componentIds!.Length);
                        foreach (int c in scan.Components) decoded![c] = true;
                        break;
                    case Dnl:
                        throw new JpegLsException("JPEG-LS image height given by a DNL marker is not supported");
                    case >= 0xD0 and <= 0xD7:
                        throw new JpegLsException($"damaged JPEG-LS stream: restart marker RST{marker - 0xD0} outside a scan");
                    case >= 0xC0 and <= 0xCF and not 0xC4 and not 0xC8 and not 0xCC:
                        throw new JpegLsException($"not a JPEG-LS stream: it has a JPEG frame header (SOF{marker - 0xC0}), not SOF55");
                    default:
                        Segment(data, ref position, $"marker segment FF {marker:X2}"); // APPn, COM, others: skipped
                        break;
                }
            }
        }

        private JpegLsImage Image()
        {
            var image = new JpegLsImage(width, height, componentIds!.Length, precision, scanNear, samples!);
            if (colorTransform != 0) JpegLsColorTransform.Inverse(image, colorTransform);
            return image;
        }

        /// <summary>The next marker at or after <paramref name="position"/> (fill bytes skipped), and where its segment starts.</summary>
        private static (int Marker, int After) NextMarker(ReadOnlySpan<byte> data, int position)
        {
            if (position + 1 >= data.Length) return (-1, position);
            if (data[position] != 0xFF)
                throw new JpegLsException($"damaged JPEG-LS stream: expected a marker at byte {position:N0}, found 0x{data[position]:X2}");
            while (position + 1 < data.Length && data[position + 1] == 0xFF) position++;
            if (position + 1 >= data.Length) return (-1, data.Length);
            return (data[position + 1], position + 2);
        }

        /// <summary>The body of the marker segment at <paramref name="position"/> (after its length), advancing past it.</summary>
        private static ReadOnlySpan<byte> Segment(ReadOnlySpan<byte> data, ref int position, string what)
        {
            if (position + 2 > data.Length) throw JpegLsException.Truncated($"in the {what}");
            int length = BinaryPrimitives.ReadUInt16BigEndian(data[position..]);
            if (length < 2) throw new JpegLsException($"damaged JPEG-LS stream: {what} length {length} is less than 2");
            if (position + length > data.Length) throw JpegLsException.Truncated($"in the {what} ({length} bytes announced)");
            var body = data.Slice(position + 2, length - 2);
            position += length;
            return body;
        }

        private void ReadFrameHeader(ReadOnlySpan<byte> body)
        {
            if (samples is not null) throw new JpegLsException("damaged JPEG-LS stream: a second frame header");
            if (body.Length < 6) throw new JpegLsException("damaged JPEG-LS stream: frame header too short");
            precision = body[0];
            height = BinaryPrimitives.ReadUInt16BigEndian(body[1..]);
            width = BinaryPrimitives.ReadUInt16BigEndian(body[3..]);
            int components = body[5];
            if (precision is < 2 or > 16) throw new JpegLsException($"JPEG-LS sample precision {precision} is outside 2..16 bits");
            if (components is < 1 or > 4) throw new JpegLsException($"JPEG-LS frame has {components} components; 1 to 4 are supported");
            if (body.Length != 6 + 3 * components)
                throw new JpegLsException($"damaged JPEG-LS stream: frame header of {body.Length + 2} bytes for {components} component(s)");
            if (height == 0) throw new JpegLsException("JPEG-LS image height 0 (given later by a DNL marker or LSE 4) is not supported");
            if (width == 0) throw new JpegLsException("JPEG-LS image width 0 (given by an LSE 4 segment) is not supported");
            if ((long)width * height > maxPixels)
                throw new JpegLsException($"JPEG-LS image is {width}x{height} ({(long)width * height:N0} pixels), more than the limit of {maxPixels:N0}");

            componentIds = new byte[components];
            for (int i = 0; i < components; i++)
            {
                componentIds[i] = body[6 + 3 * i];
                if (body[7 + 3 * i] != 0x11)
                    throw new JpegLsException($"JPEG-LS component {componentIds[i]} is sub-sampled (H×V = {body[7 + 3 * i] >> 4}×{body[7 + 3 * i] & 15}); not supported");
                if (Array.IndexOf(componentIds, componentIds[i], 0, i) >= 0)
                    throw new JpegLsException($"damaged JPEG-LS stream: component id {componentIds[i]} appears twice in the frame header");
            }
            decoded = new bool[components];
            samples = new ushort[(long)width * height * components <= Array.MaxLength
                ? width * height * components
                : throw new JpegLsException("JPEG-LS image is too large")];
        }

        private JpegLsScan ReadScanHeader(ReadOnlySpan<byte> body)
        {
            if (samples is null) throw new JpegLsException("damaged JPEG-LS stream: a scan before the frame header");
            if (body.Length < 1) throw new JpegLsException("damaged JPEG-LS stream: scan header too short");
            int count = body[0];
            if (count < 1 || count > componentIds!.Length || body.Length != 4 + 2 * count)
                throw new JpegLsException($"damaged JPEG-LS stream: scan header with {count} component(s) in {body.Length + 2} bytes");
            var components = new int[count];
            for (int i = 0; i < count; i++)
            {
                int index = Array.IndexOf(componentIds, body[1 + 2 * i]);
                if (index < 0) throw new JpegLsException($"damaged JPEG-LS stream: the scan names component {body[1 + 2 * i]}, which the frame does not have");
                if (decoded![index] || Array.IndexOf(components, index, 0, i) >= 0)
                    throw new JpegLsException($"damaged JPEG-LS stream: component {body[1 + 2 * i]} is coded twice");
                if (body[2 + 2 * i] != 0) throw new JpegLsException("JPEG-LS mapping tables (palette images) are not supported");
                components[i] = index;
            }
            int near = body[1 + 2 * count], interleave = body[2 + 2 * count], pointTransform = body[3 + 2 * count];
            if (interleave > 2) throw new JpegLsException($"damaged JPEG-LS stream: interleave mode {interleave} (0, 1 or 2 expected)");
            if (interleave == 0 && count != 1)
                throw new JpegLsException($"damaged JPEG-LS stream: a non-interleaved scan with {count} components");
            if (pointTransform != 0) throw new JpegLsException($"JPEG-LS point transform {pointTransform} is not supported");
            if (colorTransform != 0 && (count != 3 || near != 0 || interleave == 0 || precision is not (8 or 16)))
                throw new JpegLsException("damaged JPEG-LS stream: an HP colour transform needs one lossless interleaved scan of 3 components of 8 or 16 bits");
            return new JpegLsScan(components, near, count == 1 ? 0 : interleave, restartInterval);
        }

        /// <summary>LSE (C.2.4.1): type 1 preset coding parameters; mapping tables (2, 3) are skipped; 4 is refused.</summary>
        private void ReadPresets(ReadOnlySpan<byte> body)
        {
            if (body.Length < 1) throw new JpegLsException("damaged JPEG-LS stream: empty LSE segment");
            switch (body[0])
            {
                case 1:
                    if (body.Length != 11) throw new JpegLsException($"damaged JPEG-LS stream: LSE preset parameters of {body.Length + 2} bytes (13 expected)");
                    presets = new JpegLsPresets(BinaryPrimitives.ReadUInt16BigEndian(body[1..]), BinaryPrimitives.ReadUInt16BigEndian(body[3..]),
                        BinaryPrimitives.ReadUInt16BigEndian(body[5..]), BinaryPrimitives.ReadUInt16BigEndian(body[7..]),
                        BinaryPrimitives.ReadUInt16BigEndian(body[9..]));
                    break;
                case 2 or 3:
                    break; // a palette; refused only if a scan uses it
                case 4:
                    throw new JpegLsException("JPEG-LS oversize image dimensions (LSE 4) are not supported");
                default:
                    throw new JpegLsException($"damaged JPEG-LS stream: LSE segment of unknown type {body[0]}");
            }
        }

        private void ReadRestartInterval(ReadOnlySpan<byte> body)
        {
            // JPEG-LS allows 2, 3 or 4 bytes for the interval (C.2.5); JPEG has 2.
            if (body.Length is < 2 or > 4) throw new JpegLsException($"damaged JPEG-LS stream: DRI segment of {body.Length + 2} bytes");
            long interval = 0;
            foreach (byte b in body) interval = (interval << 8) | b;
            restartInterval = (int)Math.Min(interval, int.MaxValue);
        }

        /// <summary>CharLS's "mrfx" APP8 segment names an HP colour transform (1, 2, 3) applied before coding.</summary>
        private void ReadApp8(ReadOnlySpan<byte> body)
        {
            if (body.Length != 5 || !body[..4].SequenceEqual("mrfx"u8)) return;
            if (body[4] > 3) throw new JpegLsException($"JPEG-LS colour transform {body[4]} (APP8 mrfx) is not one of HP1, HP2, HP3");
            if (body[4] != 0 && samples is not null && precision is not (8 or 16))
                throw new JpegLsException($"JPEG-LS HP colour transform on {precision}-bit samples (defined for 8 and 16 bits only)");
            colorTransform = body[4];
        }
    }
}
