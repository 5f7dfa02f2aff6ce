using ManagedClip.IO.Formats;
using System.Diagnostics;
using ManagedClip.Imaging;
using ManagedClip.IO;
using ManagedClip.Model;

namespace ManagedClip.Tests.IO;

/// <summary>
/// Every input goes through <see cref="GuardedFile"/>: pipes, devices and folders are refused from their metadata,
/// without being opened (a named pipe with no writer would block forever; each of these tests would hang, not fail,
/// if it were opened), and whole-file reads stop at their cap however long the file claims to be.
/// </summary>
public sealed class GuardedFileTests : IDisposable
{
    private readonly TempFolder folder = new();

    public void Dispose() => folder.Dispose();

    public static TheoryData<string> Readers => new() { "image", "config", "vocabulary", "weights", "safetensors", "text" };

    private static void Read(string reader, string path)
    {
        switch (reader)
        {
            case "image": ImagePreprocessor.For(ClipConfig.BiomedClip).Preprocess(path); break;
            case "config": GuardedFile.ReadAllBytes(path, 1 << 20, "config file"); break;
            case "vocabulary": _ = new ManagedClip.Tokenization.OpenClipBertTokenizer(path); break;
            case "weights": TensorFiles.OpenWeights(path).Dispose(); break;
            case "safetensors": SafeTensorsFile.Open(path).Dispose(); break;
            default: GuardedFile.ReadAllText(path, 1 << 20, "text file"); break;
        }
    }

    [Theory]
    [MemberData(nameof(Readers))]
    public void NamedPipeIsRefusedWithoutBlocking(string reader)
    {
        var fifo = folder.File("input.fifo");
        if (!SpecialFiles.TryMakeFifo(fifo)) return; // no mkfifo on this platform
        var clock = Stopwatch.StartNew();
        var error = Assert.Throws<InvalidDataException>(() => Read(reader, fifo));
        Assert.Contains("named pipe", error.Message);
        Assert.Contains(fifo, error.Message);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30)); // it returned at all: nothing was opened
    }

    /// <summary>A link to /dev/zero reports a tiny length; reading it would never end (4 GB, then out of memory).</summary>
    [Theory]
    [MemberData(nameof(Readers))]
    public void LinkToAnEndlessDeviceIsRefused(string reader)
    {
        var link = SpecialFiles.LinkToDevZero(folder.File("zero.link"));
        if (link is null) return;
        long before = GC.GetAllocatedBytesForCurrentThread();
        var error = Assert.Throws<InvalidDataException>(() => Read(reader, link));
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 16 << 20, "read from the device");
        Assert.Contains("device", error.Message);
    }

    [Theory]
    [MemberData(nameof(Readers))]
    public void FolderIsRefused(string reader)
    {
        var error = Assert.Throws<InvalidDataException>(() => Read(reader, folder.Path));
        Assert.Contains("is a folder", error.Message);
    }

    [Theory]
    [MemberData(nameof(Readers))]
    public void EmptyFileIsRefused(string reader)
    {
        var error = Assert.Throws<InvalidDataException>(() => Read(reader, folder.Write("empty", [])));
        Assert.Contains("empty", error.Message);
    }

    [Fact]
    public void DanglingLinkIsNotFound()
    {
        var link = folder.File("dangling");
        File.CreateSymbolicLink(link, folder.File("missing"));
        var error = Assert.Throws<FileNotFoundException>(() => GuardedFile.Check(link, "config file"));
        Assert.Contains("missing file", error.Message);
    }

    [Fact]
    public void CapIsCountedOnTheBytesRead()
    {
        var path = folder.Write("big.json", new byte[5000]);
        var error = Assert.Throws<InvalidDataException>(() => GuardedFile.ReadAllBytes(path, 4096, "config file"));
        Assert.Contains("4,096-byte limit", error.Message);
        // A stream that says nothing of its length and never ends (a pipe on standard input) stops at the cap.
        var endless = new EndlessStream();
        Assert.Throws<InvalidDataException>(() => GuardedFile.ReadCapped(endless, 1 << 20, "standard input", "request"));
        Assert.True(endless.Served <= (1 << 20) + 81920, $"read {endless.Served:N0} bytes");
    }

    [Fact]
    public void InvalidUtf8IsNamedWithItsOffset()
    {
        var path = folder.Write("latin1.txt", [0x61, 0x62, 0xE9, 0x0A]);
        var error = Assert.Throws<InvalidDataException>(() => GuardedFile.ReadAllText(path, 100, "vocabulary file"));
        Assert.Contains("not valid UTF-8", error.Message);
        Assert.Contains("byte 2", error.Message);
    }

    private sealed class EndlessStream : Stream
    {
        public long Served { get; private set; }
        public override int Read(byte[] buffer, int offset, int count) { Served += count; return count; }
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => Served; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
