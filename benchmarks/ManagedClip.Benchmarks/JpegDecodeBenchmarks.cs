using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using ManagedJpegDecoder = ManagedClip.Imaging.Jpeg.JpegDecoder;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats.Jpeg;
using SixLabors.ImageSharp.PixelFormats;

namespace ManagedClip.Benchmarks;

// One table, ImageSharp as the baseline (short job: 3 warm-ups, 3 measurements):
//   dotnet run -c Release --project benchmarks/ManagedClip.Benchmarks -- --filter '*JpegDecode*' --job short
// Paired, interleaved times (what a speed claim should rest on on this VM): the jpeg-compare command.

/// <summary>A JPEG to decode in the benchmarks: the model card's images, and a large synthetic photo.</summary>
public sealed record JpegInput(string Name, byte[] Bytes)
{
    public override string ToString() => Name;
}

/// <summary>The inputs of <see cref="JpegDecodeBenchmarks"/> and <c>jpeg-compare</c>.</summary>
public static class JpegBenchmarkInputs
{
    /// <summary>The seven JPEG example images of the BiomedCLIP model card (testdata/model-card/images).</summary>
    public static readonly string[] ModelCardFiles =
    [
        "H_and_E_histopathology.jpg", "IHC_histopathology.jpg", "adenocarcinoma_histopathology.jpg", "bone_X-ray.jpg",
        "brain_MRI.jpg", "chest_X-ray.jpg", "squamous_cell_carcinoma_histopathology.jpeg",
    ];

    public const int LargeWidth = 4000, LargeHeight = 3000;

    /// <summary>The model-card JPEGs and the large synthetic one, in that order.</summary>
    public static IReadOnlyList<JpegInput> All() =>
    [
        .. ModelCardFiles.Select(f => new JpegInput(Path.GetFileNameWithoutExtension(f), File.ReadAllBytes(Path.Combine(ModelCardFolder(), f)))),
        new JpegInput($"synthetic {LargeWidth}x{LargeHeight} 4:2:0 q90", LargeJpeg()),
    ];

    /// <summary>
    /// A deterministic 4000×3000 photo-like picture (smooth colour fields, edges and fine texture, so the entropy
    /// coder sees a realistic mix of coefficients), encoded by ImageSharp's encoder at quality 90, 4:2:0.
    /// </summary>
    public static byte[] LargeJpeg()
    {
        using var image = new Image<Rgb24>(LargeWidth, LargeHeight);
        image.ProcessPixelRows(rows =>
        {
            uint state = 12345;
            for (int y = 0; y < rows.Height; y++)
            {
                var row = rows.GetRowSpan(y);
                for (int x = 0; x < row.Length; x++)
                {
                    state = state * 1664525 + 1013904223; // LCG: fixed seed, same picture every run
                    int noise = (int)(state >> 28) - 8;
                    double u = x / (double)LargeWidth, v = y / (double)LargeHeight;
                    int cell = ((x / 150) + (y / 110)) % 3; // blocky regions with sharp edges
                    int r = (int)(128 + 90 * Math.Sin(6 * u + 2 * v) + 20 * cell) + noise;
                    int g = (int)(120 + 80 * Math.Cos(5 * v - 3 * u) + 15 * Math.Sin(40 * u) * Math.Sin(30 * v)) + noise;
                    int b = (int)(110 + 70 * Math.Sin(9 * u * v + 1) - 25 * cell) + noise;
                    row[x] = new Rgb24((byte)Math.Clamp(r, 0, 255), (byte)Math.Clamp(g, 0, 255), (byte)Math.Clamp(b, 0, 255));
                }
            }
        });
        using var stream = new MemoryStream();
        image.SaveAsJpeg(stream, new JpegEncoder { Quality = 90, ColorType = JpegColorType.YCbCrRatio420 });
        return stream.ToArray();
    }

    /// <summary>testdata/model-card/images of the checkout this program was built in.</summary>
    public static string ModelCardFolder()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "ManagedClip.sln")))
                return Path.Combine(dir.FullName, "testdata", "model-card", "images");
        }
        throw new DirectoryNotFoundException("Run the benchmarks from a ManagedClip checkout: testdata/model-card/images was not found above " + AppContext.BaseDirectory);
    }

    /// <summary>ManagedClip's decoder, as image decoding calls it (Pillow's pixels).</summary>
    public static int DecodeManagedClip(byte[] jpeg) =>
        ManagedJpegDecoder.Decode(jpeg, "benchmark", long.MaxValue / 64).Bytes!.Length;

    /// <summary>ImageSharp 2.1.13's decoder into its natural pixel type (Rgb24 for colour, L8 for grey).</summary>
    public static int DecodeImageSharp(byte[] jpeg)
    {
        using var image = Image.Load(jpeg);
        return image.Width * image.Height;
    }
}

/// <summary>
/// JPEG decoding: ManagedClip's libjpeg-turbo-exact decoder against ImageSharp 2.1.13 (the decoder it replaced),
/// on the model card's images and a large synthetic JPEG.
/// </summary>
[Config(typeof(Config))]
public class JpegDecodeBenchmarks
{
    private sealed class Config : ManualConfig
    {
        public Config() => AddColumn(new MedianRatioColumn());
    }

    public static IEnumerable<JpegInput> Inputs() => JpegBenchmarkInputs.All();

    [ParamsSource(nameof(Inputs))]
    public JpegInput Input { get; set; } = new("none", []);

    [Benchmark(Baseline = true)]
    public int ImageSharp() => JpegBenchmarkInputs.DecodeImageSharp(Input.Bytes);

    [Benchmark]
    public int ManagedClip() => JpegBenchmarkInputs.DecodeManagedClip(Input.Bytes);
}
