namespace ManagedClip.Tests.Kernels;

/// <summary>Inputs and constants shared by the kernel tests.</summary>
internal static class TestValues
{
    /// <summary>Unit roundoff of float32, 2⁻²⁴: the relative error of one correctly rounded operation.</summary>
    public const double FloatUnitRoundoff = 1.0 / (1 << 24);

    /// <summary>Uniform values in [−1, 1) from a fixed seed, so failures reproduce.</summary>
    public static float[] Random(int count, int seed, float scale = 1, float offset = 0)
    {
        var random = new Random(seed);
        var values = new float[count];
        for (int i = 0; i < count; i++) values[i] = offset + scale * (2 * random.NextSingle() - 1);
        return values;
    }

    public static TheoryData<int> SupportedPaths()
    {
        var data = new TheoryData<int>();
        foreach (var path in ManagedClip.Kernels.KernelPaths.Supported()) data.Add((int)path);
        return data;
    }

    public static TheoryData<int> ReferenceAndSupportedPaths()
    {
        var data = new TheoryData<int>();
        foreach (var path in ReferenceAndSupported()) data.Add((int)path);
        return data;
    }

    /// <summary>The reference kernels, then every fast path this machine runs: the paths checked against float64.</summary>
    public static IEnumerable<ManagedClip.Kernels.KernelPath> ReferenceAndSupported() =>
        [ManagedClip.Kernels.KernelPath.Reference, .. ManagedClip.Kernels.KernelPaths.Supported()];
}
