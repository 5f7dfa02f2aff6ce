using ManagedClip.Imaging;

namespace ManagedClip.Tests.Imaging;

/// <summary>The resize, crop and conversion steps on synthetic inputs, against a naive transcription and hand-worked cases.</summary>
public class ResizeTests
{
    public static TheoryData<int, int, int, int> Sizes => new()
    {
        { 512, 227, 505, 224 },   // downscale, wide (the reference's "wide")
        { 7, 5, 313, 224 },       // big upscale
        { 60, 300, 224, 1120 },   // upscale, tall
        { 1200, 900, 298, 224 },  // downscale by 4
        { 33, 17, 33, 40 },       // height only: horizontal pass skipped
        { 45, 29, 19, 29 },       // width only: vertical pass skipped
        { 1, 1, 9, 3 },           // single pixel
        { 301, 5, 11, 2 },        // row length not a multiple of 8 (SIMD tail)
    };

    /// <summary>Fast passes (row window, pointers, AVX2) = naive transcription, for 1–4 channels. Exact: both are integer math on the same weights.</summary>
    [Theory]
    [MemberData(nameof(Sizes))]
    public void EightBitResizeEqualsNaiveTranscription(int width, int height, int newWidth, int newHeight)
    {
        foreach (var mode in new[] { PillowMode.L, PillowMode.LA, PillowMode.Rgb, PillowMode.Rgba })
        {
            var image = RandomImage(mode, width, height, seed: width * 31 + height);
            var actual = PillowResize.Bicubic(image, newWidth, newHeight); // the plain resample, without premultiplying
            var expected = NaiveBicubic.Resize8(image.Bytes, width, height, image.Channels, newWidth, newHeight);
            PreprocessReferenceTests.AssertBytesEqual(expected, actual.Bytes, $"{mode} {width}x{height}->{newWidth}x{newHeight}");
        }
    }

    [Theory]
    [MemberData(nameof(Sizes))]
    public void Int32ResizeEqualsNaiveTranscription(int width, int height, int newWidth, int newHeight)
    {
        var image = NativeImage.Create(PillowMode.I, width, height);
        var random = new Random(width + 7 * height);
        for (int i = 0; i < image.Ints.Length; i++) image.Ints[i] = random.Next(0, 65536);
        var actual = PillowResize.Resize(image, newWidth, newHeight);
        Assert.Equal(NaiveBicubic.ResizeInt32(image.Ints, width, height, newWidth, newHeight), actual.Ints);
    }

    /// <summary>The cubic weights sum to 1, so a flat image stays flat in every mode (no drift from the fixed-point rounding).</summary>
    [Theory]
    [InlineData("L")]
    [InlineData("Rgb")]
    [InlineData("Rgba")]
    [InlineData("LA")]
    [InlineData("P")]
    public void FlatImageStaysFlat(string modeName)
    {
        var mode = Enum.Parse<PillowMode>(modeName);
        var image = NativeImage.Create(mode, 97, 61);
        // Opaque alpha for LA/RGBA: a partial alpha is legitimately quantised by the premultiply round trip.
        int Value(int i) => mode.ResizesPremultiplied() && i % image.Channels == image.Channels - 1 ? 255 : i % image.Channels * 40 + 90;
        for (int i = 0; i < image.Bytes.Length; i++) image.Bytes[i] = (byte)Value(i);
        var resized = PillowResize.Resize(image, 360, 224);
        for (int i = 0; i < resized.Bytes.Length; i++) Assert.Equal(Value(i), resized.Bytes[i]);
    }

    /// <summary>Premultiplied resampling (Pillow's RGBa): colour under alpha 0 never leaks into the result.</summary>
    [Fact]
    public void TransparentColourDoesNotBleed()
    {
        var image = NativeImage.Create(PillowMode.Rgba, 20, 20);
        for (int p = 0; p < 400; p++)
        {
            bool leftHalf = p % 20 < 10;
            // Left: opaque black. Right: fully transparent bright red.
            image.Bytes[4 * p] = leftHalf ? (byte)0 : (byte)255;
            image.Bytes[4 * p + 3] = leftHalf ? (byte)255 : (byte)0;
        }
        var resized = PillowResize.Resize(image, 7, 7);
        for (int p = 0; p < 49; p++) Assert.Equal(0, resized.Bytes[4 * p]); // straight resampling would give red > 0 near the edge
    }

    /// <summary>Pillow's MULDIV255 and its integer un-premultiply: hand-worked values.</summary>
    [Fact]
    public void PremultiplyRoundTripQuantisesLowAlpha()
    {
        byte[] pixel = [200, 100, 7, 3];
        PremultipliedAlpha.Premultiply(pixel, 4);
        // round(200·3/255) = 2, round(100·3/255) = 1, round(7·3/255) = 0
        Assert.Equal(new byte[] { 2, 1, 0, 3 }, pixel);
        PremultipliedAlpha.Unpremultiply(pixel, 4);
        // 255·2/3 = 170, 255·1/3 = 85, 0
        Assert.Equal(new byte[] { 170, 85, 0, 3 }, pixel);
    }

    /// <summary>NEAREST for palette images: only colours already present appear (bicubic would blend them).</summary>
    [Fact]
    public void PaletteImagesKeepTheirColours()
    {
        var image = NativeImage.Create(PillowMode.P, 13, 9);
        for (int p = 0; p < 13 * 9; p++) image.Bytes[3 * p] = (byte)(p % 2 == 0 ? 10 : 250);
        var resized = PillowResize.Resize(image, 41, 28);
        Assert.All(Enumerable.Range(0, 41 * 28), p => Assert.Contains(resized.Bytes[3 * p], new byte[] { 10, 250 }));
        // Pillow's source column for output x is floor((x + 0.5)·13/41): output 40 → 12, output 3 → 1.
        Assert.Equal(image.Bytes[3 * 12], resized.Bytes[3 * 40]);
        Assert.Equal(image.Bytes[3 * 1], resized.Bytes[3 * 3]);
    }

    [Theory]
    [InlineData(512, 227, 505, 224, 140, 0)]  // round(140.5) = 140 (half to even), from the reference README
    [InlineData(7, 5, 313, 224, 44, 0)]       // round(44.5) = 44
    [InlineData(640, 427, 335, 224, 56, 0)]   // round(55.5) = 56, from the model card README
    [InlineData(1200, 1285, 224, 239, 0, 8)]  // round(7.5) = 8
    [InlineData(224, 224, 224, 224, 0, 0)]
    [InlineData(300, 224, 300, 224, 38, 0)]   // shorter side already 224: unchanged
    public void ResizeTargetAndCropFollowTorchvision(int width, int height, int resizedWidth, int resizedHeight, int left, int top)
    {
        Assert.Equal((resizedWidth, resizedHeight), TorchvisionGeometry.ResizedSize(width, height, 224));
        Assert.Equal((left, top), TorchvisionGeometry.CenterCropOffset(resizedWidth, resizedHeight, 224));
    }

    /// <summary>torchvision pads an image smaller than the crop with zeros, (crop − size) // 2 before.</summary>
    [Fact]
    public void CropOfASmallerImagePadsWithZeros()
    {
        var image = NativeImage.Create(PillowMode.L, 3, 10);
        Array.Fill(image.Bytes, (byte)9);
        var (left, top) = TorchvisionGeometry.CenterCropOffset(3, 10, 6);
        Assert.Equal((-1, 2), (left, top)); // pad left (6 − 3) // 2 = 1; top round((10 − 6) / 2) = 2
        var crop = PillowResize.Window(image, 3, 10, left, top, 6, 6); // same size: Pillow's resize is a copy
        for (int y = 0; y < 6; y++)
            Assert.Equal(new byte[] { 0, 9, 9, 9, 0, 0 }, crop.Bytes.AsSpan(y * 6, 6).ToArray());
    }

    /// <summary>convert("RGB") of mode I clips to 0..255; it does not rescale 16-bit values.</summary>
    [Fact]
    public void ModeIClipsWhenConvertedToRgb()
    {
        var image = NativeImage.Create(PillowMode.I, 4, 1);
        int[] values = [-5, 100, 255, 40000];
        values.CopyTo(image.Ints, 0);
        var rgb = new byte[12];
        PillowConvert.ToRgb(image, rgb);
        Assert.Equal(new byte[] { 0, 0, 0, 100, 100, 100, 255, 255, 255, 255, 255, 255 }, rgb);
    }

    private static NativeImage RandomImage(PillowMode mode, int width, int height, int seed)
    {
        var image = NativeImage.Create(mode, width, height);
        new Random(seed).NextBytes(image.Bytes);
        return image;
    }
}
