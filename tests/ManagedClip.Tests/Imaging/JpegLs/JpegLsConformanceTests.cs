using System.Security.Cryptography;
using System.Text.Json;
using ManagedClip.Imaging.JpegLs;
using Xunit.Abstractions;

namespace ManagedClip.Tests.Imaging.JpegLs;

/// <summary>
/// The JPEG-LS decoder on bare streams (<c>reference/dicom/jpegls/</c>): the ISO/IEC 14495-1 conformance set and
/// CharLS's restart-marker and HP-colour-transform streams. Each decoding must equal CharLS's, bit for bit (a SHA-256
/// of the samples, from <c>jpegls.json</c>); where the uncompressed original is there, a lossless stream must give
/// it exactly and a near-lossless one must stay within NEAR of it (the standard's guarantee). Tolerance 0 except
/// that NEAR bound: the decoder is integer arithmetic throughout.
/// </summary>
public sealed class JpegLsConformanceTests(ITestOutputHelper output)
{
    private static readonly string Folder = Path.Combine(TestData.Dicom, "jpegls");

    public static TheoryData<string> Streams => new(Manifest().Select(e => e.GetProperty("file").GetString()!));

    [Fact]
    public void ManifestListsTwentyThreeStreams() => Assert.Equal(23, Manifest().Count);

    [Theory]
    [MemberData(nameof(Streams))]
    public void DecodesAsCharLsDoes(string file)
    {
        var entry = Manifest().Single(e => e.GetProperty("file").GetString() == file);
        var image = JpegLsDecoder.Decode(File.ReadAllBytes(Path.Combine(Folder, file)), file, 1L << 30);
        Assert.Equal((entry.GetProperty("width").GetInt32(), entry.GetProperty("height").GetInt32(), entry.GetProperty("components").GetInt32(), entry.GetProperty("bits").GetInt32()),
            (image.Width, image.Height, image.Components, image.Precision));

        int near = entry.GetProperty("near").GetInt32();
        if (entry.TryGetProperty("original", out var original))
        {
            var expected = ReadPnm(Path.Combine(Folder, original.GetString()!));
            Assert.Equal(expected.Length, image.Samples.Length);
            int worst = 0, worstAt = 0;
            for (int i = 0; i < expected.Length; i++)
                if (Math.Abs(expected[i] - image.Samples[i]) > worst) (worst, worstAt) = (Math.Abs(expected[i] - image.Samples[i]), i);
            output.WriteLine($"{file}: max |decoded − original| = {worst} (NEAR {near})");
            Assert.True(worst <= near, $"{file}: sample {worstAt} differs from the original by {worst}, more than NEAR = {near}");
        }

        var bytes = new byte[image.Samples.Length * 2];
        for (int i = 0; i < image.Samples.Length; i++) (bytes[2 * i], bytes[2 * i + 1]) = ((byte)image.Samples[i], (byte)(image.Samples[i] >> 8));
        Assert.Equal(entry.GetProperty("charls_samples_sha256").GetString(), Convert.ToHexStringLower(SHA256.HashData(bytes)));
    }

    /// <summary>Samples of a binary PGM/PPM (P5/P6; 16-bit big endian when maxval > 255), <c>[height, width, channels]</c>.</summary>
    internal static int[] ReadPnm(string path)
    {
        var data = File.ReadAllBytes(path);
        int position = 0;
        string Token()
        {
            while (char.IsWhiteSpace((char)data[position]) || data[position] == '#')
                if (data[position] == '#') while (data[position] != '\n') position++; // a comment line
                else position++;
            int start = position;
            while (!char.IsWhiteSpace((char)data[position])) position++;
            return System.Text.Encoding.ASCII.GetString(data, start, position - start);
        }
        string magic = Token();
        int width = int.Parse(Token()), height = int.Parse(Token()), maxValue = int.Parse(Token());
        position++; // the single whitespace before the samples
        int channels = magic == "P6" ? 3 : 1, count = width * height * channels;
        var samples = new int[count];
        for (int i = 0; i < count; i++)
            samples[i] = maxValue > 255 ? (data[position + 2 * i] << 8) | data[position + 2 * i + 1] : data[position + i];
        return samples;
    }

    private static List<JsonElement> Manifest()
    {
        using var json = JsonDocument.Parse(File.ReadAllBytes(TestData.File("reference", "dicom", "jpegls", "jpegls.json")));
        return json.RootElement.GetProperty("streams").EnumerateArray().Select(e => e.Clone()).ToList();
    }
}
