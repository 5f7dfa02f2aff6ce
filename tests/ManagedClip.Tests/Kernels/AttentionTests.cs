using ManagedClip.Kernels;
using static ManagedClip.Tests.Kernels.TestValues;

namespace ManagedClip.Tests.Kernels;

public class AttentionTests
{
    public static TheoryData<int, int, int, int, int> Cases()
    {
        var data = new TheoryData<int, int, int, int, int>();
        foreach (var path in ReferenceAndSupported())
        {
            data.Add((int)path, 197, 12, 64, 197); // ViT-B/16 at 224 px
            data.Add((int)path, 12, 12, 64, 9);    // BERT, three padded keys
            data.Add((int)path, 1, 1, 1, 1);
            data.Add((int)path, 33, 3, 17, 32);    // odd head size, keys one past a panel
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void MatchesFloat64(int path, int tokens, int heads, int headSize, int keys)
    {
        var qkv = Random(tokens * 3 * heads * headSize, seed: 50, scale: 2);
        var output = new float[tokens * heads * headSize];
        Attention.SelfAttention(qkv, tokens, heads, headSize, output, keys, (KernelPath)path);

        var (expected, magnitude, scoreMagnitude) = KernelReference.Attention(qkv, tokens, heads, headSize, keys);
        for (int i = 0; i < output.Length; i++)
        {
            double bound = Bound(magnitude[i], scoreMagnitude[i], headSize, keys);
            Assert.True(Math.Abs(output[i] - expected[i]) <= bound, $"element {i}: {output[i]} vs {expected[i]} (bound {bound:E2})");
        }
    }

    /// <summary>
    /// Scores carry ≤ (hs + 1)·u·Σ|q||k|/√hs each; a score error δ changes a weight by ≈ δ relative (twice: itself and
    /// through the sum), exp adds ~3u, the softmax sum keys·u, the weighted sum of values another keys·u — all
    /// relative to Σ p·|v|.
    /// </summary>
    private static double Bound(double magnitude, double scoreMagnitude, int headSize, int keys) =>
        (2 * (headSize + 1) * FloatUnitRoundoff * scoreMagnitude + (2 * keys + 12) * FloatUnitRoundoff) * magnitude + 1e-30;

    public static TheoryData<int, int, int, int, int> FastCases()
    {
        var data = new TheoryData<int, int, int, int, int>();
        foreach (object[] row in Cases())
            if ((int)row[0] != (int)KernelPath.Reference) data.Add((int)row[0], (int)row[1], (int)row[2], (int)row[3], (int)row[4]);
        return data;
    }

    [Theory]
    [MemberData(nameof(FastCases))]
    public void EveryPathMatchesTheReferenceKernel(int path, int tokens, int heads, int headSize, int keys)
    {
        // Both within Bound of the exact attention, so within twice it of each other.
        var qkv = Random(tokens * 3 * heads * headSize, seed: 53, scale: 2);
        var output = new float[tokens * heads * headSize];
        var reference = new float[output.Length];
        Attention.SelfAttention(qkv, tokens, heads, headSize, output, keys, (KernelPath)path);
        Attention.SelfAttention(qkv, tokens, heads, headSize, reference, keys, KernelPath.Reference);
        var (_, magnitude, scoreMagnitude) = KernelReference.Attention(qkv, tokens, heads, headSize, keys);
        for (int i = 0; i < output.Length; i++)
        {
            double bound = 2 * Bound(magnitude[i], scoreMagnitude[i], headSize, keys);
            Assert.True(Math.Abs(output[i] - reference[i]) <= bound, $"element {i}: {output[i]} vs reference {reference[i]} (bound {bound:E2})");
        }
    }

    [Fact]
    public void KeysBeyondKeyCountAreNeverRead()
    {
        // Attending to the first 7 of 10 tokens must equal attending over a 7-token sequence's keys, whatever
        // the last 3 keys and values hold: make them NaN and compare bitwise with the 10-token run on clean data.
        const int tokens = 10, heads = 2, headSize = 8, keys = 7, width = heads * headSize;
        var qkv = Random(tokens * 3 * width, seed: 51);
        var clean = new float[tokens * width];
        Attention.SelfAttention(qkv, tokens, heads, headSize, clean, keys);

        var poisoned = (float[])qkv.Clone();
        for (int t = keys; t < tokens; t++) poisoned.AsSpan(t * 3 * width + width, 2 * width).Fill(float.NaN);
        var output = new float[tokens * width];
        Attention.SelfAttention(poisoned, tokens, heads, headSize, output, keys);
        Assert.Equal(clean, output);

        // And equal to the float64 attention over the truncated keys.
        var (expected, _, _) = KernelReference.Attention(qkv, tokens, heads, headSize, keys);
        for (int i = 0; i < output.Length; i++) Assert.Equal(expected[i], output[i], 1e-5);
    }

    [Fact]
    public void SteadyStateCallsAllocateNothingOnTheCallingThread()
    {
        var qkv = Random(197 * 3 * 768, seed: 52);
        var output = new float[197 * 768];
        Parallelism.StartWorkers(); // the pool's threads are made once per process, maybe inside the window below
        Attention.SelfAttention(qkv, 197, 12, 64, output);
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 3; i++) Attention.SelfAttention(qkv, 197, 12, 64, output);
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    [Fact]
    public void BadArgumentsAreRejected()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => Attention.SelfAttention(new float[3 * 4 * 4], 4, 1, 4, new float[16], 5));
        Assert.Throws<ArgumentOutOfRangeException>(() => Attention.SelfAttention(new float[3 * 4 * 4], 4, 1, 4, new float[16], 0));
        Assert.Throws<ArgumentException>(() => Attention.SelfAttention(new float[10], 4, 1, 4, new float[16]));
        Assert.Throws<ArgumentException>(() => Attention.SelfAttention(new float[48], 4, 1, 4, new float[15]));
    }
}
