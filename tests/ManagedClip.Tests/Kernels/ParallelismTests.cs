using ManagedClip.Kernels;

namespace ManagedClip.Tests.Kernels;

public class ParallelismTests
{
    [Fact]
    public void EveryIndexRunsExactlyOnce()
    {
        var hits = new int[1000];
        Parallelism.For(hits.Length, i => Interlocked.Increment(ref hits[i]));
        Assert.All(hits, h => Assert.Equal(1, h));
    }

    [Fact]
    public void NestedAndConcurrentLoopsComplete()
    {
        // A loop inside a loop body, and loops from several threads at once, run (serially where the pool is
        // taken) instead of deadlocking.
        var hits = new int[4 * 50];
        var threads = Enumerable.Range(0, 4).Select(t => new Thread(() =>
            Parallelism.For(10, outer => Parallelism.For(5, inner => Interlocked.Increment(ref hits[t * 50 + outer * 5 + inner]))))).ToList();
        threads.ForEach(t => t.Start());
        Assert.All(threads, t => Assert.True(t.Join(TimeSpan.FromSeconds(30))));
        Assert.All(hits, h => Assert.Equal(1, h));
    }

    [Fact]
    public void TheFirstExceptionReachesTheCaller()
    {
        var error = Assert.Throws<InvalidOperationException>(() =>
            Parallelism.For(100, i => { if (i == 37) throw new InvalidOperationException("index 37"); }));
        Assert.Equal("index 37", error.Message);
        // The pool is usable afterwards.
        int count = 0;
        Parallelism.For(100, _ => Interlocked.Increment(ref count));
        Assert.Equal(100, count);
    }

    [Fact]
    public void MaxDegreeRejectsZero() => Assert.Throws<ArgumentOutOfRangeException>(() => Parallelism.MaxDegree = 0);
}
