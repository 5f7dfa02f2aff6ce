using ManagedClip.Kernels;
using static ManagedClip.Tests.Kernels.TestValues;

namespace ManagedClip.Tests.Kernels;

public class SoftmaxTests
{
    public static TheoryData<int, int> Cases()
    {
        var data = new TheoryData<int, int>();
        foreach (var path in ReferenceAndSupported())
            foreach (int length in Lengths)
                data.Add((int)path, length);
        return data;
    }

    private static readonly int[] Lengths = [1, 3, 7, 16, 17, 197, 257];

    private static readonly float[] Offsets = [0f, 1000f, -1000f];

    public static TheoryData<int, int> FastCases()
    {
        var data = new TheoryData<int, int>();
        foreach (var path in KernelPaths.Supported())
            foreach (int length in Lengths)
                data.Add((int)path, length);
        return data;
    }

    /// <summary>
    /// Relative error against the exact softmax: the logit x − max carries up to u·|x| (x up to 1020) times the 0.125
    /// scale, exp adds ≲ 3u (vector exp ≈ 2.5 ulp), the sum ≲ length·u, the scaling u.
    /// </summary>
    private static double Bound(double expected, float offset, int length) =>
        expected * FloatUnitRoundoff * (0.125 * 2 * (Math.Abs(offset) + 20) + length + 8) + 1e-38;

    [Theory]
    [MemberData(nameof(FastCases))]
    public void EveryPathMatchesTheReferenceKernel(int path, int length)
    {
        foreach (float offset in Offsets)
        {
            // Both within Bound of the exact softmax, so within twice it of each other.
            var row = Random(length, seed: 40 + length, scale: 20, offset: offset);
            var expected = KernelReference.Softmax(row, scale: 0.125);
            var reference = (float[])row.Clone();
            Softmax.Apply(row, 0.125f, (KernelPath)path);
            Softmax.Apply(reference, 0.125f, KernelPath.Reference);
            for (int i = 0; i < length; i++)
                Assert.True(Math.Abs(row[i] - reference[i]) <= 2 * Bound(expected[i], offset, length),
                    $"offset {offset}, element {i}: {row[i]} vs reference {reference[i]}");
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void MatchesFloat64AndSurvivesHugeLogits(int path, int length)
    {
        foreach (float offset in Offsets)
        {
            // Logits spread over ±20 around the offset: exp(1020) overflows unless the maximum is subtracted.
            var row = Random(length, seed: 40 + length, scale: 20, offset: offset);
            var expected = KernelReference.Softmax(row, scale: 0.125);
            Softmax.Apply(row, 0.125f, (KernelPath)path);
            for (int i = 0; i < length; i++)
                Assert.True(Math.Abs(row[i] - expected[i]) <= Bound(expected[i], offset, length), $"offset {offset}, element {i}: {row[i]} vs {expected[i]}");
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
