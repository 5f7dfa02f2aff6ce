using ManagedClip.Retrieval;

namespace ManagedClip.Tests.Retrieval;

public unsafe class ScoreKernelTests
{
    [Fact]
    public void Float16WideningIsExactForEveryBitPattern()
    {
        // Each bit pattern alone in a row of zeros, in lane (pattern mod 32), against a query of ones: the dot
        // product is the widened value itself (+ zeros), to be compared bit for bit with (float)half.
        var row = new Half[32];
        var query = Enumerable.Repeat(1f, 32).ToArray();
        for (int pattern = 0; pattern < 65536; pattern++)
        {
            Array.Fill(row, Half.Zero);
            var value = BitConverter.UInt16BitsToHalf((ushort)pattern);
            row[pattern % 32] = value;
            float widened;
            fixed (Half* r = row) widened = ScoreKernels.DotFloat16(r, query);
            float expected = (float)value;
            if (float.IsNaN(expected)) Assert.True(float.IsNaN(widened), $"0x{pattern:X4}");
            else if (expected == 0) Assert.Equal(0f, widened); // −0 + 0 = +0
            else Assert.True(BitConverter.SingleToInt32Bits(expected) == BitConverter.SingleToInt32Bits(widened), $"0x{pattern:X4}: {widened} vs {expected}");
        }
    }

    [Theory]
    [InlineData(512)]
    [InlineData(64)]
    [InlineData(37)]
    public void DotProductsMatchAPlainLoop(int width)
    {
        var random = new Random(width);
        var query = Enumerable.Range(0, width).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
        var row = Enumerable.Range(0, width).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
        var halfRow = row.Select(v => (Half)v).ToArray();
        double exact = 0, exactHalf = 0;
        for (int i = 0; i < width; i++)
        {
            exact += (double)row[i] * query[i];
            exactHalf += (double)(float)halfRow[i] * query[i];
        }
        fixed (float* r = row)
        fixed (Half* h = halfRow)
        {
            // float32 sums in another order: agreement to a few ulps of the terms' magnitude (width · 2^-24 · max|term| ≈ 3e-5).
            Assert.Equal(exact, ScoreKernels.DotFloat32(r, query), 5e-5);
            Assert.Equal(exactHalf, ScoreKernels.DotFloat16(h, query), 5e-5);
        }
    }
}
