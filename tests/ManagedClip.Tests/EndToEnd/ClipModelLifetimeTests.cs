namespace ManagedClip.Tests.EndToEnd;

/// <summary>
/// The towers read their heads and the word embeddings in place from the memory-mapped checkpoint, so a disposed
/// model must refuse calls rather than touch the released mapping (which would crash the process, not throw).
/// </summary>
public class ClipModelLifetimeTests
{
    [Fact]
    public void CallsAfterDisposeThrowObjectDisposedException()
    {
        var model = ClipModel.Load(TestModels.TinyDirectory);
        Assert.Equal(TestModels.Tiny.EmbedText("a chest x-ray"), model.EmbedText("a chest x-ray"));
        model.Dispose();
        model.Dispose(); // a second Dispose is harmless
        Assert.Throws<ObjectDisposedException>(() => model.EmbedText("a chest x-ray"));
        Assert.Throws<ObjectDisposedException>(() => model.EmbedImages([ImageInput.FromFile(TestData.PathOf("images", "cell.png"))]));
    }

    [Fact]
    public async Task DisposeDuringALoopOfCallsEndsItCleanly()
    {
        var model = ClipModel.Load(TestModels.TinyDirectory);
        using var firstDone = new ManualResetEventSlim();
        int completed = 0;
        var caller = Task.Run(() =>
        {
            // Embeds until the model is disposed; every call completes, is refused up front, or stops between passes.
            while (true)
            {
                try
                {
                    model.EmbedTexts(["a chest x-ray", "an MRI of the knee"]);
                }
                catch (ObjectDisposedException)
                {
                    return;
                }
                completed++;
                firstDone.Set();
            }
        });
        Assert.True(firstDone.Wait(TimeSpan.FromSeconds(30)));
        model.Dispose(); // returns at once; the mapping is released when the call in flight has stopped
        await caller.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.True(completed >= 1);
    }
}
