namespace ManagedClip.Imaging.Dicom;

/// <summary>
/// Stored values → the 8-bit image the model sees, by the rule of <c>testdata/reference/dicom/README.md</c>:
/// <code>
/// monochrome   P → Modality LUT (sequence, rescale or identity) → x
///                → VOI (VOI LUT sequence, window LINEAR / LINEAR_EXACT / SIGMOID, or min-max of the frame) → y in 0..255
///                → MONOCHROME1: y = 255 − y
///                → clamp(floor(y + 0.5), 0, 255)                                                  mode L
/// colour       RGB as stored (Bits Stored > 8: scaled to 0..255); YBR_FULL(_422) → RGB by T.871    mode RGB
/// </code>
/// Every expression is IEEE double, evaluated in the order written there (no fused multiply-add, no rearranging),
/// because ties at k + 0.5 are real: a rearranged formula moves some pixels by one level.
/// </summary>
internal static class DicomRendering
{
    /// <summary>Renders stored values <c>[rows, columns, samples]</c> into mode L or RGB.</summary>
    public static NativeImage Render(DicomImageAttributes attributes, int[] stored, string sourceName) =>
        attributes.SamplesPerPixel == 1
            ? RenderMonochrome(attributes, stored, sourceName)
            : RenderColour(attributes, stored);

    private static NativeImage RenderMonochrome(DicomImageAttributes attributes, int[] stored, string sourceName)
    {
        var transform = new MonochromeTransform(attributes, sourceName);
        var image = NativeImage.Create(PillowMode.L, attributes.Columns, attributes.Rows);
        var output = image.Bytes; // [rows, columns]

        // The result depends on the stored value alone, so when the frame has more pixels than distinct possible
        // values, each value is rendered once into a table (same arithmetic, same bits) and the pixels look it up.
        int low = int.MaxValue, high = int.MinValue;
        foreach (int value in stored)
        {
            low = Math.Min(low, value);
            high = Math.Max(high, value);
        }
        long range = (long)high - low + 1;
        bool tabulate = range <= stored.Length;

        if (transform.NeedsFrameRange)
        {
            // Min-max windowing: the extremes of x = modality(P) over the frame's pixels.
            double min = double.PositiveInfinity, max = double.NegativeInfinity;
            if (tabulate)
            {
                var present = new bool[range];
                foreach (int value in stored) present[value - low] = true;
                for (int i = 0; i < present.Length; i++)
                {
                    if (!present[i]) continue;
                    double x = transform.Modality(low + i);
                    min = Math.Min(min, x);
                    max = Math.Max(max, x);
                }
            }
            else
            {
                foreach (int value in stored)
                {
                    double x = transform.Modality(value);
                    min = Math.Min(min, x);
                    max = Math.Max(max, x);
                }
            }
            transform.SetFrameRange(min, max);
        }

        if (tabulate)
        {
            var table = new byte[range];
            for (int i = 0; i < table.Length; i++) table[i] = transform.Render(low + i);
            for (int i = 0; i < stored.Length; i++) output[i] = table[stored[i] - low];
        }
        else
        {
            for (int i = 0; i < stored.Length; i++) output[i] = transform.Render(stored[i]);
        }
        return image;
    }

    private static NativeImage RenderColour(DicomImageAttributes attributes, int[] stored)
    {
        var image = NativeImage.Create(PillowMode.Rgb, attributes.Columns, attributes.Rows);
        var output = image.Bytes; // [rows, columns, 3]
        if (attributes.Photometric is Photometric.YbrFull or Photometric.YbrFull422)
        {
            for (int i = 0; i < stored.Length; i += 3) YbrFullToRgb(stored[i], stored[i + 1], stored[i + 2], output.AsSpan(i, 3));
        }
        else if (attributes.BitsStored == 8)
        {
            for (int i = 0; i < stored.Length; i++) output[i] = (byte)stored[i];
        }
        else
        {
            // floor(P / (2^BitsStored − 1) * 255 + 0.5)
            double top = Math.Pow(2, attributes.BitsStored) - 1;
            for (int i = 0; i < stored.Length; i++) output[i] = RoundToByte(stored[i] / top * 255);
        }
        return image;
    }

    // ITU-T T.871 constants for YBR_FULL → RGB, each evaluated left to right as pydicom writes them.
    private const double GreenFromCb = -0.114 * 1.772 / 0.587;
    private const double GreenFromCr = -0.299 * 1.402 / 0.587;

    /// <summary>
    /// pydicom's <c>convert_color_space(arr, "YBR_FULL", "RGB")</c> in double: <c>R = Y + 1.402·cr</c>,
    /// <c>G = Y + k1·cb + k2·cr</c>, <c>B = Y + 1.772·cb</c> with <c>cb = Cb − 128</c>, <c>cr = Cr − 128</c>.
    /// </summary>
    internal static void YbrFullToRgb(int y, int cbStored, int crStored, Span<byte> rgb)
    {
        double cb = cbStored - 128.0, cr = crStored - 128.0;
        rgb[0] = RoundToByte(y + 1.402 * cr);
        rgb[1] = RoundToByte(y + GreenFromCb * cb + GreenFromCr * cr);
        rgb[2] = RoundToByte(y + 1.772 * cb);
    }

    /// <summary><c>clamp(floor(v + 0.5), 0, 255)</c>: round half up, not half to even.</summary>
    internal static byte RoundToByte(double value)
    {
        double rounded = Math.Floor(value + 0.5);
        return rounded <= 0 ? (byte)0 : rounded >= 255 ? (byte)255 : (byte)rounded;
    }

    /// <summary>The monochrome pipeline for one frame's attributes: which Modality and VOI branch, and their parameters.</summary>
    private sealed class MonochromeTransform
    {
        private enum VoiStep { LutSequence, Linear, LinearExact, Sigmoid, MinMax }

        private readonly LookupTable? modalityLut;
        private readonly (double Slope, double Intercept)? rescale;
        private readonly LookupTable? voiLut;
        private readonly double voiLutTop;   // 2^bits − 1 of the VOI LUT
        private readonly VoiStep voi;
        private readonly double center, width;
        private readonly bool invert;        // MONOCHROME1
        private double min, max;             // min-max over the frame

        public MonochromeTransform(DicomImageAttributes attributes, string sourceName)
        {
            modalityLut = attributes.ModalityLut;
            rescale = attributes.Rescale;
            invert = attributes.Photometric == Photometric.Monochrome1;
            if (attributes.VoiLut is { } lut)
            {
                voi = VoiStep.LutSequence;
                voiLut = lut;
                voiLutTop = Math.Pow(2, lut.Bits) - 1;
            }
            else if (attributes.WindowCenters.Length > 0 && attributes.WindowWidths.Length > 0)
            {
                center = attributes.WindowCenters[0];
                width = attributes.WindowWidths[0];
                voi = attributes.VoiLutFunction switch
                {
                    "LINEAR" => VoiStep.Linear,
                    "LINEAR_EXACT" => VoiStep.LinearExact,
                    "SIGMOID" => VoiStep.Sigmoid,
                    var other => throw InvalidImage.Error(sourceName,
                        $"DICOM VOI LUT Function '{other}' is not supported (LINEAR, LINEAR_EXACT and SIGMOID are)"),
                };
                // PS3.3 C.11.2.1.2.1 and C.11.2.1.3: LINEAR needs width ≥ 1, the others width > 0.
                if (voi == VoiStep.Linear ? !(width >= 1) : !(width > 0))
                    throw InvalidImage.Error(sourceName,
                        $"DICOM Window Width {width} is invalid for the {attributes.VoiLutFunction} window (it must be {(voi == VoiStep.Linear ? "at least 1" : "positive")})");
            }
            else
            {
                voi = VoiStep.MinMax;
            }
        }

        /// <summary>Whether the VOI step needs <see cref="SetFrameRange"/> (min-max windowing).</summary>
        public bool NeedsFrameRange => voi == VoiStep.MinMax;

        public void SetFrameRange(double frameMin, double frameMax)
        {
            min = frameMin;
            max = frameMax;
        }

        /// <summary>Step 1, Modality LUT: <c>x = LUT[clamp(P − first, 0, n − 1)]</c>, <c>x = P * slope + intercept</c>, or <c>x = P</c>.</summary>
        public double Modality(int stored)
        {
            if (modalityLut != null) return modalityLut.Map(stored);
            if (rescale is var (slope, intercept)) return stored * slope + intercept;
            return stored;
        }

        /// <summary>Steps 1–4 for one stored value.</summary>
        public byte Render(int stored)
        {
            double x = Modality(stored);
            double y = Voi(x);
            if (invert) y = 255 - y;
            return RoundToByte(y);
        }

        /// <summary>Step 2, VOI: x → y in 0..255.</summary>
        private double Voi(double x)
        {
            switch (voi)
            {
                case VoiStep.LutSequence:
                    return voiLut!.Map(x) / voiLutTop * 255;
                case VoiStep.Linear:
                {
                    // C.11.2.1.2.1: the window is [c − 0.5 − (w − 1)/2, c − 0.5 + (w − 1)/2].
                    double low = center - 0.5 - (width - 1) / 2;
                    double high = center - 0.5 + (width - 1) / 2;
                    if (x <= low) return 0;
                    if (x > high) return 255;
                    return ((x - (center - 0.5)) / (width - 1) + 0.5) * 255;
                }
                case VoiStep.LinearExact:
                    if (x <= center - width / 2) return 0;
                    if (x > center + width / 2) return 255;
                    return ((x - center) / width + 0.5) * 255;
                case VoiStep.Sigmoid:
                    return 255 / (1 + Math.Exp(-4 * (x - center) / width));
                default:
                    return max == min ? 0 : (x - min) / (max - min) * 255;
            }
        }
    }
}
