namespace ManagedClip.Cli;

/// <summary>
/// Bounds how many request bodies the server reads and holds at once, and reuses their buffers.
/// <para>
/// A burst of sixteen 4 MB requests used to be read all at once: sixteen body copies, sixteen new large arrays and
/// their garbage collections, all on a small machine's cores in the same tenth of a second, while <c>/healthz</c> waited
/// for a thread. Now an admitted request first takes one of <see cref="Slots"/> body slots (the model's running
/// requests plus a read-ahead sized from the core count) and only then reads its body; the others wait without
/// reading, their bytes held back by TCP flow control (and by <c>Expect: 100-continue</c>, which Kestrel answers only
/// when the body is read). A slot is held until the request is answered, so at most <see cref="Slots"/> bodies are in
/// memory at a time.
/// </para>
/// <para>
/// A client that stops sending cannot keep a slot: every read of the body must bring data within
/// <see cref="ReadTimeout"/>, or the request is answered 408 and the slot freed. Body buffers are rented from a pool of
/// at most <see cref="Slots"/> arrays (enough for every slot), emptied when the server falls idle
/// (<see cref="Trim"/>), so a burst's buffers are reused within it and given back after it.
/// </para>
/// </summary>
internal sealed class RequestBodyGate : IDisposable
{
    /// <summary>Bodies below this size are plain small allocations (the GC's gen-0 handles those cheaply).</summary>
    private const int PooledFrom = 64 << 10;

    // Pooled arrays are rounded up to whole megabytes, so bodies of about the same size share a buffer.
    private const int Granule = 1 << 20;

    private readonly SemaphoreSlim slots;
    private readonly List<byte[]> kept = [];

    /// <param name="slots">Bodies read or held at once.</param>
    /// <param name="readTimeout">Longest wait for the next bytes of a body that is being read.</param>
    public RequestBodyGate(int slots, TimeSpan readTimeout)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(slots, 1);
        Slots = slots;
        ReadTimeout = readTimeout;
        this.slots = new SemaphoreSlim(slots, slots);
    }

    /// <summary>The running requests plus a read-ahead of half the cores (at least one).</summary>
    public static int DefaultSlots(int modelConcurrency) => modelConcurrency + Math.Max(1, Environment.ProcessorCount / 2);

    /// <summary>Default for <see cref="ReadTimeout"/>.</summary>
    public static readonly TimeSpan DefaultReadTimeout = TimeSpan.FromSeconds(10);

    public int Slots { get; }

    public TimeSpan ReadTimeout { get; }

    /// <summary>Bodies being read or held right now.</summary>
    public int Busy => Slots - slots.CurrentCount;

    /// <summary>Arrays kept in the pool right now (tests: the pool is bounded and trimmed).</summary>
    public int Kept
    {
        get { lock (kept) return kept.Count; }
    }

    /// <summary>Waits (without a thread) for a body slot; dispose the lease when the request is answered.</summary>
    public async Task<IDisposable> EnterAsync(CancellationToken cancel)
    {
        await slots.WaitAsync(cancel);
        return new Lease(slots);
    }

    /// <summary>A buffer of at least <paramref name="length"/> bytes (zeros beyond what the caller writes).</summary>
    public byte[] Rent(int length)
    {
        if (length < PooledFrom) return new byte[length];
        lock (kept)
        {
            // The smallest kept array that fits.
            int best = -1;
            for (int i = 0; i < kept.Count; i++)
                if (kept[i].Length >= length && (best < 0 || kept[i].Length < kept[best].Length)) best = i;
            if (best >= 0)
            {
                var array = kept[best];
                kept.RemoveAt(best);
                return array;
            }
        }
        long rounded = ((long)length + Granule - 1) / Granule * Granule;
        return new byte[Math.Min(rounded, Array.MaxLength)];
    }

    /// <summary>
    /// Gives a buffer back after its body was parsed. Its first <paramref name="used"/> bytes are cleared, so no
    /// request's bytes outlive it in memory that a later request is handed; beyond <see cref="Slots"/> kept arrays,
    /// the smallest is left to the GC.
    /// </summary>
    public void Return(byte[] array, int used)
    {
        if (array.Length < PooledFrom) return;
        Array.Clear(array, 0, Math.Min(used, array.Length));
        lock (kept)
        {
            kept.Add(array);
            if (kept.Count > Slots) kept.Remove(kept.MinBy(a => a.Length)!);
        }
    }

    /// <summary>Drops every kept buffer (the server is idle; the GC gives the memory back).</summary>
    public void Trim()
    {
        lock (kept) kept.Clear();
    }

    public void Dispose() => slots.Dispose();

    private sealed class Lease(SemaphoreSlim slots) : IDisposable
    {
        private int released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref released, 1) == 0) slots.Release();
        }
    }
}

/// <summary>A request body that stopped arriving (HTTP 408; the connection is closed after the answer).</summary>
internal sealed class RequestTimeoutException(string message) : Exception(message);

/// <summary>
/// A request body read under a deadline per read: each read must bring bytes within the timeout, else it fails with
/// <see cref="RequestTimeoutException"/> saying how much had arrived. Installed only while a body slot is held.
/// </summary>
internal sealed class StallGuardStream(Stream inner, TimeSpan timeout, long? declaredLength) : Stream
{
    private long received;

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancel = default)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        deadline.CancelAfter(timeout);
        try
        {
            int read = await inner.ReadAsync(buffer, deadline.Token);
            received += read;
            return read;
        }
        catch (OperationCanceledException) when (!cancel.IsCancellationRequested)
        {
            string of = declaredLength is long total ? $" of {total}" : "";
            throw new RequestTimeoutException(
                $"the request body stopped arriving: no data for {timeout.TotalSeconds:0.#} s after {received}{of} bytes");
        }
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancel) =>
        ReadAsync(buffer.AsMemory(offset, count), cancel).AsTask();

    // Kestrel refuses synchronous body reads; so does this stream.
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException("request bodies are read asynchronously");

    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
