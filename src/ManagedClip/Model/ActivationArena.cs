using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using ManagedClip.Kernels;

namespace ManagedClip.Model;

/// <summary>
/// The activation memory of one forward pass: a single float[] rented from the shared pool, handed out as
/// consecutive slices. Each pass rents its own arena, so a loaded model can serve several threads at once,
/// and steady-state inference reuses the same pooled arrays instead of allocating.
/// </summary>
/// <remarks>
/// Every slice starts on a 64-byte cache line. The GEMM's tile stores are then whole lines, and two workers writing
/// neighbouring column blocks of one output row never share a line (measured faster than the pool's own 8-byte
/// alignment: docs/benchmarks/design-measurements-2026-12-01.md). The alignment holds as long as the array does not move, which the large arrays of a real pass never do (the
/// large-object heap is not compacted unless asked to); if it is lost, only speed suffers.
/// </remarks>
internal sealed class ActivationArena : IDisposable
{
    /// <summary>Most slices one pass takes; each may cost up to one cache line of padding.</summary>
    private const int MaxSlices = 16;

    private const int FloatsPerLine = 64 / sizeof(float);

    private float[]? buffer;
    private readonly long floatCount;
    private long taken;
    private int used, slices;

    /// <summary>Rents room for <paramref name="floatCount"/> floats (the sum of every slice the pass will take).</summary>
    /// <param name="floatCount">Total floats; a long so that an oversized batch is reported instead of overflowing.</param>
    /// <param name="what">What the pass computes, for the error message.</param>
    public ActivationArena(long floatCount, string what)
    {
        long withPadding = floatCount + (long)MaxSlices * FloatsPerLine;
        if (withPadding > Array.MaxLength)
            throw new ArgumentException(
                $"{what}: the batch needs {floatCount:N0} activation floats, more than one array can hold; split the batch.");
        this.floatCount = floatCount;
        buffer = ArrayPool<float>.Shared.Rent((int)withPadding);
    }

    /// <summary>The next <paramref name="count"/> floats, starting on a cache line. Contents are stale: every slice is
    /// written before it is read.</summary>
    public Span<float> Take(int count)
    {
        if (buffer is null) throw new ObjectDisposedException(nameof(ActivationArena));
        if (++slices > MaxSlices) throw new InvalidOperationException($"arena handed out more than {MaxSlices} slices (bug)");
        if ((taken += count) > floatCount)
            throw new InvalidOperationException($"arena of {floatCount} floats exhausted (bug: sizes and slices disagree)");
        used += FloatsToNextLine(used); // at most one line per slice: room for it was rented
        var slice = buffer.AsSpan(used, count);
        used += count;
        return slice;
    }

    /// <summary>Floats to skip from element <paramref name="index"/> to the next 64-byte boundary (0 if on one).</summary>
    private unsafe int FloatsToNextLine(int index) =>
        AlignedBuffer.FloatsToNextLine((float*)Unsafe.AsPointer(ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(buffer!), index)));

    public void Dispose()
    {
        if (buffer is null) return;
        ArrayPool<float>.Shared.Return(buffer);
        buffer = null;
    }
}
