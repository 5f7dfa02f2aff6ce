using System.Runtime.InteropServices;
using System.Security.Cryptography;
using ManagedClip.Retrieval;
using ManagedClip.Tests.EndToEnd;
using ManagedClip.Tests.IO;

namespace ManagedClip.Tests.Retrieval;

/// <summary>
/// The index's embedding stage (<see cref="EmbeddingPipeline"/>): input order, the sequential path's bits, error rows
/// in the middle of a pass, a slow file not holding back the others, and the bound on work started ahead.
/// </summary>
public class EmbeddingPipelineTests
{
    private static ClipModel Tiny => TestModels.Tiny;

    // Generous: these tests wait for the tiny model's passes on a loaded machine, never for a speed.
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    /// <summary>30 PNGs, with a corrupt file at 10 and an empty file at 15 (error rows inside a pass of eight).</summary>
    private static List<string> Folder(TempFolder folder, int count = 30)
    {
        var images = Path.Combine(folder.Path, "images");
        var relative = RetrievalFixtures.WriteImages(images, count, seed: 31);
        var paths = relative.Select(r => Path.Combine(images, r)).ToList();
        if (count > 15)
        {
            File.WriteAllBytes(paths[10], File.ReadAllBytes(paths[10])[..40]); // a PNG cut short
            File.WriteAllBytes(paths[15], []);
        }
        return paths;
    }

    [Fact]
    public void ResultsComeInInputOrderWithTheSequentialBitsHashesAndErrors()
    {
        using var folder = new TempFolder();
        var paths = Folder(folder);
        var results = new EmbeddingPipeline(Tiny, paths).Run(CancellationToken.None).ToList();

        // What the model's own sequential path gives for each file, one at a time.
        var expected = Tiny.EmbedImageStream(paths.Select(ImageInput.FromFile)).ToList();
        Assert.Equal(Enumerable.Range(0, paths.Count), results.Select(r => r.Index));
        for (int i = 0; i < paths.Count; i++)
        {
            var result = results[i];
            Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(paths[i]))), result.Sha256);
            if (i is 10 or 15)
            {
                Assert.Null(result.Embedding);
                Assert.Equal(expected[i].Error, result.Error); // the same one-line error as before, naming the file
                Assert.Contains(paths[i], result.Error);
                continue;
            }
            Assert.Null(result.Error);
            Assert.True(MemoryMarshal.AsBytes(Tiny.EmbedImage(paths[i]).AsSpan()).SequenceEqual(MemoryMarshal.AsBytes(result.Embedding.AsSpan())),
                $"{paths[i]}: the pipeline's embedding differs from EmbedImage's");
        }
    }

    [Fact]
    public async Task ASlowFileHoldsBackOnlyItsOwnRow()
    {
        using var folder = new TempFolder();
        var paths = Folder(folder);
        using var slowFile = new ManualResetEventSlim();
        var pipeline = new EmbeddingPipeline(Tiny, paths) { BeforeDecode = i => { if (i == 3) slowFile.Wait(Patience); } };
        var consumer = Task.Run(() => pipeline.Run(CancellationToken.None).ToList());

        // While file 3 is still "decoding", the other readable files (30 - the slow one - the two that cannot be
        // decoded = 27) go through the tower in full passes: 3 passes of 8. The last 3 wait for the pass the slow file
        // will complete. (Passes of eight in input order, as before, would have stopped at the first pass.)
        Assert.True(SpinWait.SpinUntil(() => pipeline.ImagesEmbedded == 24, Patience), $"only {pipeline.ImagesEmbedded} of 24 embedded while file 3 was slow");
        Assert.False(consumer.IsCompleted);
        slowFile.Set();

        var results = await consumer;
        Assert.Equal(Enumerable.Range(0, paths.Count), results.Select(r => r.Index));
        Assert.Equal(Tiny.EmbedImage(paths[3]), results[3].Embedding);
        Assert.Equal(28, pipeline.ImagesEmbedded);
    }

    [Fact]
    public async Task AStuckFileStopsTheWorkersAtTheWindow()
    {
        using var folder = new TempFolder();
        var paths = Folder(folder, count: 40);
        using var stuckFile = new ManualResetEventSlim();
        // Window 20 with one pass of 8 ahead (16 slots, 2 workers): at most 20 files are started past the oldest
        // row not yet returned, here file 0, which does not finish until released.
        var pipeline = new EmbeddingPipeline(Tiny, paths, passesAhead: 1, window: 20, workers: 2)
        {
            BeforeDecode = i => { if (i == 0) stuckFile.Wait(Patience); },
        };
        var consumer = Task.Run(() => pipeline.Run(CancellationToken.None).ToList());

        // Files 1–16 make two passes; 17–19 wait in their slots for a pass that cannot fill; nothing past 19 starts.
        Assert.True(SpinWait.SpinUntil(() => pipeline.ImagesEmbedded == 16, Patience), $"{pipeline.ImagesEmbedded} embedded, expected 16");
        Thread.Sleep(300); // time for a worker that ignores the window to start file 20
        Assert.Equal(20, pipeline.LargestLead);
        Assert.Equal(16, pipeline.ImagesEmbedded);
        stuckFile.Set();

        var results = await consumer;
        Assert.Equal(Enumerable.Range(0, paths.Count), results.Select(r => r.Index));
        Assert.Equal(40 - 2, results.Count(r => r.Embedding != null));
        Assert.InRange(pipeline.LargestLead, 1, 20);
    }

    [Fact]
    public void AFailureOutsideTheDecodersStopsTheRunWithItsOwnException()
    {
        using var folder = new TempFolder();
        var paths = Folder(folder, count: 12);
        var pipeline = new EmbeddingPipeline(Tiny, paths) { BeforeDecode = i => { if (i == 5) throw new InsufficientExecutionStackException("worker broke"); } };
        var error = Assert.Throws<InsufficientExecutionStackException>(() => pipeline.Run(CancellationToken.None).ToList());
        Assert.Equal("worker broke", error.Message);
    }

    [Fact]
    public void StoppingEarlyStopsTheWorkers()
    {
        using var folder = new TempFolder();
        var paths = Folder(folder);
        int decoded = 0;
        var pipeline = new EmbeddingPipeline(Tiny, paths, passesAhead: 1, window: 18, workers: 2) { BeforeDecode = _ => Interlocked.Increment(ref decoded) };
        using var cancel = new CancellationTokenSource();
        int seen = 0;
        Assert.Throws<OperationCanceledException>(() =>
        {
            foreach (var _ in pipeline.Run(cancel.Token))
                if (++seen == 3) cancel.Cancel();
        });
        int afterStop = Volatile.Read(ref decoded);
        Thread.Sleep(200);
        Assert.Equal(afterStop, Volatile.Read(ref decoded)); // the workers were joined: none is still taking files
        // Cancellation is checked before each pass, so rows already finished after the third are still handed out
        // (`seen` counts them all); no file was started more than the window (18) past the last row handed out.
        Assert.InRange(seen, 3, paths.Count - 1);
        Assert.InRange(afterStop, seen, seen + 18);
    }

    [Fact]
    public void IndexErrorRowsInTheMiddleOfAPassKeepTheirPlaceAndHash()
    {
        using var folder = new TempFolder();
        var paths = Folder(folder);
        var images = Path.Combine(folder.Path, "images");
        var index = folder.File("index");
        using (var run = ImageIndex.Open(Tiny, images, index, new IndexOptions { ChunkImages = 7 }))
            run.RunToEnd();

        var rows = RetrievalFixtures.ReadLiveRows(index);
        var expected = Tiny.EmbedImageStream(paths.Select(ImageInput.FromFile)).ToList();
        Assert.Equal(paths.Count, rows.Count);
        for (int i = 0; i < paths.Count; i++)
        {
            string relative = Path.GetRelativePath(images, paths[i]).Replace('\\', '/');
            var (row, vector) = rows[relative];
            Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(paths[i]))), row.Sha256);
            if (expected[i].Error is { } error)
            {
                Assert.Equal(error.Replace(paths[i], relative, StringComparison.Ordinal), row.Error);
                Assert.All(vector, b => Assert.Equal(0, b)); // an error row holds zeros
            }
            else
            {
                Assert.Null(row.Error);
                Assert.True(MemoryMarshal.AsBytes(expected[i].Embedding.AsSpan()).SequenceEqual(vector), $"{relative}: the row differs from EmbedImageStream's");
            }
        }
    }
}
