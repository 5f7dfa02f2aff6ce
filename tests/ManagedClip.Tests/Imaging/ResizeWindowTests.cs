using ManagedClip.Imaging;
using ManagedClip.Model;

namespace ManagedClip.Tests.Imaging;

/// <summary>
/// The resize computes only the window the centre crop keeps (<see cref="PillowResize.Window"/>). It must give the
/// bytes of a whole resize followed by the crop (tolerance 0: both are integer arithmetic on the same weights), and
/// its cost must follow the window, not the resized image, whatever the aspect ratio.
/// </summary>
public class ResizeWindowTests
{
    private const int Size = 224;
    private static readonly ImagePreprocessor Preprocessor = ImagePreprocessor.For(ClipConfig.BiomedClip);

    /// <summary>Sizes whose whole resize is affordable, around the crop: wide, tall, up- and downscaled, odd offsets.</summary>
    public static TheoryData<int, int> AffordableSizes => new()
    {
        { 512, 227 }, { 227, 512 }, { 7, 5 }, { 60, 300 }, { 1200, 900 }, { 1, 300 }, { 300, 1 }, { 3, 700 },
        { 700, 3 }, { 224, 224 }, { 225, 224 }, { 224, 1000 }, { 223, 224 },
    };

    /// <summary>
    /// Every mode: the window equals the whole resize (the same code over the full output, itself checked against the
    /// plain transcription in <see cref="ResizeTests"/>) cropped at torchvision's offsets.
    /// </summary>
    [Theory]
    [MemberData(nameof(AffordableSizes))]
    public void WindowEqualsWholeResizeThenCrop(int width, int height)
    {
        foreach (var mode in Enum.GetValues<PillowMode>())
        {
            var image = RandomImage(mode, width, height, seed: width * 7919 + height);
            var (newWidth, newHeight) = TorchvisionGeometry.ResizedSize(width, height, Size);
            var (left, top) = TorchvisionGeometry.CenterCropOffset(newWidth, newHeight, Size);
            var whole = PillowResize.Resize(image, newWidth, newHeight);
            var window = PillowResize.Window(image, newWidth, newHeight, left, top, Size, Size);
            string where = $"{mode} {width}x{height}";
            if (mode == PillowMode.I) Assert.Equal(Crop(whole.Ints, newWidth, 1, left, top), window.Ints);
            else PreprocessReferenceTests.AssertBytesEqual(Crop(whole.Bytes, newWidth, whole.Channels, left, top), window.Bytes, where);
        }
    }

    /// <summary>Bicubic modes against the plain transcription's whole resize + crop, for the sizes above (no premultiplying: L and RGB).</summary>
    [Theory]
    [MemberData(nameof(AffordableSizes))]
    public void WindowEqualsPlainResizeThenCrop(int width, int height)
    {
        var (newWidth, newHeight) = TorchvisionGeometry.ResizedSize(width, height, Size);
        var (left, top) = TorchvisionGeometry.CenterCropOffset(newWidth, newHeight, Size);
        foreach (var mode in new[] { PillowMode.L, PillowMode.Rgb })
        {
            var image = RandomImage(mode, width, height, seed: width + 31 * height);
            var plain = NaiveBicubic.Resize8(image.Bytes, width, height, image.Channels, newWidth, newHeight);
            var window = PillowResize.Window(image, newWidth, newHeight, left, top, Size, Size);
            PreprocessReferenceTests.AssertBytesEqual(Crop(plain, newWidth, image.Channels, left, top), window.Bytes, $"{mode} {width}x{height}");
        }
    }

    /// <summary>The per-pixel transcription used for the extreme cases agrees with the plain whole resize where both are affordable.</summary>
    [Theory]
    [InlineData(1, 5000, 16)]
    [InlineData(5000, 1, 16)]
    [InlineData(3, 900, 32)]
    [InlineData(97, 61, 40)]
    public void PerPixelTranscriptionEqualsWholeTranscription(int width, int height, int size)
    {
        var image = RandomImage(PillowMode.Rgb, width, height, seed: 3);
        var (newWidth, newHeight) = TorchvisionGeometry.ResizedSize(width, height, size);
        var (left, top) = TorchvisionGeometry.CenterCropOffset(newWidth, newHeight, size);
        var plain = NaiveBicubic.Resize8(image.Bytes, width, height, 3, newWidth, newHeight);
        var perPixel = NaiveBicubic.Window8(image.Bytes, width, height, 3, newWidth, newHeight, left, top, size, size);
        Assert.Equal(Crop(plain, newWidth, 3, left, top, size), perPixel);
    }

    /// <summary>
    /// Aspect ratios whose whole resize would not fit in memory (1×65535 → 224×14,679,840, 9.8 GB in RGB): the window
    /// equals the per-pixel transcription, and computing it allocates little (bound 16 MB on this thread, against
    /// 3.3 GB per channel for the whole resize).
    /// </summary>
    [Theory]
    [InlineData(1, 65535)]
    [InlineData(65535, 1)]
    [InlineData(2, 65535)]
    [InlineData(65535, 3)]
    [InlineData(5, 40000)]
    [InlineData(40000, 7)]
    public void ExtremeAspectRatiosComputeOnlyTheCrop(int width, int height)
    {
        var (newWidth, newHeight) = TorchvisionGeometry.ResizedSize(width, height, Size);
        var (left, top) = TorchvisionGeometry.CenterCropOffset(newWidth, newHeight, Size);
        foreach (var mode in new[] { PillowMode.L, PillowMode.Rgb, PillowMode.Rgba, PillowMode.I })
        {
            var image = RandomImage(mode, width, height, seed: width ^ height);
            long before = GC.GetAllocatedBytesForCurrentThread();
            var window = PillowResize.Window(image, newWidth, newHeight, left, top, Size, Size);
            long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            Assert.True(allocated < 16 << 20, $"{mode} {width}x{height}: the window allocated {allocated:N0} bytes");

            if (mode == PillowMode.I)
            {
                var expected = NaiveBicubic.WindowInt32(image.Ints, width, height, newWidth, newHeight, left, top, Size, Size);
                Assert.Equal(expected, window.Ints);
            }
            else if (mode == PillowMode.Rgba)
            {
                // Premultiplied: the transcription on premultiplied input, un-premultiplied after.
                var premultiplied = (byte[])image.Bytes.Clone();
                PremultipliedAlpha.Premultiply(premultiplied, 4);
                var expected = NaiveBicubic.Window8(premultiplied, width, height, 4, newWidth, newHeight, left, top, Size, Size);
                PremultipliedAlpha.Unpremultiply(expected, 4);
                PreprocessReferenceTests.AssertBytesEqual(expected, window.Bytes, $"{mode} {width}x{height}");
            }
            else
            {
                var expected = NaiveBicubic.Window8(image.Bytes, width, height, image.Channels, newWidth, newHeight, left, top, Size, Size);
                PreprocessReferenceTests.AssertBytesEqual(expected, window.Bytes, $"{mode} {width}x{height}");
            }
        }
    }

    /// <summary>NEAREST modes (P, 1) on extreme ratios: each kept pixel is the source pixel at Pillow's truncated position.</summary>
    [Theory]
    [InlineData(1, 65535)]
    [InlineData(65535, 1)]
    public void NearestOnExtremeRatiosPicksPillowsSourcePixels(int width, int height)
    {
        var image = RandomImage(PillowMode.P, width, height, seed: 11);
        var (newWidth, newHeight) = TorchvisionGeometry.ResizedSize(width, height, Size);
        var (left, top) = TorchvisionGeometry.CenterCropOffset(newWidth, newHeight, Size);
        var window = PillowResize.Window(image, newWidth, newHeight, left, top, Size, Size);
        for (int y = 0; y < Size; y += 37)
            for (int x = 0; x < Size; x += 41)
            {
                // floor((i + 0.5)·in/out); away from ties the accumulated and multiplied positions agree.
                int sourceX = (int)((left + x + 0.5) * width / newWidth), sourceY = (int)((top + y + 0.5) * height / newHeight);
                var expected = image.Bytes.AsSpan((sourceY * width + sourceX) * 3, 3).ToArray();
                Assert.Equal(expected, window.Bytes.AsSpan((y * Size + x) * 3, 3).ToArray());
            }
    }

    /// <summary>End to end through the preprocessor: a 1×65535 PNG gives the transcription's crop, converted to RGB.</summary>
    [Fact]
    public void ThinPngThroughThePreprocessor()
    {
        var image = RandomImage(PillowMode.L, 1, 65535, seed: 5);
        var png = ImageFiles.Png(image);
        var native = Preprocessor.Decode(png, "thin.png");
        Assert.Equal((PillowMode.L, 1, 65535), (native.Mode, native.Width, native.Height));
        var rgb = new byte[Size * Size * 3];
        Preprocessor.ResizeCropToRgb(native, rgb);
        var (newWidth, newHeight) = TorchvisionGeometry.ResizedSize(1, 65535, Size);
        var (left, top) = TorchvisionGeometry.CenterCropOffset(newWidth, newHeight, Size);
        var grey = NaiveBicubic.Window8(image.Bytes, 1, 65535, 1, newWidth, newHeight, left, top, Size, Size);
        for (int i = 0; i < grey.Length; i++) Assert.Equal(grey[i], rgb[3 * i]);
    }

    /// <summary>An image whose resized long side would overflow (1×10,000,000 → 224×2.24e9) is refused from the header.</summary>
    [Fact]
    public void TooElongatedIsRefusedBeforeDecoding()
    {
        var png = HostileInputTests.PngWithHeader(10_000_000, 1);
        var error = Assert.Throws<InvalidDataException>(() => Preprocessor.Preprocess(png, "line.png"));
        Assert.StartsWith("line.png: ", error.Message);
        Assert.Contains("too elongated", error.Message);
    }

    private static T[] Crop<T>(T[] pixels, int width, int channels, int left, int top, int size = Size)
    {
        var crop = new T[size * size * channels];
        for (int y = 0; y < size; y++)
            pixels.AsSpan(((top + y) * width + left) * channels, size * channels).CopyTo(crop.AsSpan(y * size * channels));
        return crop;
    }

    internal static NativeImage RandomImage(PillowMode mode, int width, int height, int seed)
    {
        var image = NativeImage.Create(mode, width, height);
        var random = new Random(seed);
        if (mode == PillowMode.I)
            for (int i = 0; i < image.Ints.Length; i++) image.Ints[i] = random.Next(0, 65536);
        else
            random.NextBytes(image.Bytes);
        if (mode == PillowMode.Bilevel)
            for (int i = 0; i < image.Bytes.Length; i++) image.Bytes[i] = image.Bytes[i] < 128 ? (byte)0 : (byte)255;
        return image;
    }
}
