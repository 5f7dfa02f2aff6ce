using Xunit.Abstractions;

namespace ManagedClip.Tests;

/// <summary>
/// llm.c-style tensor checks, the one comparison helper of the tests: the largest absolute difference and where it is,
/// so a failing stage says so.
/// </summary>
internal static class TensorAssert
{
    /// <summary>Largest |expected − actual| and its index.</summary>
    public static (float MaxDiff, int Index) MaxAbsDiff(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        float max = 0;
        int at = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            float diff = MathF.Abs(expected[i] - actual[i]);
            if (float.IsNaN(diff)) return (float.NaN, i);
            if (diff > max) (max, at) = (diff, i);
        }
        return (max, at);
    }

    /// <summary>Asserts max |expected − actual| ≤ tolerance, reporting "name: maxdiff …" either way.</summary>
    public static float Close(string name, ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, float tolerance,
        ITestOutputHelper? output = null)
    {
        var (max, at) = MaxAbsDiff(expected, actual);
        string report = $"{name}: maxdiff {max:E2} at [{at}] (expected {expected[at]:G9}, got {actual[at]:G9}), tolerance {tolerance:E0}";
        output?.WriteLine((max <= tolerance ? "OK   " : "FAIL ") + report);
        Assert.True(max <= tolerance, report);
        return max;
    }

    /// <summary>
    /// Asserts max |expected − actual| ≤ <paramref name="tolerance"/> and cos(expected, actual) ≥
    /// <paramref name="minimumCosine"/>; returns an "OK, maxdiff …, cosine …" line for the test log.
    /// </summary>
    public static string Close(string name, ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, double tolerance,
        double minimumCosine)
    {
        var (max, at) = MaxAbsDiff(expected, actual);
        double cosine = CosineOf(expected, actual);
        Assert.True(max <= tolerance && cosine >= minimumCosine,
            $"{name}: maxdiff {max:E2} at [{at}] (expected {expected[at]:G9}, got {actual[at]:G9}), cosine {cosine:F7}; " +
            $"allowed maxdiff {tolerance:E1}, cosine ≥ {minimumCosine}");
        return $"{name}: OK, maxdiff {max:E2}, cosine {cosine:F8}";
    }

    /// <summary>Asserts cos(expected, actual) ≥ minimum.</summary>
    public static void Cosine(string name, ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, double minimum)
    {
        double cosine = CosineOf(expected, actual);
        Assert.True(cosine >= minimum, $"{name}: cosine {cosine:F8} < {minimum}");
    }

    /// <summary>cos(expected, actual), summed in double.</summary>
    private static double CosineOf(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual)
    {
        double dot = 0, ee = 0, aa = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            dot += (double)expected[i] * actual[i];
            ee += (double)expected[i] * expected[i];
            aa += (double)actual[i] * actual[i];
        }
        return dot / Math.Sqrt(ee * aa);
    }
}
