using System.Globalization;
using System.Reflection;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using ManagedClip.Imaging;
using ManagedClip.Imaging.Dicom;
using ManagedClip.Model;

namespace ManagedClip.Benchmarks;

/// <summary>
/// DICOM throughput on reference files of each kind, from the file's bytes in memory: <c>StoredValues</c> (parse,
/// decode one frame), <c>Rendered</c> (the same, then the 8-bit rendering: Modality LUT, VOI, colour), and
/// <c>ModelInput</c> (the same, then Pillow's resize and crop to the 224×224 RGB the model sees). Rendered minus
/// StoredValues is the rendering's own cost. The files are read from <c>testdata/reference/dicom</c> of the checkout
/// (or <c>$MANAGEDCLIP_TESTDATA/reference/dicom</c>).
/// </summary>
[Config(typeof(DicomBenchmarkConfig))]
[MemoryDiagnoser]
public class DicomRenderingBenchmarks
{
    private static readonly ImagePreprocessor Preprocessor = ImagePreprocessor.For(ClipConfig.BiomedClip);
    private byte[] bytes = [];

    /// <summary>
    /// 16-bit CT with rescale and min-max (128²); Modality LUT, 12 of 16 bits (512²); big endian LINEAR_EXACT
    /// (256²); RLE (256²); JPEG lossless (512²); 12-bit JPEG extended (256×1024); colour JPEG 4:2:2 (320×240);
    /// RGB planar (256×120).
    /// </summary>
    [Params("CT_small", "mlut_18", "ct_hu_signed_negative_linear_exact_bigendian", "ct_hu_signed_rle", "bad_sequence",
        "JPGExtended", "he_ybr_full_422_dcmcjpeg", "color-pl")]
    public string File { get; set; } = "";

    [GlobalSetup]
    public void Setup() => bytes = System.IO.File.ReadAllBytes(PathOf(File));

    [Benchmark]
    public int StoredValues() => DicomImageReader.ReadFrame(bytes, File, Preprocessor.MaxPixels).Values.Length;

    [Benchmark]
    public int Rendered() => ImageDecoding.Decode(bytes, File, Preprocessor.MaxPixels).Bytes.Length;

    [Benchmark]
    public int ModelInput() => Preprocessor.PreprocessToRgb(bytes, File).Length;

    /// <summary>Pixels of one frame of the case's file (rows × columns), for <see cref="MegapixelsColumn"/>.</summary>
    public static double PixelCount(BenchmarkCase benchmarkCase)
    {
        string file = (string)benchmarkCase.Parameters["File"];
        var attributes = DicomImageReader.ReadFrame(System.IO.File.ReadAllBytes(PathOf(file)), file, Preprocessor.MaxPixels).Attributes;
        return (double)attributes.Rows * attributes.Columns;
    }

    internal static string PathOf(string stem)
    {
        string? root = Environment.GetEnvironmentVariable("MANAGEDCLIP_TESTDATA");
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); root is null && dir != null; dir = dir.Parent)
            if (System.IO.File.Exists(Path.Combine(dir.FullName, "ManagedClip.sln"))) root = Path.Combine(dir.FullName, "testdata");
        string path = Path.Combine(root ?? "testdata", "reference", "dicom", stem + ".dcm");
        return System.IO.File.Exists(path)
            ? path
            : throw new FileNotFoundException($"{path}: reference DICOM file not found (run from a checkout, or set MANAGEDCLIP_TESTDATA)", path);
    }
}

/// <summary>Megapixels per second of one frame, from the median time (robust to bursts of load from other VMs).</summary>
public sealed class MegapixelsColumn : IColumn
{
    public string Id => nameof(MegapixelsColumn);
    public string ColumnName => "MP/s";
    public bool AlwaysShow => true;
    public ColumnCategory Category => ColumnCategory.Custom;
    public int PriorityInCategory => 0;
    public bool IsNumeric => true;
    public UnitType UnitType => UnitType.Dimensionless;
    public string Legend => "Megapixels (rows × columns of the frame) per second, from Median";

    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
    public bool IsAvailable(Summary summary) => true;
    public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
    {
        var pixelCount = benchmarkCase.Descriptor.Type.GetMethod("PixelCount", BindingFlags.Public | BindingFlags.Static, [typeof(BenchmarkCase)]);
        double? medianNanoseconds = summary[benchmarkCase]?.ResultStatistics?.Median;
        if (pixelCount is null || medianNanoseconds is not > 0) return "-";
        double pixels = (double)pixelCount.Invoke(null, [benchmarkCase])!;
        return (pixels / medianNanoseconds.Value * 1000).ToString("F1", CultureInfo.InvariantCulture); // pixels/ns · 1000 = MP/s
    }

    public override string ToString() => ColumnName;
}

/// <summary>Default job, plus median, min, max and MP/s.</summary>
public sealed class DicomBenchmarkConfig : ManualConfig
{
    public DicomBenchmarkConfig() => AddColumn(StatisticColumn.Median, StatisticColumn.Min, StatisticColumn.Max, new MegapixelsColumn());
}
