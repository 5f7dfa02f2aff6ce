using ManagedClip.Imaging.Jpeg;

namespace ManagedClip.Tests.Imaging.Jpeg;

/// <summary>
/// The fancy upsamplers and the colour conversion on tiny rows against values worked out by hand from libjpeg's
/// formulas (jdsample.c, jdcolor.c), and the vector kernels against the scalar code on random rows of every width.
/// </summary>
public class UpsamplingTests
{
    [Fact]
    public void H2V1FancyOnThreeSamples()
    {
        // s = 10, 20, 40: first column copies, then (3·s[i] + s[i−1] + 1) >> 2 and (3·s[i] + s[i+1] + 2) >> 2, last copies.
        var output = new byte[6];
        ComponentUpsampler<byte>.H2V1([10, 20, 40], output, 3);
        Assert.Equal(new byte[] { 10, (30 + 20 + 2) >> 2, (60 + 10 + 1) >> 2, (60 + 40 + 2) >> 2, (120 + 20 + 1) >> 2, 40 }, output);
    }

    [Fact]
    public void H1V2FancyBiasesUpperAndLowerRows()
    {
        var upper = new byte[2];
        var lower = new byte[2];
        ComponentUpsampler<byte>.H1V2([100, 7], [0, 9], upper, 2, bias: 1);
        ComponentUpsampler<byte>.H1V2([100, 7], [0, 9], lower, 2, bias: 2);
        Assert.Equal(new byte[] { (300 + 0 + 1) >> 2, (21 + 9 + 1) >> 2 }, upper);
        Assert.Equal(new byte[] { (300 + 0 + 2) >> 2, (21 + 9 + 2) >> 2 }, lower);
    }

    [Fact]
    public void H2V2FancyOnThreeColumns()
    {
        // Column sums c = 3·near + far: 3·10+2 = 32, 3·20+4 = 64, 3·40+8 = 128.
        var output = new byte[6];
        ComponentUpsampler<byte>.H2V2([10, 20, 40], [2, 4, 8], new int[3], output, 3);
        Assert.Equal(new byte[]
        {
            (4 * 32 + 8) >> 4, (3 * 32 + 64 + 7) >> 4,
            (3 * 64 + 32 + 8) >> 4, (3 * 64 + 128 + 7) >> 4,
            (3 * 128 + 64 + 8) >> 4, (4 * 128 + 7) >> 4,
        }, output);
    }

    [Fact]
    public void BoxRepeatsSamplesUpToTheImageWidth()
    {
        var output = new byte[5];
        ComponentUpsampler<byte>.Box([1, 2], output, 4, 5);
        Assert.Equal(new byte[] { 1, 1, 1, 1, 2 }, output);
    }

    [Fact]
    public void YCbCrToRgbUsesLibjpegsFixedPointTables()
    {
        // Grey stays grey; saturated chroma clamps; one mid value worked out from the README's formulas.
        var rgb = new byte[9];
        ColorConversion.YCbCrToRgb([128, 255, 100], [128, 255, 90], [128, 0, 200], rgb, 3);
        int cr = 200 - 128, cb = 90 - 128;
        Assert.Equal(new byte[]
        {
            128, 128, 128,
            (byte)Math.Clamp(255 + ((91881 * -128 + 32768) >> 16), 0, 255), 255, 255,
            (byte)Math.Clamp(100 + ((91881 * cr + 32768) >> 16), 0, 255),
            (byte)Math.Clamp(100 + ((-22554 * cb + 32768 - 46802 * cr) >> 16), 0, 255),
            (byte)Math.Clamp(100 + ((116130 * cb + 32768) >> 16), 0, 255),
        }, rgb);
    }

    public static TheoryData<int> Widths => new() { 18, 19, 20, 31, 33, 34, 35, 47, 50, 64, 65, 100, 257 };

    /// <summary>The vector kernels give the scalar reference's bytes on random rows (every tail length).</summary>
    [Avx2Theory]
    [MemberData(nameof(Widths))]
    public void VectorKernelsEqualScalarReference(int width)
    {
        var random = new Random(width);
        for (int trial = 0; trial < 40; trial++)
        {
            var a = RandomRow(random, width + 20);
            var b = RandomRow(random, width + 20);
            var c = RandomRow(random, width + 20);

            var expected = new byte[2 * width];
            var actual = new byte[2 * width];
            ComponentUpsampler<byte>.H2V2(a, b, new int[width], expected, width);
            JpegRowKernels.H2V2Fancy(a, b, new ushort[width], actual, width);
            Assert.Equal(expected, actual);

            ComponentUpsampler<byte>.H2V1(a, expected, width);
            JpegRowKernels.H2V1Fancy(a, actual, width);
            Assert.Equal(expected, actual);

            for (int bias = 1; bias <= 2; bias++)
            {
                var expectedRow = new byte[width];
                var actualRow = new byte[width];
                ComponentUpsampler<byte>.H1V2(a, b, expectedRow, width, bias);
                JpegRowKernels.H1V2Fancy(a, b, actualRow, width, bias);
                Assert.Equal(expectedRow, actualRow);
            }

            var expectedRgb = new byte[3 * width];
            var actualRgb = new byte[3 * width];
            ColorConversion.YCbCrToRgb(a, b, c, expectedRgb, width);
            JpegRowKernels.YCbCrToRgb(a, b, c, actualRgb, width);
            Assert.Equal(expectedRgb, actualRgb);

            for (int x = 0; x < width; x++) (expectedRgb[3 * x], expectedRgb[3 * x + 1], expectedRgb[3 * x + 2]) = (a[x], b[x], c[x]);
            JpegRowKernels.Interleave3(a, b, c, actualRgb, width);
            Assert.Equal(expectedRgb, actualRgb);
        }
    }

    /// <summary>Random bytes, with runs of the extremes so that clamping and carries are exercised.</summary>
    private static byte[] RandomRow(Random random, int length)
    {
        var row = new byte[length];
        random.NextBytes(row);
        for (int i = 0; i < length; i++)
        {
            if (random.Next(8) == 0) row[i] = 0;
            else if (random.Next(8) == 0) row[i] = 255;
        }
        return row;
    }
}
