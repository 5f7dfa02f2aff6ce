using System.Runtime.ExceptionServices;

namespace ManagedClip.Kernels;

/// <summary>
/// The one place kernels go parallel. <see cref="MaxDegree"/> = 1 runs everything on the calling thread,
/// which makes profiles and debugging readable.
/// </summary>
/// <remarks>
/// A forward pass runs a few hundred parallel loops of 0.1–10 ms each, so the loops use a small pool of
/// dedicated threads rather than <see cref="Parallel"/>: starting one costs two semaphore signals and allocates
/// nothing. One loop runs at a time; a loop started while another is running (from a second thread, or nested
/// inside a loop body) runs on its calling thread alone.
/// </remarks>
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
    /// <remarks>Indices are handed out one at a time, so uneven bodies still balance. The first exception thrown
    /// by a body is rethrown here after every worker has stopped.</remarks>
    public static void For(int count, Action<int> body)
    {
        ArgumentNullException.ThrowIfNull(body);
        if (count <= 0) return;
        int helpers = Math.Min(maxDegree, count) - 1;
        if (helpers > 0 && WorkerPool.TryRun(count, body, helpers)) return;
        for (int i = 0; i < count; i++) body(i);
    }

    /// <summary>Background threads that help the calling thread through one loop at a time.</summary>
    private static class WorkerPool
    {
        private static int busy; // 1 while a loop owns the pool
        private static SemaphoreSlim[] wakeSignals = [];
        private static readonly SemaphoreSlim helpersFinished = new(0); // released by the last helper to finish

        // The loop being run. Written before the helpers are woken; the semaphore release publishes them.
        private static Action<int>? loopBody;
        private static int loopCount;
        private static int nextIndex;
        private static int helpersRunning;
        private static Exception? firstFailure;

        public static bool TryRun(int count, Action<int> body, int helpers)
        {
            if (Interlocked.CompareExchange(ref busy, 1, 0) != 0) return false;
            try
            {
                EnsureHelpers(helpers);
                loopBody = body;
                loopCount = count;
                nextIndex = 0;
                firstFailure = null;
                helpersRunning = helpers;
                for (int h = 0; h < helpers; h++) wakeSignals[h].Release();

                RunIndices();
                helpersFinished.Wait();

                loopBody = null;
                if (firstFailure is { } failure) ExceptionDispatchInfo.Throw(failure);
                return true;
            }
            finally
            {
                Volatile.Write(ref busy, 0);
            }
        }

        /// <summary>Takes indices until none are left; the caller and every helper run this.</summary>
        private static void RunIndices()
        {
            var body = loopBody!;
            int count = loopCount;
            try
            {
                for (int i = Interlocked.Increment(ref nextIndex) - 1; i < count; i = Interlocked.Increment(ref nextIndex) - 1)
                    body(i);
            }
            catch (Exception e)
            {
                Interlocked.CompareExchange(ref firstFailure, e, null);
                Volatile.Write(ref nextIndex, count); // the others stop after their current index
            }
        }

        private static void EnsureHelpers(int helpers)
        {
            if (wakeSignals.Length >= helpers) return;
            var signals = new SemaphoreSlim[helpers];
            wakeSignals.CopyTo(signals, 0);
            for (int h = wakeSignals.Length; h < helpers; h++)
            {
                var signal = signals[h] = new SemaphoreSlim(0);
                new Thread(() => HelperLoop(signal)) { IsBackground = true, Name = $"ManagedClip kernel worker {h + 1}" }.Start();
            }
            wakeSignals = signals;
        }

        private static void HelperLoop(SemaphoreSlim wakeSignal)
        {
            while (true)
            {
                wakeSignal.Wait();
                RunIndices();
                if (Interlocked.Decrement(ref helpersRunning) == 0) helpersFinished.Release();
            }
        }
    }
}
