namespace ManagedClip.Kernels;

/// <summary>
/// The one place kernels go parallel. <see cref="MaxDegree"/> = 1 runs everything on the calling thread,
/// which makes profiles and debugging readable.
/// </summary>
public static class Parallelism
{
    private static int maxDegree = Environment.ProcessorCount;

    /// <summary>Worker count used by the kernels (default: all cores).</summary>
    public static int MaxDegree
    {
        get => maxDegree;
        set => maxDegree = value >= 1 ? value : throw new ArgumentOutOfRangeException(nameof(value), "must be at least 1");
    }

    /// <summary>Runs <paramref name="body"/> for every index in [0, count), split across at most MaxDegree workers.</summary>
    public static void For(int count, Action<int> body)
    {
        if (count <= 0) return;
        if (maxDegree == 1 || count == 1)
        {
            for (int i = 0; i < count; i++) body(i);
            return;
        }
        Parallel.For(0, count, new ParallelOptions { MaxDegreeOfParallelism = maxDegree }, body);
    }
}
