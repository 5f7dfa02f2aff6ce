namespace ManagedClip.Imaging;

/// <summary>
/// What an image may cost, checked from its header before any pixel is decoded. The pixel limit bounds the decoded
/// buffer (the only full-size copy: the resize computes just the crop, whatever the aspect ratio). The aspect check
/// refuses images whose resized long side would not fit an int, where torchvision's size arithmetic gives Pillow a
/// size it cannot take either.
/// </summary>
/// <param name="MaxPixels">Largest accepted width × height.</param>
/// <param name="ShorterSide">The side the shorter edge is resized to (224), or 0 to skip the aspect check.</param>
internal readonly record struct ImageLimits(long MaxPixels, int ShorterSide)
{
    /// <exception cref="InvalidDataException">Empty, over the pixel limit, or too elongated to resize.</exception>
    public void Check(int width, int height, string format, string sourceName)
    {
        if (width <= 0 || height <= 0)
            throw InvalidImage.Error(sourceName, $"{format} header gives an empty image ({width}x{height})");
        long pixels = (long)width * height;
        if (pixels > MaxPixels)
            throw InvalidImage.Error(sourceName,
                $"{format} image of {width}x{height} = {pixels:N0} pixels exceeds the limit of {MaxPixels:N0} pixels (refused before decoding)");
        if (ShorterSide <= 0) return;
        long shortSide = Math.Min(width, height), longSide = Math.Max(width, height);
        long resizedLong = ShorterSide * longSide / shortSide;
        if (resizedLong > int.MaxValue)
            throw InvalidImage.Error(sourceName,
                $"{format} image of {width}x{height} is too elongated: resizing its shorter side to {ShorterSide} pixels " +
                $"would make the longer side {resizedLong:N0} pixels (at most {int.MaxValue:N0})");
    }
}
