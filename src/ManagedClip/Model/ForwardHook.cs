namespace ManagedClip.Model;

/// <summary>
/// Watches a forward pass step by step, as PyTorch's <c>register_forward_hook</c> does: every module reports its
/// output when it finishes, under its state-dict name. The tests record the activations PyTorch recorded for the
/// same modules; the profiler times each step. A hook watches one forward call on the thread that made it.
/// </summary>
/// <remarks>
/// The reports, in order: each <see cref="Linear"/> (<c>visual.trunk.blocks.3.attn.qkv</c>), LayerNorm
/// (<c>…blocks.3.norm1</c>) and attention core (<c>…blocks.3.attn.scaled_dot_product_attention</c>, q, k, v to the
/// heads' outputs), each block or layer (<c>…blocks.3</c>; the last one's output is its class-token rows only), and
/// the towers' own steps (<see cref="VisionTransformer.EmbeddingsStep"/>). A report costs one thread-static read when
/// no hook is installed.
/// </remarks>
internal abstract class ForwardHook
{
    [ThreadStatic] private static ForwardHook? current;

    /// <summary>
    /// A step finished. <paramref name="output"/> is its result [rows, <paramref name="width"/>], valid only during the
    /// call; <paramref name="multiplyAdds"/> the multiply-adds it did (0 when not counted).
    /// </summary>
    protected abstract void OnStep(string name, ReadOnlySpan<float> output, int width, long multiplyAdds);

    /// <summary>Reports a finished step to this thread's hook, if one is installed.</summary>
    public static void After(string name, ReadOnlySpan<float> output, int width, long multiplyAdds = 0) =>
        current?.OnStep(name, output, width, multiplyAdds);

    /// <summary>The hook installed on this thread, if any: a forward call made inside an installed hook's scope (by
    /// <c>ClipModel</c>, say) reports to it.</summary>
    public static ForwardHook? Installed => current;

    /// <summary>Installs <paramref name="hook"/> (or nothing, if null) on this thread until the scope is disposed.</summary>
    public static Scope Install(ForwardHook? hook)
    {
        var scope = new Scope(current);
        current = hook;
        return scope;
    }

    /// <summary>Puts back the hook that was installed before.</summary>
    public readonly struct Scope(ForwardHook? previous) : IDisposable
    {
        public void Dispose() => current = previous;
    }
}

/// <summary>Keeps a copy of the outputs of the steps it was asked for (the tests' stage-by-stage comparisons).</summary>
internal sealed class ForwardTrace(params string[] steps) : ForwardHook
{
    private readonly Dictionary<string, float[]> outputs = new();

    /// <summary>The last output of <paramref name="step"/>.</summary>
    public float[] this[string step] =>
        outputs.TryGetValue(step, out var values) ? values : throw new KeyNotFoundException($"step '{step}' did not run");

    protected override void OnStep(string name, ReadOnlySpan<float> output, int width, long multiplyAdds)
    {
        if (steps.Contains(name)) outputs[name] = output.ToArray();
    }
}
