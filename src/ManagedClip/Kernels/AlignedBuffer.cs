using System.Runtime.CompilerServices;

namespace ManagedClip.Kernels;

/// <summary>
/// Floats on a pinned array (it never moves), starting on a 64-byte cache line: packed weights and attention's
/// scratch, so the micro-kernel's panel rows and tile stores are whole lines.
/// </summary>
internal unsafe struct AlignedBuffer
{
    private const int CacheLine = 64;

    private float[]? array; // pinned: keeps the memory alive while Start is used

    /// <summary>The first float, on a cache line; null before <see cref="EnsureLength"/>.</summary>
    public float* Start { get; private set; }

    /// <summary>
    /// A buffer over memory someone else keeps alive and in place (a read-only mapping of a packed-weights file):
    /// only <see cref="Start"/> is set, and <see cref="EnsureLength"/> must not be called.
    /// </summary>
    public static AlignedBuffer Over(void* start) => new() { Start = (float*)start };

    /// <summary>Makes room for at least <paramref name="length"/> floats. Growing discards the contents, and new
    /// memory is not cleared: callers write every float before reading it.</summary>
    public void EnsureLength(int length)
    {
        if (array != null && array.Length - CacheLine / sizeof(float) >= length) return;
        if ((long)length + CacheLine / sizeof(float) > Array.MaxLength)
            throw new ArgumentOutOfRangeException(nameof(length), length, "more floats than one array can hold");
        array = GC.AllocateUninitializedArray<float>(length + CacheLine / sizeof(float), pinned: true);
        float* first = (float*)Unsafe.AsPointer(ref array[0]);
        Start = first + FloatsToNextLine(first);
    }

    /// <summary>Floats from <paramref name="address"/> to the next 64-byte boundary (0 if it is on one).</summary>
    public static int FloatsToNextLine(float* address) => (int)((CacheLine - (nint)address % CacheLine) % CacheLine) / sizeof(float);
}
