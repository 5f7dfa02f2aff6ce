using System.Security.Cryptography;
using System.Text.Json;
using ManagedClip.Imaging;
using ManagedClip.Imaging.Dicom;
using ManagedClip.Model;
using Xunit.Abstractions;

namespace ManagedClip.Tests.Imaging.Dicom;

/// <summary>
/// DICOM JPEG-LS files made with dcmtk's <c>dcmcjpls</c> (<c>reference/dicom/jpegls/jpegls.json</c>, "dicom"): every
/// frame's stored values against the file they were made from (a reference file read by the already-verified native,
/// RLE or JPEG path): equal for lossless (.4.80), within NEAR for near-lossless (.4.81), where the values must also
/// equal dcmtk's <c>dcmdjpls</c> decoding (a SHA-256 of its Pixel Data). Tolerance: 0, or NEAR where the standard allows it.
/// </summary>
public sealed class DicomJpegLsTests(ITestOutputHelper output)
{
    private static readonly long MaxPixels = ImagePreprocessor.For(ClipConfig.BiomedClip).MaxPixels;

    public static TheoryData<string> Files => new(Entries().Select(e => e.GetProperty("file").GetString()!));

    [Fact]
    public void ManifestListsElevenDicomFiles() => Assert.Equal(11, Entries().Count);

    [Theory]
    [MemberData(nameof(Files))]
    public void StoredValuesMatchTheSourceAndDcmdjpls(string file)
    {
        var entry = Entries().Single(e => e.GetProperty("file").GetString() == file);
        var path = Path.Combine(TestData.Dicom, "jpegls", file);
        var originalPath = Path.Combine(TestData.Dicom, entry.GetProperty("original").GetString()!);
        int near = entry.GetProperty("near").GetInt32(), frames = entry.GetProperty("frames").GetInt32();
        var bytes = File.ReadAllBytes(path);
        var originalBytes = File.ReadAllBytes(originalPath);

        var pixelData = new List<byte>();
        for (int frame = 0; frame < frames; frame++)
        {
            var decoded = DicomImageReader.ReadFrame(bytes, path, MaxPixels, frame);
            var original = DicomImageReader.ReadFrame(originalBytes, originalPath, MaxPixels, frame);
            Assert.Equal(near == 0 ? "1.2.840.10008.1.2.4.80" : "1.2.840.10008.1.2.4.81", decoded.Attributes.Syntax.Uid);
            Assert.Equal(frames, decoded.Attributes.Frames);
            Assert.Equal(original.Values.Length, decoded.Values.Length);
            int worst = 0;
            for (int i = 0; i < decoded.Values.Length; i++) worst = Math.Max(worst, Math.Abs(decoded.Values[i] - original.Values[i]));
            output.WriteLine($"{file} frame {frame}: max |decoded − source| = {worst} (NEAR {near})");
            if (near == 0) DicomReferenceTests.AssertIdentical($"{file} frame {frame}", original.Values, decoded.Values,
                [decoded.Attributes.Rows, decoded.Attributes.Columns, decoded.Attributes.SamplesPerPixel]);
            else Assert.True(worst <= near, $"{file} frame {frame}: a value differs from the source by {worst}, more than NEAR = {near}");

            // The cells dcmdjpls writes: little endian, Bits Allocated wide (the near-lossless files are unsigned).
            foreach (int value in decoded.Values)
            {
                pixelData.Add((byte)value);
                if (decoded.Attributes.BitsAllocated == 16) pixelData.Add((byte)(value >> 8));
            }
        }
        if (entry.TryGetProperty("dcmdjpls_pixel_data_sha256", out var digest))
            Assert.Equal(digest.GetString(), Convert.ToHexStringLower(SHA256.HashData(pixelData.ToArray())));
    }

    [Theory]
    [MemberData(nameof(Files))]
    public void RendersLikeItsSourceWhenLossless(string file)
    {
        // The rendering rule is the same code for every syntax; a lossless file must give its source's 8-bit image.
        var entry = Entries().Single(e => e.GetProperty("file").GetString() == file);
        if (entry.GetProperty("near").GetInt32() != 0) return; // near-lossless values differ, so the rendering may too
        var preprocessor = ImagePreprocessor.For(ClipConfig.BiomedClip);
        var image = preprocessor.Decode(File.ReadAllBytes(Path.Combine(TestData.Dicom, "jpegls", file)), file);
        var source = preprocessor.Decode(File.ReadAllBytes(Path.Combine(TestData.Dicom, entry.GetProperty("original").GetString()!)), "source");
        Assert.Equal((source.Width, source.Height, source.Mode), (image.Width, image.Height, image.Mode));
        Assert.Equal(source.Bytes.ToArray(), image.Bytes.ToArray());
    }

    private static List<JsonElement> Entries()
    {
        using var json = JsonDocument.Parse(File.ReadAllBytes(TestData.File("reference", "dicom", "jpegls", "jpegls.json")));
        return json.RootElement.GetProperty("dicom").EnumerateArray().Select(e => e.Clone()).ToList();
    }
}
