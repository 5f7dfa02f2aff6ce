using ManagedClip.Model;

namespace ManagedClip.Tests.Model;

public class ActivationArenaTests
{
    [Fact]
    public unsafe void SlicesStartOnCacheLinesAndDoNotOverlap()
    {
        int[] sizes = [197 * 768, 5, 197 * 2304, 1, 3, 197 * 3072, 17, 768];
        using var arena = new ActivationArena(sizes.Sum(), "test");
        var previousEnd = (nint)0;
        foreach (int size in sizes)
        {
            var slice = arena.Take(size);
            fixed (float* start = slice)
            {
                Assert.Equal(0, (nint)start % 64);
                Assert.True((nint)start >= previousEnd, "a slice overlaps the one before");
                previousEnd = (nint)(start + size);
            }
            slice.Fill(1f); // the whole slice is usable
        }
    }

    [Fact]
    public void TakingMoreThanWasAskedForIsABug()
    {
        using var arena = new ActivationArena(100, "test");
        arena.Take(60);
        Assert.Throws<InvalidOperationException>(() => arena.Take(100));
    }

    [Fact]
    public void AnOversizedPassNamesWhatItWas()
    {
        var error = Assert.Throws<ArgumentException>(() => new ActivationArena(Array.MaxLength, "VisionTransformer.Forward"));
        Assert.Contains("VisionTransformer.Forward", error.Message);
    }
}
