namespace ManagedClip.Imaging;

/// <summary>
/// Pillow 9.4's <c>Image.resize((width, height), Image.BICUBIC)</c> for every mode this port decodes
/// (Image.py <c>resize</c>, _imaging.c <c>_resize</c>, Resample.c <c>ImagingResampleInner</c>, Geometry.c
/// <c>ImagingScaleAffine</c>). Pure function of its input; safe to call from many threads at once.
/// </summary>
internal static class PillowResize
{
    /// <summary>Resizes to <paramref name="width"/> × <paramref name="height"/> the way Pillow does for the image's mode.</summary>
    public static NativeImage Resize(NativeImage image, int width, int height)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(width, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(height, 1);
        if (width == image.Width && height == image.Height) return image; // Pillow returns a copy; nothing here mutates it

        if (image.Mode.ResizesWithNearest()) return Nearest(image, width, height);
        if (!image.Mode.ResizesPremultiplied()) return Bicubic(image, width, height);

        // RGBA → RGBa, resample, RGBa → RGBA (and the same for LA).
        var premultiplied = NativeImage.Create(image.Mode, image.Width, image.Height);
        image.Bytes.CopyTo(premultiplied.Bytes, 0);
        PremultipliedAlpha.Premultiply(premultiplied.Bytes, image.Channels);
        var resized = Bicubic(premultiplied, width, height);
        PremultipliedAlpha.Unpremultiply(resized.Bytes, resized.Channels);
        return resized;
    }

    /// <summary>
    /// Separable bicubic: the horizontal pass first, over only the rows the vertical pass will read, then the
    /// vertical pass. A pass whose size does not change is skipped, as in Pillow.
    /// </summary>
    internal static NativeImage Bicubic(NativeImage image, int width, int height)
    {
        bool needHorizontal = width != image.Width;
        bool needVertical = height != image.Height;
        var vertical = ResampleCoefficients.Bicubic(image.Height, height);
        int firstRow = vertical.First[0];
        int endRow = vertical.First[height - 1] + vertical.Count[height - 1];

        var current = image;
        int rowOffset = 0;
        if (needHorizontal)
        {
            var horizontal = ResampleCoefficients.Bicubic(image.Width, width);
            current = NativeImage.Create(image.Mode, width, endRow - firstRow);
            if (image.Mode == PillowMode.I)
                BicubicPasses.Horizontal32(image.Ints, firstRow, endRow - firstRow, horizontal, current.Ints);
            else
                BicubicPasses.Horizontal8(image.Bytes, image.Channels, firstRow, endRow - firstRow, horizontal, current.Bytes);
            rowOffset = firstRow;
        }
        if (!needVertical) return current;

        var output = NativeImage.Create(image.Mode, width, height);
        if (image.Mode == PillowMode.I)
            BicubicPasses.Vertical32(current.Ints, width, rowOffset, vertical, output.Ints);
        else
            BicubicPasses.Vertical8(current.Bytes, width * image.Channels, rowOffset, vertical, output.Bytes);
        return output;
    }

    /// <summary>
    /// NEAREST as Pillow's affine scaling does it: source column of output x is the truncated
    /// <c>0.5·s + x·s</c> with <c>s = in/out</c> accumulated by repeated addition (not multiplied), which decides
    /// the rare ties exactly as Pillow does.
    /// </summary>
    private static NativeImage Nearest(NativeImage image, int width, int height)
    {
        var columns = NearestIndices(image.Width, width);
        var rows = NearestIndices(image.Height, height);
        var output = NativeImage.Create(image.Mode, width, height);
        int channels = image.Channels;
        for (int y = 0; y < height; y++)
        {
            if (rows[y] < 0) continue; // outside the source: Pillow's fill leaves 0
            var input = image.Bytes.AsSpan(rows[y] * image.Width * channels, image.Width * channels);
            var target = output.Bytes.AsSpan(y * width * channels, width * channels);
            for (int x = 0; x < width; x++)
            {
                if (columns[x] < 0) continue;
                input.Slice(columns[x] * channels, channels).CopyTo(target.Slice(x * channels, channels));
            }
        }
        return output;
    }

    /// <summary>Source index per output index, or −1 where Pillow's scaling lands outside the source.</summary>
    private static int[] NearestIndices(int inSize, int outSize)
    {
        double step = (double)(float)inSize / outSize;
        double position = step * 0.5;
        var indices = new int[outSize];
        for (int i = 0; i < outSize; i++)
        {
            int index = position < 0.0 ? -1 : (int)position;
            indices[i] = index < inSize ? index : -1;
            position += step;
        }
        return indices;
    }
}
