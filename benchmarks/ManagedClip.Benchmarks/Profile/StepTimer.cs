using System.Diagnostics;
using ManagedClip.Model;

namespace ManagedClip.Benchmarks.Profile;

/// <summary>
/// Times the steps of forward passes: each report closes the step that ran since the previous one. Steps are grouped
/// by name, with the block index replaced by * (derived from the tower's own block names), and by output shape, so
/// the last block's steps on the class rows alone are a group of their own.
/// </summary>
internal sealed class StepTimer(IEnumerable<string> blockNames, Func<double>? clockMilliseconds = null) : ForwardHook
{
    // The clock: wall time by default, or another (the calling thread's CPU time, which load from other processes
    // does not inflate, for a pass on one worker).
    private readonly Func<double> clock = clockMilliseconds ?? (() => Stopwatch.GetTimestamp() * 1000.0 / Stopwatch.Frequency);

    private readonly List<Group> groups = new();
    private readonly Dictionary<(string Name, int Rows, int Width), Group> byKey = new();
    private double last;
    private bool recording;
    private int passes;

    private sealed class Group(string name, int rows, int width)
    {
        public readonly string Name = name;
        public readonly int Rows = rows, Width = width;
        public readonly List<double> Milliseconds = new(); // [pass] summed over the blocks
        public long MultiplyAdds;                          // per pass
        public int Calls;                                  // per pass
    }

    public void StartPass(bool record)
    {
        recording = record;
        if (record)
        {
            passes++;
            foreach (var group in groups) group.Milliseconds.Add(0);
        }
        last = clock();
    }

    protected override void OnStep(string name, ReadOnlySpan<float> output, int width, long multiplyAdds)
    {
        double now = clock();
        double milliseconds = now - last;
        last = now;
        if (!recording) return;
        var key = (Pattern(name), output.Length / width, width);
        if (!byKey.TryGetValue(key, out var group))
        {
            byKey[key] = group = new Group(key.Item1, key.Item2, width);
            groups.Add(group);
            for (int pass = 0; pass < passes; pass++) group.Milliseconds.Add(0);
        }
        group.Milliseconds[^1] += milliseconds;
        if (passes == 1)
        {
            group.MultiplyAdds += multiplyAdds;
            group.Calls++;
        }
        last = clock(); // the bookkeeping above is not the next step's time
    }

    private readonly string[] blocks = blockNames.ToArray();

    /// <summary>"visual.trunk.blocks.3.attn.qkv" → "visual.trunk.blocks.*.attn.qkv", by the tower's block names.</summary>
    private string Pattern(string name)
    {
        foreach (var block in blocks)
            if (name == block || name.StartsWith(block + ".", StringComparison.Ordinal))
                return block[..(block.LastIndexOf('.') + 1)] + "*" + name[block.Length..];
        return name;
    }

    public void Print(TextWriter output)
    {
        var medians = groups.Select(g => VisionProfile.Median([.. g.Milliseconds])).ToArray();
        double total = medians.Sum();
        output.WriteLine("| Step (time since the previous step) | Calls | Output | ms | Share | GFLOPS |");
        output.WriteLine("|---|---:|---|---:|---:|---:|");
        for (int i = 0; i < groups.Count; i++)
        {
            var g = groups[i];
            string gflops = g.MultiplyAdds > 0 ? VisionProfile.F(2.0 * g.MultiplyAdds / medians[i] / 1e6, 1) : "-";
            output.WriteLine($"| {g.Name} | {g.Calls} | [{g.Rows}, {g.Width}] | {VisionProfile.F(medians[i], 3)} | {VisionProfile.F(100 * medians[i] / total, 1)} % | {gflops} |");
        }
        long allMultiplyAdds = groups.Sum(g => g.MultiplyAdds);
        output.WriteLine($"| **Sum of steps** | | | **{VisionProfile.F(total, 2)}** | 100 % | {VisionProfile.F(2.0 * allMultiplyAdds / total / 1e6, 1)} |");
    }
}
