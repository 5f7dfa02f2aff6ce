using System.Diagnostics;
using System.Runtime.ExceptionServices;

namespace ManagedClip.Kernels;

/// <summary>
/// The one place kernels go parallel. <see cref="MaxDegree"/> = 1 runs everything on the calling thread,
/// which makes profiles and debugging readable.
/// </summary>
/// <remarks>
/// The degree a loop uses is the calling thread's: a <see cref="DegreeScope"/> (which <c>ClipModel</c> opens around
/// each forward pass with its <c>ClipModelOptions.Threads</c>) sets it for one thread until disposed, and otherwise the
/// process-wide default applies. A forward pass runs on one thread from its first kernel to its last, so a thread-local
/// setting reaches every kernel of the pass without being passed through the towers' signatures.
/// </remarks>
/// <remarks>
/// An image pass runs about 80 parallel loops of 0.05–5 ms each (GEMMs, attention, LayerNorms), separated by short
/// serial steps, so the loops use a small pool of dedicated threads rather than <see cref="Parallel"/>: starting one
/// allocates nothing, and an idle helper spins until a millisecond after the last loop ended before it sleeps,
/// because waking a sleeping thread takes tens of microseconds on a virtual machine, more than many loops last. One loop
/// runs at a time; a loop started while another is running (from a second thread, or nested inside a loop body)
/// runs on its calling thread alone.
/// </remarks>
internal static class Parallelism
{
    private static int defaultDegree = Environment.ProcessorCount;

    [ThreadStatic] private static int scopedDegree; // 0: no scope open on this thread

    /// <summary>
    /// Worker count the kernels use on this thread: the innermost open <see cref="DegreeScope"/>'s, else the
    /// process-wide default (all cores). Setting it changes the default; an open scope still wins on its thread.
    /// </summary>
    public static int MaxDegree
    {
        get => scopedDegree > 0 ? scopedDegree : defaultDegree;
        set => defaultDegree = value >= 1 ? value : throw new ArgumentOutOfRangeException(nameof(value), "must be at least 1");
    }

    /// <summary>Runs this thread's kernels on at most <paramref name="degree"/> workers until the scope is disposed
    /// (0 or less: leave this thread's degree as it is).</summary>
    internal static DegreeScope WithDegree(int degree) => new(degree);

    /// <summary>A thread's worker count for a stretch of code; restores the previous one when disposed.</summary>
    internal readonly struct DegreeScope : IDisposable
    {
        private readonly int previous;

        public DegreeScope(int degree)
        {
            previous = scopedDegree;
            if (degree > 0) scopedDegree = degree;
        }

        public void Dispose() => scopedDegree = previous;
    }

    /// <summary>Runs <paramref name="body"/> for every index in [0, count), split across at most MaxDegree workers.</summary>
    /// <remarks>Indices are handed out one at a time, so uneven bodies still balance. The first exception thrown
    /// by a body is rethrown here after every worker has stopped.</remarks>
    public static void For(int count, Action<int> body) => For(count, body, MaxDegree);

    /// <summary>As the public overload, on at most <paramref name="degree"/> workers.</summary>
    internal static void For(int count, Action<int> body, int degree)
    {
        ArgumentNullException.ThrowIfNull(body);
        if (count <= 0) return;
        int helpers = Math.Min(degree, count) - 1;
        if (helpers > 0 && WorkerPool.TryRun(count, body, helpers)) return;
        for (int i = 0; i < count; i++) body(i);
    }

    /// <summary>
    /// Runs <c>body.Run(i)</c> for every index in [0, count) on at most <paramref name="degree"/> workers (0: MaxDegree).
    /// The kernels' form of <see cref="For(int, Action{int})"/>: <typeparamref name="TBody"/> is a struct holding
    /// one call's operands, so a parallel call allocates nothing once this thread has run one with that body type.
    /// </summary>
    internal static void For<TBody>(int count, in TBody body, int degree = 0) where TBody : struct, IParallelBody
    {
        if (degree <= 0) degree = MaxDegree;
        if (degree == 1 || count <= 1)
        {
            for (int i = 0; i < count; i++) body.Run(i);
            return;
        }
        var runner = BodyRunner<TBody>.ForThisThread();
        runner.Body = body;
        try
        {
            For(count, runner.RunIndex, degree);
        }
        finally
        {
            runner.Body = default;
            runner.InUse = false;
        }
    }

    /// <summary>One parallel call's work: a struct of operands (pinned pointers) and the code for index i.</summary>
    internal interface IParallelBody
    {
        void Run(int index);
    }

    /// <summary>The delegate the worker pool calls, bound once per thread and body type.</summary>
    private sealed class BodyRunner<TBody> where TBody : struct, IParallelBody
    {
        [ThreadStatic] private static BodyRunner<TBody>? cached;

        public TBody Body;
        public bool InUse;
        public readonly Action<int> RunIndex;

        private BodyRunner() => RunIndex = i => Body.Run(i);

        /// <summary>This thread's runner; a new one only if it is already in use (a loop nested in its own body).</summary>
        public static BodyRunner<TBody> ForThisThread()
        {
            var runner = cached is { InUse: false } free ? free : cached = new BodyRunner<TBody>();
            runner.InUse = true;
            return runner;
        }
    }

    /// <summary>Creates the helper threads now rather than in the first loop, whichever thread runs it (the tests
    /// that check steady-state calls allocate nothing start from here).</summary>
    internal static void StartWorkers()
    {
        int helpers = MaxDegree - 1;
        if (helpers < 1) return;
        while (!WorkerPool.TryRun(helpers + 1, static _ => { }, helpers)) Thread.Yield(); // the pool may be busy
    }

    /// <summary>Background threads that help the calling thread through one loop at a time.</summary>
    private static class WorkerPool
    {
        private static readonly TimeSpan SpinBeforeSleeping = TimeSpan.FromMilliseconds(1);

        private static int busy; // 1 while a loop owns the pool
        private static Helper[] helpers = [];

        // The loop being run. Written before `generation` is bumped; helpers read them after seeing the bump.
        private static int generation;
        private static Action<int>? loopBody;
        private static int loopCount;
        private static int loopHelpers;
        private static int nextIndex;
        private static int helpersRunning;
        private static Exception? firstFailure;

        private sealed class Helper
        {
            public readonly SemaphoreSlim WakeSignal = new(0);
            public int Sleeping; // 1 while the helper is (about to be) blocked on WakeSignal
        }

        public static bool TryRun(int count, Action<int> body, int helperCount)
        {
            if (Interlocked.CompareExchange(ref busy, 1, 0) != 0) return false;
            try
            {
                EnsureHelpers(helperCount);
                loopBody = body;
                loopCount = count;
                loopHelpers = helperCount;
                nextIndex = 0;
                firstFailure = null;
                helpersRunning = helperCount;
                Interlocked.Increment(ref generation); // publishes the fields above
                for (int h = 0; h < helperCount; h++)
                    if (Interlocked.Exchange(ref helpers[h].Sleeping, 0) == 1) helpers[h].WakeSignal.Release();

                RunIndices();
                // The helpers are at most one index behind; wait for them without sleeping.
                var spinner = new SpinWait();
                while (Volatile.Read(ref helpersRunning) != 0) spinner.SpinOnce(sleep1Threshold: -1);

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

        private static void EnsureHelpers(int count)
        {
            if (helpers.Length >= count) return;
            var grown = new Helper[count];
            helpers.CopyTo(grown, 0);
            for (int h = helpers.Length; h < count; h++)
            {
                var helper = grown[h] = new Helper();
                int index = h, seen = generation;
                new Thread(() => HelperLoop(helper, index, seen)) { IsBackground = true, Name = $"ManagedClip kernel worker {h + 1}" }.Start();
            }
            helpers = grown;
        }

        private static void HelperLoop(Helper helper, int index, int seen)
        {
            while (true)
            {
                WaitForNextLoop(helper, seen);
                seen = Volatile.Read(ref generation);
                if (index >= loopHelpers) continue; // this loop needs fewer helpers
                RunIndices();
                Interlocked.Decrement(ref helpersRunning);
            }
        }

        /// <summary>Spins until the generation moves past <paramref name="seen"/>, sleeping if that takes long.</summary>
        private static void WaitForNextLoop(Helper helper, int seen)
        {
            long spinStart = Stopwatch.GetTimestamp();
            while (Volatile.Read(ref generation) == seen)
            {
                // While the loop this helper ran out of work in is still finishing on other threads, the next loop
                // is at most one task away: keep spinning, and count the idle time from the loop's end.
                if (Volatile.Read(ref busy) == 1) spinStart = Stopwatch.GetTimestamp();
                if (Stopwatch.GetElapsedTime(spinStart) < SpinBeforeSleeping)
                {
                    Thread.SpinWait(20);
                    continue;
                }
                // Announce the sleep, then re-check: the caller bumps the generation before it reads Sleeping, so
                // either we see the new generation here or it sees Sleeping = 1 and releases the signal.
                Interlocked.Exchange(ref helper.Sleeping, 1);
                if (Volatile.Read(ref generation) == seen) helper.WakeSignal.Wait();
                Interlocked.Exchange(ref helper.Sleeping, 0);
                spinStart = Stopwatch.GetTimestamp();
            }
        }
    }
}
