using BenchmarkDotNet.Attributes;
using ManagedClip.Imaging;
using ManagedClip.Imaging.Dicom;
using ManagedClip.Model;

namespace ManagedClip.Benchmarks;

/// <summary>
/// JPEG-LS in DICOM, from the file's bytes in memory: <c>StoredValues</c> (parse the data set, decode frame 1 with
/// the managed JPEG-LS decoder, take the Bits Stored field) and <c>Rendered</c> (then the 8-bit rendering rule).
/// <c>mlut_18_jpegls</c> is a 512×512 frame coded at 16 bits (P = 16, 12 bits stored, signed); <c>ct_hu_signed_jpegls</c>
/// 256×256 signed 16-bit; <c>SC_rgb_jpegls_sample</c> 100×100 RGB, sample-interleaved. Files from
/// <c>testdata/reference/dicom</c> (or <c>$MANAGEDCLIP_TESTDATA</c>).
/// </summary>
[Config(typeof(DicomBenchmarkConfig))]
[MemoryDiagnoser]
public class JpegLsDecodeBenchmarks
{
    private static readonly ImagePreprocessor Preprocessor = ImagePreprocessor.For(ClipConfig.BiomedClip);
    private byte[] bytes = [];

    [Params("jpegls/mlut_18_jpegls", "ct_hu_signed_jpegls", "jpegls/SC_rgb_jpegls_sample")]
    public string File { get; set; } = "";

    [GlobalSetup]
    public void Setup() => bytes = System.IO.File.ReadAllBytes(DicomRenderingBenchmarks.PathOf(File));

    [Benchmark]
    public int StoredValues() => DicomImageReader.ReadFrame(bytes, File, Preprocessor.MaxPixels).Values.Length;

    [Benchmark]
    public int Rendered() => ImageDecoding.Decode(bytes, File, Preprocessor.MaxPixels).Bytes.Length;
}
