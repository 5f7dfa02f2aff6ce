namespace ManagedClip.Imaging;

/// <summary>
/// Pillow 9.4's <c>Image.resize((width, height), Image.BICUBIC)</c> for every mode this port decodes
/// (Image.py <c>resize</c>, _imaging.c <c>_resize</c>, Resample.c <c>ImagingResampleInner</c>, Geometry.c
/// <c>ImagingScaleAffine</c>), computed for a window of the result only.
/// </summary>
/// <remarks>
/// Every output pixel of Pillow's separable resampling depends only on its own column's taps (horizontal pass) and
/// its own row's taps (vertical pass), and NEAREST picks one source pixel per output; so the window of the resized
/// image that the centre crop keeps can be computed alone, with exactly the bytes a whole resize followed by the
/// crop gives. The cost then follows the window, not the resized image: a 1×65535 image resized to
/// 224×14,679,840 costs 224 rows of work, not 3 GB. Pure function of its input; safe to call from many threads.
/// </remarks>
internal static class PillowResize
{
    /// <summary>The whole image resized to <paramref name="width"/> × <paramref name="height"/> (tests, small images).</summary>
    public static NativeImage Resize(PixelRows image, int width, int height) =>
        Window(image, width, height, 0, 0, width, height);

    /// <summary>
    /// The window <c>[left, left + windowWidth) × [top, top + windowHeight)</c> of <paramref name="image"/> resized to
    /// <paramref name="width"/> × <paramref name="height"/> the way Pillow does for the image's mode. Parts of the
    /// window outside the resized image are zero, as Pillow's <c>crop</c> fills them.
    /// </summary>
    public static NativeImage Window(PixelRows image, int width, int height, int left, int top, int windowWidth, int windowHeight)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(width, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(height, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(windowWidth, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(windowHeight, 1);
        // The part of the window inside the resized image, in its coordinates.
        int x0 = Math.Max(left, 0), x1 = (int)Math.Min((long)left + windowWidth, width);
        int y0 = Math.Max(top, 0), y1 = (int)Math.Min((long)top + windowHeight, height);
        if (x1 <= x0 || y1 <= y0) return NativeImage.Create(image.Mode, windowWidth, windowHeight);
        var inside = new Rect(x0, y0, x1 - x0, y1 - y0);

        NativeImage kept;
        if (width == image.Width && height == image.Height) kept = Copy(image, inside); // Pillow returns a copy
        else if (image.Mode.ResizesWithNearest()) kept = Nearest(image, width, height, inside);
        else kept = Bicubic(image, width, height, inside, image.Mode.ResizesPremultiplied());

        if (inside.Width == windowWidth && inside.Height == windowHeight) return kept;
        var output = NativeImage.Create(image.Mode, windowWidth, windowHeight);
        Paste(kept, output, x0 - left, y0 - top);
        return output;
    }

    /// <summary>The whole image resampled bicubic, never premultiplied (tests compare the passes with a plain transcription).</summary>
    internal static NativeImage Bicubic(PixelRows image, int width, int height) =>
        Bicubic(image, width, height, new Rect(0, 0, width, height), premultiplied: false);

    /// <summary>A rectangle of the resized image: columns [X, X + Width), rows [Y, Y + Height).</summary>
    private readonly record struct Rect(int X, int Y, int Width, int Height);

    /// <summary>
    /// Separable bicubic over the window: the horizontal pass first, over only the source rows the vertical pass
    /// will read and only the window's columns, then the vertical pass for the window's rows. A pass whose size does
    /// not change is skipped, as in Pillow. RGBA and LA are resampled premultiplied (Pillow's RGBa/La), the
    /// conversion applied to each source row as it is read and undone on the window.
    /// </summary>
    private static NativeImage Bicubic(PixelRows image, int width, int height, Rect window, bool premultiplied)
    {
        var columns = width != image.Width ? ResampleCoefficients.Bicubic(image.Width, width, window.X, window.Width) : null;
        var rows = height != image.Height ? ResampleCoefficients.Bicubic(image.Height, height, window.Y, window.Height) : null;
        var (firstColumn, endColumn) = columns?.InputRange ?? (window.X, window.X + window.Width);
        var (firstRow, endRow) = rows?.InputRange ?? (window.Y, window.Y + window.Height);

        // across: [endRow − firstRow, window.Width, channels], the source rows after the horizontal pass
        var across = NativeImage.Create(image.Mode, window.Width, endRow - firstRow);
        int channels = image.Channels, rowLength = window.Width * channels;
        if (image.Mode == PillowMode.I)
        {
            var source = new int[endColumn - firstColumn];
            for (int y = firstRow; y < endRow; y++)
            {
                image.ReadRow(y, firstColumn, source);
                var target = across.Ints.AsSpan((y - firstRow) * window.Width, window.Width);
                if (columns is null) source.CopyTo(target);
                else BicubicPasses.HorizontalRow32(source, firstColumn, columns, target);
            }
        }
        else
        {
            var source = new byte[(endColumn - firstColumn) * channels];
            for (int y = firstRow; y < endRow; y++)
            {
                image.ReadRow(y, firstColumn, source);
                if (premultiplied) PremultipliedAlpha.Premultiply(source, channels);
                var target = across.Bytes.AsSpan((y - firstRow) * rowLength, rowLength);
                if (columns is null) source.CopyTo(target);
                else BicubicPasses.HorizontalRow8(source, firstColumn, channels, columns, target);
            }
        }

        var result = across;
        if (rows is not null)
        {
            result = NativeImage.Create(image.Mode, window.Width, window.Height);
            if (image.Mode == PillowMode.I) BicubicPasses.Vertical32(across.Ints, window.Width, firstRow, rows, result.Ints);
            else BicubicPasses.Vertical8(across.Bytes, rowLength, firstRow, rows, result.Bytes);
        }
        if (premultiplied) PremultipliedAlpha.Unpremultiply(result.Bytes, channels);
        return result;
    }

    /// <summary>
    /// NEAREST as Pillow's affine scaling does it: source column of output x is the truncated
    /// <c>0.5·s + x·s</c> with <c>s = in/out</c> accumulated by repeated addition (not multiplied), which decides
    /// the rare ties exactly as Pillow does.
    /// </summary>
    private static NativeImage Nearest(PixelRows image, int width, int height, Rect window)
    {
        var columns = NearestIndices(image.Width, width, window.X, window.Width);
        var rows = NearestIndices(image.Height, height, window.Y, window.Height);
        var output = NativeImage.Create(image.Mode, window.Width, window.Height);
        int firstColumn = int.MaxValue, endColumn = 0;
        foreach (int column in columns)
        {
            if (column < 0) continue;
            firstColumn = Math.Min(firstColumn, column);
            endColumn = Math.Max(endColumn, column + 1);
        }
        if (endColumn == 0) return output;
        int channels = image.Channels;
        var source = new byte[(endColumn - firstColumn) * channels];
        for (int y = 0; y < window.Height; y++)
        {
            if (rows[y] < 0) continue; // outside the source: Pillow's fill leaves 0
            image.ReadRow(rows[y], firstColumn, source);
            var target = output.Bytes.AsSpan(y * window.Width * channels, window.Width * channels);
            for (int x = 0; x < window.Width; x++)
            {
                if (columns[x] < 0) continue;
                source.AsSpan((columns[x] - firstColumn) * channels, channels).CopyTo(target.Slice(x * channels, channels));
            }
        }
        return output;
    }

    /// <summary>Source index per output index of <c>[first, first + length)</c>, or −1 where Pillow's scaling lands outside the source.</summary>
    private static int[] NearestIndices(int inSize, int outSize, int first, int length)
    {
        double step = (double)(float)inSize / outSize;
        double position = step * 0.5;
        for (int i = 0; i < first; i++) position += step; // the same additions as Pillow's loop, in order
        var indices = new int[length];
        for (int i = 0; i < length; i++)
        {
            int index = position < 0.0 ? -1 : (int)position;
            indices[i] = index < inSize ? index : -1;
            position += step;
        }
        return indices;
    }

    private static NativeImage Copy(PixelRows image, Rect window)
    {
        var output = NativeImage.Create(image.Mode, window.Width, window.Height);
        for (int y = 0; y < window.Height; y++)
        {
            if (image.Mode == PillowMode.I)
                image.ReadRow(window.Y + y, window.X, output.Ints.AsSpan(y * window.Width, window.Width));
            else
                image.ReadRow(window.Y + y, window.X, output.Bytes.AsSpan(y * window.Width * output.Channels, window.Width * output.Channels));
        }
        return output;
    }

    /// <summary>Copies <paramref name="part"/> into <paramref name="output"/> with its top-left corner at (x, y).</summary>
    private static void Paste(NativeImage part, NativeImage output, int x, int y)
    {
        for (int row = 0; row < part.Height; row++)
        {
            if (part.Mode == PillowMode.I)
                part.Ints.AsSpan(row * part.Width, part.Width).CopyTo(output.Ints.AsSpan((y + row) * output.Width + x));
            else
                part.Bytes.AsSpan(row * part.Width * part.Channels, part.Width * part.Channels)
                    .CopyTo(output.Bytes.AsSpan(((y + row) * output.Width + x) * output.Channels));
        }
    }
}
