using System.Buffers;

namespace ManagedClip.Model;

/// <summary>
/// The activation memory of one forward pass: a single float[] rented from the shared pool, handed out as
/// consecutive slices. Each pass rents its own arena, so a loaded model can serve several threads at once,
/// and steady-state inference reuses the same pooled arrays instead of allocating.
/// </summary>
internal sealed class ActivationArena : IDisposable
{
    private float[]? buffer;
    private readonly int length;
    private int used;

    /// <summary>Rents room for <paramref name="floatCount"/> floats (the sum of every slice the pass will take).</summary>
    /// <param name="floatCount">Total floats; a long so that an oversized batch is reported instead of overflowing.</param>
    /// <param name="what">What the pass computes, for the error message.</param>
    public ActivationArena(long floatCount, string what)
    {
        if (floatCount > Array.MaxLength)
            throw new ArgumentException(
                $"{what}: the batch needs {floatCount:N0} activation floats, more than one array can hold; split the batch.");
        length = (int)floatCount;
        buffer = ArrayPool<float>.Shared.Rent(length);
    }

    /// <summary>The next <paramref name="count"/> floats. Contents are stale: every slice is written before it is read.</summary>
    public Span<float> Take(int count)
    {
        if (buffer is null) throw new ObjectDisposedException(nameof(ActivationArena));
        if (count > length - used)
            throw new InvalidOperationException($"arena of {length} floats exhausted (bug: sizes and slices disagree)");
        var slice = buffer.AsSpan(used, count);
        used += count;
        return slice;
    }

    public void Dispose()
    {
        if (buffer is null) return;
        ArrayPool<float>.Shared.Return(buffer);
        buffer = null;
    }
}
