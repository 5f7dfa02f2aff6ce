using System.Diagnostics;
using ManagedClip.Kernels;
using ManagedClip.Model;
using ManagedClip.Tests.EndToEnd;

namespace ManagedClip.Tests.Api;

/// <summary>
/// The library's API shape on the tiny reference model: async forms give the sync forms' bits, cancellation stops a
/// call between passes, images come from streams with a bounded read, Dispose never waits, the thread count is the
/// model's own, and results print readably.
/// </summary>
public sealed class ClipModelApiTests
{
    private static string Image(string name) => TestData.PathOf("images", name);

    private static readonly string[] ImageNames = ["ihc.png", "cell.png", "gray.png", "rgba.png", "palette.png", "wide.png"];

    [Fact]
    public async Task AsyncMethodsGiveTheSyncMethodsBits()
    {
        var model = TestModels.Tiny;
        var images = ImageNames.Select(n => ImageInput.FromFile(Image(n))).ToArray();
        string[] texts = ["a chest x-ray", "this is a photo of adenocarcinoma histopathology", "Röntgen"];

        Assert.Equal(model.EmbedImages(images), await model.EmbedImagesAsync(images));
        Assert.Equal(model.EmbedTexts(texts), await model.EmbedTextsAsync(texts));
        Assert.Equal(model.EmbedTexts(texts, normalize: false), await model.EmbedTextsAsync(texts, normalize: false));
        var sync = model.Classify(images, texts);
        var async = await model.ClassifyAsync(images, texts);
        for (int i = 0; i < images.Length; i++)
        {
            Assert.Equal(sync[i].Probabilities, async[i].Probabilities);
            Assert.Equal(sync[i].Logits, async[i].Logits);
            Assert.Same(images[i], async[i].Image);
        }
    }

    [Fact]
    public async Task ACancelledTokenStopsTheCallBeforeAnyWork()
    {
        var model = TestModels.Tiny;
        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => model.EmbedTextsAsync(["a chest x-ray"], cancellationToken: cancelled.Token));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => model.EmbedImagesAsync([ImageInput.FromFile(Image("ihc.png"))], cancellationToken: cancelled.Token));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => model.ClassifyAsync([ImageInput.FromFile(Image("ihc.png"))], ["a", "b"], cancellationToken: cancelled.Token));
    }

    [Fact]
    public async Task CancellingDuringAnImageCallStopsItAtTheNextPass()
    {
        // Passes of 2 images. The list cancels the token when image 4 (the third pass's first) is taken for decoding,
        // which happens while pass 2 computes; the call must stop before pass 3 computes and never decode pass 4.
        using var model = ClipModel.Load(new ClipModelOptions { ModelDirectory = TestModels.TinyDirectory, ImagesPerPass = 2 });
        using var cancel = new CancellationTokenSource();
        var images = new WatchedList<ImageInput>(
            Enumerable.Range(0, 10).Select(i => ImageInput.FromFile(Image(ImageNames[i % ImageNames.Length]))).ToArray(),
            index => { if (index == 4) cancel.Cancel(); });
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => model.EmbedImagesAsync(images, cancellationToken: cancel.Token));
        Assert.True(images.HighestIndexRead <= 5, $"images up to index {images.HighestIndexRead} were read after the cancellation");
    }

    [Fact]
    public void CancellingDuringATextCallStopsItAtTheNextPass()
    {
        // One text per pass (TokensPerPass = 1 still takes a whole text). The hook cancels while pass 1 computes: the
        // pass finishes, the next one never starts.
        using var model = ClipModel.Load(new ClipModelOptions { ModelDirectory = TestModels.TinyDirectory, TokensPerPass = 1 });
        using var cancel = new CancellationTokenSource();
        var hook = new PassCounter("encoder.layer.0", onPass: _ => cancel.Cancel());
        using (ForwardHook.Install(hook))
            Assert.ThrowsAny<OperationCanceledException>(() => model.EmbedTexts(["one", "two", "three", "four"], true, cancel.Token));
        Assert.Equal(1, hook.Passes);
    }

    [Fact]
    public void StreamInputGivesTheFilesEmbedding()
    {
        var model = TestModels.Tiny;
        var path = Image("ihc.png");
        var bytes = File.ReadAllBytes(path);
        var fromFile = model.EmbedImages([ImageInput.FromFile(path)])[0];
        using var seekable = new MemoryStream(bytes);
        using var pipe = new ChunkedStream(bytes, chunk: 1000); // not seekable, short reads
        var fromStreams = model.EmbedImages([ImageInput.FromStream(seekable, "ihc.png"), ImageInput.FromStream(pipe, "upload")]);
        Assert.Equal(fromFile, fromStreams[0]);
        Assert.Equal(fromFile, fromStreams[1]);
    }

    [Fact]
    public async Task StreamInputAsyncGivesTheFilesEmbedding()
    {
        var path = Image("cell.png");
        await using var file = File.OpenRead(path);
        var input = await ImageInput.FromStreamAsync(new ChunkedStream(File.ReadAllBytes(path), chunk: 777), "cell.png");
        Assert.Equal(TestModels.Tiny.EmbedImage(path), (await TestModels.Tiny.EmbedImagesAsync([input]))[0]);
    }

    [Fact]
    public void AStreamLongerThanTheLimitIsRefusedWithoutReadingOn()
    {
        // An endless non-seekable stream: the read stops one byte past the limit.
        var endless = new EndlessStream();
        var error = Assert.Throws<InvalidDataException>(() => ImageInput.FromStream(endless, "upload.png", maxBytes: 100_000));
        Assert.Equal("upload.png: the image stream goes on past that, more than the 100,000-byte limit for an image read from a stream", error.Message);
        Assert.InRange(endless.BytesRead, 100_001, 100_001 + 64 * 1024);

        // A seekable stream says its length: refused unread.
        using var big = new MemoryStream(new byte[200_000]);
        error = Assert.Throws<InvalidDataException>(() => ImageInput.FromStream(big, "scan.dcm", maxBytes: 100_000));
        Assert.Contains("scan.dcm: the image stream is 200,000 bytes, more than the 100,000-byte limit", error.Message);
        Assert.Equal(0, big.Position);

        error = Assert.Throws<InvalidDataException>(() => ImageInput.FromStream(new MemoryStream(), "empty.png"));
        Assert.Contains("empty.png", error.Message);
        Assert.Contains("empty (0 bytes)", error.Message);
    }

    [Fact]
    public async Task DisposeReturnsAtOnceWhileACallRunsAndTheCallStopsAtItsNextPass()
    {
        var model = ClipModel.Load(new ClipModelOptions { ModelDirectory = TestModels.TinyDirectory, TokensPerPass = 1 });
        using var inPass = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        // The hook holds the first pass inside the text tower until released: a Dispose that waited would hang here.
        var hook = new PassCounter("encoder.layer.0", onPass: pass =>
        {
            inPass.Set();
            release.Wait();
        });
        var call = Task.Factory.StartNew(() =>
        {
            using (ForwardHook.Install(hook)) return model.EmbedTexts(["one", "two", "three"]);
        }, TaskCreationOptions.LongRunning);
        Assert.True(inPass.Wait(TimeSpan.FromSeconds(60)), "the call never reached the text tower");

        var clock = Stopwatch.StartNew();
        var dispose = Task.Run(model.Dispose);
        // Generous: Dispose takes a lock and sets a flag; the bound only separates "returned" from "waits for the call".
        await dispose.WaitAsync(TimeSpan.FromSeconds(10)); // TimeoutException: Dispose blocked while a call was running
        var disposed = model.DisposeAsync();
        Assert.False(disposed.IsCompleted, "the weights were released under a running call");
        Assert.Throws<ObjectDisposedException>(() => model.EmbedText("new call"));

        release.Set();
        var error = await Assert.ThrowsAsync<ObjectDisposedException>(() => call);
        Assert.Contains("was disposed while this call was running", error.Message);
        await disposed.AsTask().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(1, hook.Passes);
        Assert.True(clock.Elapsed < TimeSpan.FromMinutes(1));
    }

    [Fact]
    public async Task AStreamBeingEnumeratedStopsAtItsNextStepAfterDispose()
    {
        var model = ClipModel.Load(new ClipModelOptions { ModelDirectory = TestModels.TinyDirectory, ImagesPerPass = 1 });
        var images = Enumerable.Range(0, 4).Select(i => ImageInput.FromFile(Image(ImageNames[i]))).ToArray();
        using (var results = model.EmbedImageStream(images).GetEnumerator())
        {
            Assert.True(results.MoveNext());
            Assert.NotNull(results.Current.Embedding);
            model.Dispose(); // returns at once
            var released = model.DisposeAsync();
            Assert.False(released.IsCompleted, "the weights were released under a paused enumerator");
            Assert.Throws<ObjectDisposedException>(() => results.MoveNext());
            await released.AsTask().WaitAsync(TimeSpan.FromSeconds(30));
        }
    }

    [Fact]
    public async Task DisposeAsyncWithNoCallRunningCompletesAtOnce()
    {
        var model = ClipModel.Load(TestModels.TinyDirectory);
        await model.DisposeAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(30));
        await model.DisposeAsync(); // twice is harmless
        var error = await Assert.ThrowsAsync<ObjectDisposedException>(() => model.EmbedTextsAsync(["x"]));
        Assert.Contains("has been disposed", error.Message);
        Assert.DoesNotContain("\n", error.Message);
    }

    [Fact]
    public void ThreadsIsTheModelsOwnAndDoesNotChangeTheResult()
    {
        using var oneThread = ClipModel.Load(new ClipModelOptions { ModelDirectory = TestModels.TinyDirectory, Threads = 1 });
        int processDefault = Parallelism.MaxDegree;
        var seen = new List<int>();
        var hook = new PassCounter("encoder.layer.0", onPass: _ => seen.Add(Parallelism.MaxDegree));
        float[] single;
        using (ForwardHook.Install(hook)) single = oneThread.EmbedText("a chest x-ray");
        Assert.Equal([1], seen);
        Assert.Equal(processDefault, Parallelism.MaxDegree); // the scope ended with the pass
        // The GEMM splits rows and panels among workers, never a dot product, so the bits do not depend on the count.
        Assert.Equal(TestModels.Tiny.EmbedText("a chest x-ray"), single);
        Assert.Equal(TestModels.Tiny.EmbedImage(Image("ihc.png")), oneThread.EmbedImage(Image("ihc.png")));
    }

    [Theory]
    [InlineData(0, 8, 2048, "ClipModelOptions.Threads is 0; it must be between 1 and 1024 (or null for all cores)")]
    [InlineData(null, 0, 2048, "ClipModelOptions.ImagesPerPass is 0; it must be between 1 and 256")]
    [InlineData(null, 8, 100_000, "ClipModelOptions.TokensPerPass is 100000; it must be between 1 and 65536")]
    public void OptionsOutOfRangeAreRefusedWithOneLine(int? threads, int imagesPerPass, int tokensPerPass, string message)
    {
        var options = new ClipModelOptions { ModelDirectory = TestModels.TinyDirectory, Threads = threads, ImagesPerPass = imagesPerPass, TokensPerPass = tokensPerPass };
        Assert.Equal(message, Assert.Throws<ArgumentOutOfRangeException>(() => ClipModel.Load(options)).Message);
    }

    [Fact]
    public void SmallerPassesGiveTheSameBits()
    {
        // A row does not depend on the other rows of its pass, so the pass sizes change nothing but memory and speed.
        using var small = ClipModel.Load(new ClipModelOptions { ModelDirectory = TestModels.TinyDirectory, ImagesPerPass = 3, TokensPerPass = 5 });
        var images = ImageNames.Select(n => ImageInput.FromFile(Image(n))).ToArray();
        string[] texts = ["a chest x-ray", "this is a photo of adenocarcinoma histopathology", "bone"];
        Assert.Equal(TestModels.Tiny.EmbedImages(images), small.EmbedImages(images));
        Assert.Equal(TestModels.Tiny.EmbedTexts(texts), small.EmbedTexts(texts));
    }

    [Fact]
    public void ResultsPrintOnOneReadableLine()
    {
        var model = TestModels.Tiny;
        var input = ImageInput.FromFile(Image("ihc.png"));
        var embedding = model.EmbedImages([input])[0];
        var result = new ImageEmbeddingResult(input, embedding, null);
        Assert.Equal(embedding, result.Vector.ToArray());
        string expected = $"{input.Name}: [{embedding.Length}] " +
            string.Join(", ", embedding.Take(3).Select(v => v.ToString("0.0000", System.Globalization.CultureInfo.InvariantCulture))) + ", …";
        Assert.Equal(expected, result.ToString());
        Assert.Equal("bad.png: not an image", new ImageEmbeddingResult(ImageInput.FromBytes(new byte[1], "bad.png"), null, "bad.png: not an image").ToString());
        Assert.True(new ImageEmbeddingResult(input, null, "x").Vector.IsEmpty);

        var zeroShot = model.Classify([input], ["IHC", "H&E", "x-ray"])[0];
        var order = Enumerable.Range(0, 3).OrderByDescending(i => zeroShot.Probabilities[i]).ToArray();
        Assert.Equal(order, zeroShot.Ranking());
        Assert.Equal(zeroShot.Labels[order[0]], zeroShot.BestLabel);
        Assert.Equal($"{input.Name}: " + string.Join(", ", order.Select(i =>
            $"'{zeroShot.Labels[i]}' {zeroShot.Probabilities[i].ToString("0.000", System.Globalization.CultureInfo.InvariantCulture)}")), zeroShot.ToString());
        var many = model.Classify([input], Enumerable.Range(0, 7).Select(i => $"label {i}").ToArray())[0];
        Assert.EndsWith(", … (7 labels)", many.ToString());
    }

    [Fact]
    public void AStreamComputesOnlyTheImagesThatDecodedAndGivesEachItsOwnBits()
    {
        var model = TestModels.Tiny;
        using var folder = new ManagedClip.Tests.IO.TempFolder();
        string cut = Path.Combine(folder.Path, "cut.png");
        File.WriteAllBytes(cut, File.ReadAllBytes(Image("ihc.png"))[..40]); // a PNG cut short: cannot be decoded
        string[] mixed = [Image("ihc.png"), cut, Image("cell.png"), cut]; // one pass: the tiny model takes eight

        // Rows entering the tower (patch embeddings, [images · tokens, D]) for the mixed stream and for its two good
        // images alone: equal when a failed image takes no row in the pass.
        var mixedRows = new RowCounter(VisionTransformer.EmbeddingsStep);
        List<ImageEmbeddingResult> results;
        using (ForwardHook.Install(mixedRows)) results = model.EmbedImageStream(mixed.Select(ImageInput.FromFile)).ToList();
        var goodRows = new RowCounter(VisionTransformer.EmbeddingsStep);
        using (ForwardHook.Install(goodRows)) _ = model.EmbedImageStream([ImageInput.FromFile(mixed[0]), ImageInput.FromFile(mixed[2])]).ToList();
        Assert.True(goodRows.Rows > 0);
        Assert.Equal(goodRows.Rows, mixedRows.Rows);

        Assert.Equal(mixed.Length, results.Count);
        foreach (int i in new[] { 0, 2 })
        {
            Assert.Null(results[i].Error);
            Assert.Equal(model.EmbedImage(mixed[i]), results[i].Embedding); // the bits it has alone
        }
        foreach (int i in new[] { 1, 3 })
        {
            Assert.Null(results[i].Embedding);
            Assert.Contains("cut.png", results[i].Error);
        }
    }

    /// <summary>Adds up the rows of one step's outputs.</summary>
    private sealed class RowCounter(string step) : ForwardHook
    {
        public long Rows;

        protected override void OnStep(string name, ReadOnlySpan<float> output, int width, long multiplyAdds)
        {
            if (name == step) Rows += output.Length / width;
        }
    }

    /// <summary>Counts passes by a step every pass reports once, and runs <paramref name="onPass"/> there.</summary>
    private sealed class PassCounter(string stepSuffix, Action<int> onPass) : ForwardHook
    {
        public int Passes;

        protected override void OnStep(string name, ReadOnlySpan<float> output, int width, long multiplyAdds)
        {
            if (name.EndsWith(stepSuffix, StringComparison.Ordinal)) onPass(++Passes);
        }
    }

    /// <summary>A list that reports which indices are read (from any thread).</summary>
    private sealed class WatchedList<T>(T[] items, Action<int> onRead) : IReadOnlyList<T>
    {
        private int highest = -1;

        public int HighestIndexRead => Volatile.Read(ref highest);

        public T this[int index]
        {
            get
            {
                int seen;
                while ((seen = Volatile.Read(ref highest)) < index && Interlocked.CompareExchange(ref highest, index, seen) != seen) { }
                onRead(index);
                return items[index];
            }
        }

        public int Count => items.Length;
        public IEnumerator<T> GetEnumerator() => Enumerable.Range(0, Count).Select(i => this[i]).GetEnumerator();
        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
    }
}

/// <summary>A forward-only stream that hands out its bytes in short reads, as a socket or pipe does.</summary>
internal sealed class ChunkedStream(byte[] bytes, int chunk) : Stream
{
    private int position;

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        int n = Math.Min(Math.Min(chunk, buffer.Length), bytes.Length - position);
        bytes.AsSpan(position, n).CopyTo(buffer);
        position += n;
        return n;
    }

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        ValueTask.FromResult(Read(buffer.Span));

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}

/// <summary>A stream that never ends (/dev/zero as a pipe), counting what was read from it.</summary>
internal sealed class EndlessStream : Stream
{
    public long BytesRead;

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        buffer.Fill(0x42);
        BytesRead += buffer.Length;
        return buffer.Length;
    }

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
