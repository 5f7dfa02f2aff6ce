using System.Runtime.ExceptionServices;
using System.Security.Cryptography;
using ManagedClip.Imaging;

namespace ManagedClip.Retrieval;

/// <summary>One file's outcome from <see cref="EmbeddingPipeline"/>.</summary>
/// <param name="Index">Position of the file in the list given (results come back in this order).</param>
/// <param name="Embedding">[E], L2-normalised; null when the file could not be decoded.</param>
/// <param name="Sha256">Hex SHA-256 of the bytes that were decoded; null when the file could not be read.</param>
/// <param name="Error">Why there is no embedding (names the file by the path given), or null.</param>
internal readonly record struct PipelineResult(int Index, float[]? Embedding, string? Sha256, string? Error);

/// <summary>
/// Files in, embeddings out, in input order, with decoding kept off the model's path:
/// <code>
///  files ─▶ decode workers (read once: SHA-256 + decode + resize + normalise into a free pixel slot)
///             │ ready: (file, slot) in completion order
///             ▼
///          caller's thread: passes of up to B ready images through the image tower ─▶ reorder ─▶ results in order
/// </code>
/// Decoding of later files overlaps the tower's current pass, and a pass is made of whichever B images are ready,
/// so one slow file (a 60-megapixel scan, a stalled network read) holds back only its own row while the others go
/// on through the model. Everything is bounded: <c>B · (passesAhead + 1)</c> pixel slots plus the pass's own block
/// (B = 8: 32 images of 3·224·224 floats, 19 MB), and no file is started more than <c>window</c> files past the oldest one not yet returned, so
/// a file that never finishes stops the pipeline after <c>window</c> rows of finished vectors (2 KB each) wait behind it.
/// Rows do not depend on the other images of their pass, so any pass composition gives the bits of a sequential run.
/// </summary>
/// <remarks>
/// The tower's kernels already use every core, so the decode workers only need to keep up: decoding is a few percent
/// of an image's cost (docs/benchmarks/indexing-2026-12-06.md). Two workers are enough for one slow file not to stop
/// decoding; more cores get more workers (one per eight cores) because a faster tower asks for images faster.
/// </remarks>
internal sealed class EmbeddingPipeline
{
    /// <summary>Passes of decoded images held ready beyond the one being computed.</summary>
    public const int DefaultPassesAhead = 2;

    /// <summary>Files that may be started past the oldest one not yet returned.</summary>
    public const int DefaultWindow = 1024;

    private readonly ClipModel model;
    private readonly IReadOnlyList<string> paths;
    private readonly int passSize, slotCount, window, workerCount;
    private readonly int pixelsPerImage;

    /// <summary>Test hook: runs on a decode worker before file <c>index</c> is read (to make a file slow).</summary>
    internal Action<int>? BeforeDecode { get; init; }

    /// <summary>Largest number of files started at once past the oldest one not yet returned (for the tests).</summary>
    internal int LargestLead
    {
        get { lock (gate) return largestLead; }
    }

    private int largestLead;

    /// <summary>Images the tower has embedded so far, whether returned yet or not (for the tests).</summary>
    internal int ImagesEmbedded => Volatile.Read(ref imagesEmbedded);

    private int imagesEmbedded;

    public EmbeddingPipeline(ClipModel model, IReadOnlyList<string> paths, int passesAhead = DefaultPassesAhead,
        int window = DefaultWindow, int? workers = null)
    {
        this.model = model;
        this.paths = paths;
        passSize = model.ImagesPerPass;
        workerCount = workers ?? Math.Max(2, Environment.ProcessorCount / 8);
        slotCount = passSize * (passesAhead + 1);
        // The window must hold a whole pass and what the workers hold, or a full window could wait on itself.
        this.window = Math.Max(window, slotCount + workerCount);
        pixelsPerImage = model.Preprocessor.OutputLength;
    }

    // A file the workers are done with: its pixels in `Slot` (or -1 when it failed).
    private readonly record struct Decoded(int Index, int Slot, string? Sha256, string? Error);

    // Shared between the workers and the caller's thread; every field below is guarded by `gate`.
    private readonly object gate = new();
    private readonly Queue<Decoded> ready = new();
    private readonly Stack<int> freeSlots = new();
    private int nextFile;      // next file a worker takes
    private int returned;      // files returned to the caller (all below this index)
    private int decoding;      // files being decoded now
    private bool stopping;
    private Exception? workerFailure;

    /// <summary>The results, one per path, in the order of the paths. Cancellation is checked before each pass.</summary>
    public IEnumerable<PipelineResult> Run(CancellationToken cancellationToken)
    {
        if (Interlocked.Exchange(ref started, 1) != 0) throw new InvalidOperationException("an EmbeddingPipeline runs once");
        return RunInside(cancellationToken);
    }

    private int started;

    private IEnumerable<PipelineResult> RunInside(CancellationToken cancellationToken)
    {
        using var weightsOpen = model.EnterStreamingCall();
        var pixels = new float[slotCount * pixelsPerImage];         // [slots, 3, S, S], filled by the workers
        var batch = new float[passSize * pixelsPerImage];           // [B, 3, S, S], the pass being computed
        var features = new float[passSize * model.EmbeddingSize];   // [B, E]
        for (int s = slotCount - 1; s >= 0; s--) freeSlots.Push(s);
        var workers = new Thread[Math.Min(workerCount, Math.Max(paths.Count, 1))];
        for (int w = 0; w < workers.Length; w++)
        {
            workers[w] = new Thread(() => Work(pixels)) { IsBackground = true, Name = $"managedclip decode {w}" };
            workers[w].Start();
        }
        try
        {
            var finished = new Dictionary<int, PipelineResult>(); // computed, waiting for an earlier file
            var pass = new List<Decoded>(passSize);
            while (returned < paths.Count)
            {
                cancellationToken.ThrowIfCancellationRequested();
                bool passReady = TakePass(pass, finished);
                if (passReady && pass.Count == 0 && !finished.ContainsKey(returned))
                    throw new InvalidOperationException($"the embedding pipeline stalled at file {returned} of {paths.Count}"); // a bug, not bad input
                if (passReady && pass.Count > 0)
                {
                    // The pass's images are copied from their slots into one [B, 3, S, S] block, and the slots go
                    // back to the workers before the tower starts, so decoding continues during the pass.
                    int count = pass.Count, width = model.EmbeddingSize;
                    for (int i = 0; i < count; i++)
                        pixels.AsSpan(pass[i].Slot * pixelsPerImage, pixelsPerImage).CopyTo(batch.AsSpan(i * pixelsPerImage, pixelsPerImage));
                    lock (gate)
                    {
                        foreach (var item in pass) freeSlots.Push(item.Slot);
                        Monitor.PulseAll(gate);
                    }
                    model.EmbedPreprocessed(batch.AsSpan(0, count * pixelsPerImage), count, features.AsSpan(0, count * width));
                    Interlocked.Add(ref imagesEmbedded, count);
                    for (int i = 0; i < count; i++)
                        finished[pass[i].Index] = new PipelineResult(pass[i].Index,
                            model.FinishEmbedding(features.AsSpan(i * width, width), normalize: true), pass[i].Sha256, null);
                    pass.Clear();
                }
                while (finished.Remove(returned, out var result))
                {
                    lock (gate)
                    {
                        returned++;
                        Monitor.PulseAll(gate);
                    }
                    yield return result;
                }
            }
        }
        finally
        {
            lock (gate)
            {
                stopping = true;
                Monitor.PulseAll(gate);
            }
            foreach (var worker in workers) worker.Join(); // a worker finishes the file it is decoding, then stops
        }
    }

    /// <summary>
    /// Gathers the next pass: true when it is ready to run (<see cref="passSize"/> decoded images, or fewer when no
    /// more can come before some rows are returned: the workers are all waiting, or done); false when it is not, but
    /// the oldest file's row can be returned now (a failed file: failures go straight to <paramref name="finished"/>).
    /// </summary>
    private bool TakePass(List<Decoded> pass, Dictionary<int, PipelineResult> finished)
    {
        lock (gate)
        {
            while (true)
            {
                while (ready.Count > 0 && pass.Count < passSize)
                {
                    var item = ready.Dequeue();
                    if (item.Slot < 0) finished[item.Index] = new PipelineResult(item.Index, null, item.Sha256, item.Error);
                    else pass.Add(item);
                }
                if (workerFailure != null) ExceptionDispatchInfo.Throw(workerFailure);
                if (pass.Count == passSize) return true;
                if (decoding == 0 && !WorkersCanStart()) return true; // nothing more will come until rows are returned
                if (finished.ContainsKey(returned)) return false;
                Monitor.Wait(gate);
            }
        }
    }

    // Guarded by `gate`: whether a worker could take another file now.
    private bool WorkersCanStart() => nextFile < paths.Count && freeSlots.Count > 0 && nextFile < returned + window;

    private void Work(float[] pixels)
    {
        try
        {
            while (true)
            {
                int index, slot;
                lock (gate)
                {
                    while (!stopping && nextFile < paths.Count && !WorkersCanStart()) Monitor.Wait(gate);
                    if (stopping || nextFile >= paths.Count) return;
                    index = nextFile++;
                    slot = freeSlots.Pop();
                    decoding++;
                    largestLead = Math.Max(largestLead, nextFile - returned);
                }
                var item = Decode(index, slot, pixels.AsSpan(slot * pixelsPerImage, pixelsPerImage));
                lock (gate)
                {
                    decoding--;
                    if (item.Slot < 0) freeSlots.Push(slot);
                    ready.Enqueue(item);
                    Monitor.PulseAll(gate);
                }
            }
        }
        catch (Exception e)
        {
            // Out of memory or a bug: the caller's thread rethrows it at its next pass.
            lock (gate)
            {
                workerFailure ??= e;
                decoding = 0;
                Monitor.PulseAll(gate);
            }
        }
    }

    /// <summary>Reads the file once: its SHA-256 and its pixels come from the same mapped bytes.</summary>
    private Decoded Decode(int index, int slot, Span<float> destination)
    {
        BeforeDecode?.Invoke(index);
        string path = paths[index];
        string? sha = null;
        try
        {
            using var file = ImagePreprocessor.MappedImageFile.Open(path);
            sha = Convert.ToHexStringLower(SHA256.HashData(file.Bytes));
            model.Preprocessor.Preprocess(file.Bytes, path, destination);
            return new Decoded(index, slot, sha, null);
        }
        catch (Exception e) when (e is not (OutOfMemoryException or OperationCanceledException))
        {
            // A file that cannot be mapped (empty, vanished, not permitted) may still be hashable, as the index recorded it before.
            sha ??= ContentHash.OfFileOrNull(path);
            return new Decoded(index, -1, sha, InvalidImage.Describe(e, path));
        }
    }
}
