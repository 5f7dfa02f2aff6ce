namespace ManagedClip.Imaging.JpegLs;

/// <summary>
/// The HP colour transforms (HP1, HP2, HP3) of the HP JPEG-LS extension, as CharLS writes them (APP8 "mrfx"): a
/// reversible decorrelation of R, G, B before coding, undone here after decoding. They are not part of T.87 and
/// DICOM does not use them; a stream that names one is decoded the way CharLS decodes it.
/// </summary>
/// <remarks>
/// Arithmetic is modulo the sample container, 2^8 for up to 8 bits and 2^16 above (CharLS's sample types), with
/// <c>bias</c> = half that range:
/// <code>
/// HP1  R = v1 + v2 − bias,  G = v2,  B = v3 + v2 − bias
/// HP2  R = v1 + v2 − bias,  G = v2,  B = v3 + ((R + G) >> 1) − bias
/// HP3  G = v1 − ((v2 + v3) >> 2) + bias/2,  R = v3 + G − bias,  B = v2 + G − bias
/// </code>
/// </remarks>
internal static class JpegLsColorTransform
{
    public static void Inverse(JpegLsImage image, int transform)
    {
        if (image.Components != 3) throw new JpegLsException("damaged JPEG-LS stream: an HP colour transform on an image without 3 components");
        int mask = image.Precision <= 8 ? 0xFF : 0xFFFF;
        int bias = (mask + 1) / 2;
        var samples = image.Samples; // [height, width, 3]
        for (int i = 0; i < samples.Length; i += 3)
        {
            int v1 = samples[i], v2 = samples[i + 1], v3 = samples[i + 2];
            int r, g, b;
            switch (transform)
            {
                case 1:
                    (r, g, b) = ((v1 + v2 - bias) & mask, v2, (v3 + v2 - bias) & mask);
                    break;
                case 2:
                    r = (v1 + v2 - bias) & mask;
                    (g, b) = (v2, (v3 + ((r + v2) >> 1) - bias) & mask);
                    break;
                default:
                    g = (v1 - ((v3 + v2) >> 2) + bias / 2) & mask;
                    (r, b) = ((v3 + g - bias) & mask, (v2 + g - bias) & mask);
                    break;
            }
            (samples[i], samples[i + 1], samples[i + 2]) = ((ushort)r, (ushort)g, (ushort)b);
        }
    }
}
