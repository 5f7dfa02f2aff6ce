using System.Diagnostics;
using System.Runtime;

namespace ManagedClip.Cli;

/// <summary>
/// Bounds the server's model work: at most <see cref="Concurrency"/> requests run the model at once (each call
/// already uses every core), at most <see cref="Capacity"/> requests are admitted in all (running, waiting, or
/// reading their body), and the rest are turned away at once with a retry estimate instead of piling up threads and
/// request bodies. Waiting is asynchronous, so waiting requests hold no thread and <c>/healthz</c> stays responsive.
/// When the server falls idle after work, the memory the burst used is given back to the operating system.
/// </summary>
internal sealed class ModelWorkQueue : IDisposable
{
    /// <summary>Requests admitted at once by default (one running, the rest waiting).</summary>
    public const int DefaultCapacity = 16;

    // How long the queue must stay idle before the heap is compacted and returned (a burst usually has gaps).
    private static readonly TimeSpan IdleBeforeTrim = TimeSpan.FromSeconds(2);

    private readonly SemaphoreSlim running;
    private readonly Timer trimTimer;
    private readonly object gate = new();
    private readonly Action? onIdle;
    private int admitted;
    private double averageSeconds = 0.5; // running mean of one request's model time, for Retry-After
    private bool workSinceTrim;

    /// <param name="onIdle">Run when the queue has fallen idle after work, before the heap is compacted (e.g. to drop
    /// pooled request buffers, so the compaction can give their memory back).</param>
    public ModelWorkQueue(int concurrency = 1, int capacity = DefaultCapacity, Action? onIdle = null)
    {
        this.onIdle = onIdle;
        ArgumentOutOfRangeException.ThrowIfLessThan(concurrency, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, concurrency);
        Concurrency = concurrency;
        Capacity = capacity;
        running = new SemaphoreSlim(concurrency, concurrency);
        trimTimer = new Timer(_ => TrimIfIdle(), null, Timeout.Infinite, Timeout.Infinite);
    }

    /// <summary>Requests that may run the model at the same time.</summary>
    public int Concurrency { get; }

    /// <summary>Requests admitted at once (running + waiting).</summary>
    public int Capacity { get; }

    /// <summary>Requests admitted right now.</summary>
    public int Admitted => Volatile.Read(ref admitted);

    /// <summary>
    /// Admits one request, or returns null when <see cref="Capacity"/> requests are already in: the caller answers
    /// 503 with <paramref name="retryAfterSeconds"/>.
    /// </summary>
    public Ticket? TryAdmit(out int retryAfterSeconds)
    {
        lock (gate)
        {
            if (admitted >= Capacity)
            {
                // Everyone admitted must finish first, Concurrency at a time.
                retryAfterSeconds = (int)Math.Clamp(Math.Ceiling(averageSeconds * admitted / Concurrency), 1, 3600);
                return null;
            }
            admitted++;
            trimTimer.Change(Timeout.Infinite, Timeout.Infinite);
            retryAfterSeconds = 0;
            return new Ticket(this);
        }
    }

    /// <summary>An admitted request: <see cref="RunAsync{T}"/> its model work, then dispose to leave.</summary>
    public sealed class Ticket(ModelWorkQueue queue) : IDisposable
    {
        private bool left;

        /// <summary>
        /// Waits for a model slot (without holding a thread), then runs <paramref name="work"/> on a thread of its own,
        /// so the thread pool stays free to answer other requests (and /healthz) at once.
        /// </summary>
        public async Task<T> RunAsync<T>(Func<T> work, CancellationToken cancel)
        {
            await queue.running.WaitAsync(cancel);
            try
            {
                var clock = Stopwatch.StartNew();
                var result = await Task.Factory.StartNew(work, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
                queue.Record(clock.Elapsed.TotalSeconds);
                return result;
            }
            finally
            {
                queue.running.Release();
            }
        }

        public void Dispose()
        {
            if (left) return;
            left = true;
            queue.Leave();
        }
    }

    private void Record(double seconds)
    {
        lock (gate)
        {
            averageSeconds = 0.8 * averageSeconds + 0.2 * seconds;
            workSinceTrim = true;
        }
    }

    private void Leave()
    {
        lock (gate)
        {
            if (--admitted == 0 && workSinceTrim) trimTimer.Change(IdleBeforeTrim, Timeout.InfiniteTimeSpan);
        }
    }

    /// <summary>
    /// After a burst the heap keeps the size the burst needed (request bodies, decoded images, activations). Once the
    /// queue is idle, release ImageSharp's pooled buffers and run one compacting collection that decommits free
    /// memory, so the process returns to about its steady size.
    /// </summary>
    private void TrimIfIdle()
    {
        lock (gate)
        {
            if (admitted > 0 || !workSinceTrim) return;
            workSinceTrim = false;
        }
        onIdle?.Invoke();
        ManagedClip.Imaging.ImageDecoding.ReleaseRetainedMemory();
        GCSettings.LargeObjectHeapCompactionMode = GCLargeObjectHeapCompactionMode.CompactOnce;
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
    }

    public void Dispose()
    {
        trimTimer.Dispose();
        running.Dispose();
    }
}
