namespace ManagedClip.Imaging.Jpeg;

/// <summary>Parses and checks the frame (SOF) and scan (SOS) headers as libjpeg does (<c>get_sof</c>, <c>get_sos</c>, <c>initial_setup</c>).</summary>
internal static class JpegHeaders
{
    /// <summary>A frame header: P, Y, X, Nf, then (Ci, Hi|Vi, Tqi) per component.</summary>
    public static JpegFrame ReadFrame(int marker, ReadOnlySpan<byte> payload, bool bogusLength)
    {
        string name = JpegMarker.Name(marker);
        if (bogusLength || payload.Length < 6) throw new JpegException($"corrupt JPEG: the {name} frame header is too short");
        int precision = payload[0];
        int height = (payload[1] << 8) | payload[2];
        int width = (payload[3] << 8) | payload[4];
        int count = payload[5];
        if (height == 0)
            throw new JpegException("JPEG frame height is 0, to be given later by a DNL marker: libjpeg, and so Pillow 9.4 and open_clip, cannot decode such a file");
        if (width == 0 || count == 0)
            throw new JpegException($"empty JPEG image: the frame header declares {width}x{height} pixels with {count} components");
        if (payload.Length != 6 + 3 * count) throw new JpegException($"corrupt JPEG: the {name} frame header length does not match its {count} components");
        if (width > JpegFrame.MaxDimension || height > JpegFrame.MaxDimension)
            throw new JpegException($"JPEG frame of {width}x{height} pixels is larger than the {JpegFrame.MaxDimension} pixels per side libjpeg accepts");
        if (count > JpegFrame.MaxComponents)
            throw new JpegException($"JPEG frame has {count} components; at most {JpegFrame.MaxComponents} are supported");

        var components = new FrameComponent[count];
        for (int i = 0; i < count; i++)
        {
            var c = payload.Slice(6 + 3 * i, 3);
            components[i] = new FrameComponent { Index = i, Id = c[0], H = c[1] >> 4, V = c[1] & 15, QuantTableId = c[2] };
            if (components[i].H is < 1 or > 4 || components[i].V is < 1 or > 4)
                throw new JpegException($"corrupt JPEG: component {c[0]} has sampling factors {components[i].H}x{components[i].V} (each must be 1..4)");
        }

        bool lossless = (marker & 3) == 3;
        bool precisionOk = lossless ? precision is >= 2 and <= 16 : precision is 8 or 12;
        if (!precisionOk)
            throw new JpegException($"JPEG {name} frame with {precision}-bit samples is not supported ({(lossless ? "lossless frames have 2..16 bits" : "DCT frames have 8 or 12 bits")})");
        return new JpegFrame(marker, precision, width, height, components);
    }

    /// <summary>A scan header: Ns, then (Cs, Td|Ta) per component, then Ss, Se, Ah|Al.</summary>
    public static JpegScan ReadScan(ReadOnlySpan<byte> payload, bool bogusLength, JpegFrame frame)
    {
        int count = payload.Length > 0 ? payload[0] : 0;
        if (bogusLength || count is < 1 or > 4 || payload.Length != 4 + 2 * count)
            throw new JpegException("corrupt JPEG: a scan header (SOS) has a bad length or component count");
        var components = new FrameComponent[count];
        var dc = new int[count];
        var ac = new int[count];
        for (int i = 0; i < count; i++)
        {
            int id = payload[1 + 2 * i], tables = payload[2 + 2 * i];
            // libjpeg only matches the first four frame components (MAX_COMPS_IN_SCAN), each at most once a scan.
            FrameComponent? match = null;
            for (int f = 0; f < Math.Min(frame.Components.Length, 4); f++)
            {
                if (frame.Components[f].Id == id && Array.IndexOf(components, frame.Components[f], 0, i) < 0)
                {
                    match = frame.Components[f];
                    break;
                }
            }
            components[i] = match ?? throw new JpegException($"corrupt JPEG: a scan refers to component {id}, which the frame does not define (or twice)");
            dc[i] = tables >> 4;
            ac[i] = tables & 15;
        }
        int last = 1 + 2 * count;
        return new JpegScan
        {
            Components = components,
            DcTables = dc,
            AcTables = ac,
            Ss = payload[last],
            Se = payload[last + 1],
            Ah = payload[last + 2] >> 4,
            Al = payload[last + 2] & 15,
        };
    }

    /// <summary>
    /// The colour space of the stored components (libjpeg-turbo <c>jdapimin.c</c> <c>default_decompress_parms</c>):
    /// JFIF means YCbCr; otherwise Adobe's transform flag; otherwise the component ids 'R','G','B'.
    /// </summary>
    public static JpegColorSpace ColorSpace(JpegFrame frame, JpegTables tables)
    {
        var c = frame.Components;
        switch (c.Length)
        {
            case 1:
                return JpegColorSpace.Grayscale;
            case 3:
                if (tables.SawJfif) return JpegColorSpace.YCbCr;
                if (tables.SawAdobe) return tables.AdobeTransform == 0 ? JpegColorSpace.Rgb : JpegColorSpace.YCbCr;
                if (c[0].Id == 'R' && c[1].Id == 'G' && c[2].Id == 'B') return JpegColorSpace.Rgb;
                return JpegColorSpace.YCbCr;
            case 4:
                if (tables.SawAdobe) return tables.AdobeTransform == 0 ? JpegColorSpace.Cmyk : JpegColorSpace.Ycck;
                return JpegColorSpace.Cmyk;
            default:
                return JpegColorSpace.Unknown;
        }
    }
}
