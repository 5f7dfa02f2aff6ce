using System.Buffers.Binary;
using System.Text;
using ManagedClip.Imaging;
using ManagedClip.Model;
using Xunit.Abstractions;

namespace ManagedClip.Tests.Imaging;

/// <summary>Bad input gets a one-line InvalidDataException naming the file, quickly and without big allocations.</summary>
public sealed class HostileInputTests(ITestOutputHelper output) : IDisposable
{
    private static readonly ImagePreprocessor Preprocessor = ImagePreprocessor.For(ClipConfig.BiomedClip);
    private readonly string folder = Directory.CreateTempSubdirectory("managedclip-imaging-").FullName;

    public void Dispose() => Directory.Delete(folder, recursive: true);

    private string Write(string name, byte[] content)
    {
        var path = Path.Combine(folder, name);
        File.WriteAllBytes(path, content);
        return path;
    }

    private InvalidDataException Refused(string path)
    {
        var error = Assert.Throws<InvalidDataException>(() => Preprocessor.Preprocess(path));
        output.WriteLine(error.Message);
        Assert.StartsWith(path + ": ", error.Message);
        Assert.DoesNotContain('\n', error.Message);
        return error;
    }

    /// <summary>
    /// A 118-byte PNG whose header claims 100000 × 100000 RGB pixels (30 GB decoded) is refused from the header:
    /// the thread allocates a few hundred KB (ImageSharp's header buffers; bound 4 MB), a decode would need 30 GB.
    /// </summary>
    [Fact]
    public void DecompressionBombIsRefusedBeforeDecoding()
    {
        var bomb = PngWithHeader(100_000, 100_000);
        long before = GC.GetAllocatedBytesForCurrentThread();
        var error = Assert.Throws<InvalidDataException>(() => Preprocessor.Preprocess(bomb, "bomb.png"));
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        output.WriteLine($"{error.Message} (allocated {allocated:N0} bytes)");

        Assert.Contains("bomb.png", error.Message);
        Assert.Contains("100000x100000", error.Message);
        Assert.Contains("100,000,000", error.Message); // the limit
        Assert.True(allocated < 4_000_000, $"refusing the bomb allocated {allocated:N0} bytes");
    }

    [Fact]
    public void PixelLimitIsConfigurable()
    {
        var small = new ImagePreprocessor(224, ClipConfig.OpenAiMean, ClipConfig.OpenAiStd, maxPixels: 1000);
        var path = Path.Combine(TestData.Images, "ihc.png");
        var error = Assert.Throws<InvalidDataException>(() => small.Preprocess(path));
        Assert.Contains("512x512", error.Message);
        Assert.Contains("1,000 pixels", error.Message);
    }

    [Fact]
    public void ZeroDimensionsAreRefused()
    {
        var error = Assert.Throws<InvalidDataException>(() => Preprocessor.Preprocess(PngWithHeader(0, 16), "empty.png"));
        Assert.StartsWith("empty.png: ", error.Message);
    }

    [Fact]
    public void EmptyFileIsRefused() => Assert.Contains("empty", Refused(Write("zero.png", [])).Message);

    [Fact]
    public void TruncatedPngIsRefused()
    {
        var png = File.ReadAllBytes(Path.Combine(TestData.Images, "ihc.png"));
        Assert.Contains("truncated PNG", Refused(Write("half.png", png[..(png.Length / 2)])).Message);
        Assert.Contains("truncated PNG", Refused(Write("no-end.png", png[..^12])).Message); // IEND cut off
        Refused(Write("header-only.png", png[..40]));
    }

    [Fact]
    public void TruncatedJpegIsRefused()
    {
        var jpeg = File.ReadAllBytes(Path.Combine(TestData.Images, "jpeg_420.jpg"));
        Assert.Contains("truncated JPEG", Refused(Write("half.jpg", jpeg[..(jpeg.Length / 2)])).Message);
        Refused(Write("stub.jpg", jpeg[..300])); // cut inside the Huffman tables
    }

    [Fact]
    public void ContentDecidesTheFormatNotTheExtension()
    {
        var jpegPath = Path.Combine(TestData.Images, "jpeg_420.jpg");
        var renamed = Write("actually-a-jpeg.png", File.ReadAllBytes(jpegPath));
        Assert.Equal(Preprocessor.Preprocess(jpegPath), Preprocessor.Preprocess(renamed));
    }

    [Fact]
    public void TextWithAnImageExtensionIsRefusedAsText()
    {
        var error = Refused(Write("notes.png", Encoding.UTF8.GetBytes("patient notes, not a scan\n")));
        Assert.Contains("text", error.Message);
    }

    [Fact]
    public void RandomBytesAreRefused()
    {
        var noise = new byte[4096];
        new Random(5).NextBytes(noise);
        Assert.Contains("not a supported image", Refused(Write("noise.bin", noise)).Message);
    }

    [Fact]
    public void DicomIsNamedInTheMessage()
    {
        var dicom = new byte[300];
        "DICM"u8.CopyTo(dicom.AsSpan(128));
        Assert.Contains("DICOM", Refused(Write("scan.dcm", dicom)).Message);
    }

    [Fact]
    public void MissingFileIsFileNotFound() =>
        Assert.Throws<FileNotFoundException>(() => Preprocessor.Preprocess(Path.Combine(folder, "nope.png")));

    [Fact]
    public void DestinationOfTheWrongSizeIsRejected() =>
        Assert.Throws<ArgumentException>(() =>
            Preprocessor.Preprocess(File.ReadAllBytes(Path.Combine(TestData.Images, "tiny.png")), "tiny.png", new float[10]));

    /// <summary>A syntactically valid PNG (correct CRCs) with the given header and one empty IDAT.</summary>
    internal static byte[] PngWithHeader(int width, int height)
    {
        var file = new MemoryStream();
        file.Write([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]);
        var header = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(header, width);
        BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(4), height);
        header[8] = 8; // bit depth
        header[9] = 2; // colour type RGB
        PillowCompatibilityTests.PngChunk(file, "IHDR", header);
        PillowCompatibilityTests.PngChunk(file, "IDAT", [0x78, 0x9C, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]); // zlib stream of nothing
        PillowCompatibilityTests.PngChunk(file, "IEND", []);
        return file.ToArray();
    }
}
