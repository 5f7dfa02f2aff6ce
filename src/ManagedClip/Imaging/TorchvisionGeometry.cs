namespace ManagedClip.Imaging;

/// <summary>
/// The size arithmetic of torchvision 0.14's <c>Resize(int)</c> and <c>CenterCrop</c> on a PIL image
/// (functional.py <c>_compute_resized_output_size</c> and <c>center_crop</c>).
/// </summary>
internal static class TorchvisionGeometry
{
    /// <summary>
    /// Shorter side → <paramref name="size"/>, longer side → <c>int(size · long / short)</c> (Python's true
    /// division, then truncation). A square image becomes size × size.
    /// </summary>
    public static (int Width, int Height) ResizedSize(int width, int height, int size)
    {
        bool widthIsShort = width <= height;
        int shortSide = widthIsShort ? width : height;
        int longSide = widthIsShort ? height : width;
        // size·long is an exact integer and both operands are exact doubles, so this is Python's correctly
        // rounded int/int division.
        int newLong = checked((int)((double)((long)size * longSide) / shortSide)); // ImageLimits refuses what overflows
        return widthIsShort ? (size, newLong) : (newLong, size);
    }

    /// <summary>
    /// Top-left corner of the centred size × size crop: <c>int(round((W − size) / 2.0))</c> with Python's
    /// round-half-to-even (C#'s default <see cref="Math.Round(double)"/>). Negative when the image is smaller than
    /// the crop; <see cref="PillowConvert"/> then fills with zeros like torchvision's padding.
    /// </summary>
    public static (int Left, int Top) CenterCropOffset(int width, int height, int size)
    {
        return (Offset(width, size), Offset(height, size));

        static int Offset(int length, int size)
        {
            if (length >= size) return (int)Math.Round((length - size) / 2.0);
            // torchvision pads left/top by (size − length) // 2, then crops the padded image at 0.
            return -((size - length) / 2);
        }
    }
}
