using ManagedClip.Kernels;
using static ManagedClip.Tests.Kernels.TestValues;

namespace ManagedClip.Tests.Kernels;

public class SoftmaxTests
{
    public static TheoryData<int, int> Cases()
    {
        var data = new TheoryData<int, int>();
        foreach (var path in KernelPaths.Supported())
            foreach (int length in new[] { 1, 3, 7, 16, 17, 197, 257 })
                data.Add((int)path, length);
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void MatchesFloat64AndSurvivesHugeLogits(int path, int length)
    {
        foreach (float offset in new[] { 0f, 1000f, -1000f })
        {
            // Logits spread over ±20 around the offset: exp(1020) overflows unless the maximum is subtracted.
            var row = Random(length, seed: 40 + length, scale: 20, offset: offset);
            var expected = KernelReference.Softmax(row, scale: 0.125);
            Softmax.Apply(row, 0.125f, (KernelPath)path);
            for (int i = 0; i < length; i++)
            {
                // Relative error: the logit x − max carries up to u·|x| (x up to 1020) times the 0.125 scale, exp adds
                // ≲ 3u (vector exp ≈ 2.5 ulp), the sum ≲ length·u, the scaling u.
                double bound = expected[i] * FloatUnitRoundoff * (0.125 * 2 * (Math.Abs(offset) + 20) + length + 8) + 1e-38;
                Assert.True(Math.Abs(row[i] - expected[i]) <= bound, $"offset {offset}, element {i}: {row[i]} vs {expected[i]}");
            }
        }
    }

    [Fact]
    public void PublicOverloadIsPlainSoftmax()
    {
        float[] row = [1, 2, 3];
        Softmax.Apply(row);
        var expected = KernelReference.Softmax(new float[] { 1, 2, 3 });
        for (int i = 0; i < 3; i++) Assert.Equal(expected[i], row[i], 1e-7);
    }
}
