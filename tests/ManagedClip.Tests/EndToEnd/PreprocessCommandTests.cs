using ManagedClip.Imaging;
using ManagedClip.Tests.Imaging;

namespace ManagedClip.Tests.EndToEnd;

/// <summary>
/// <c>managedclip preprocess</c>: the PNG it writes decodes to the reference <c>rgb224</c> (open_clip's model input)
/// byte for byte, and it never overwrites what the user has without <c>--force</c>.
/// </summary>
public sealed class PreprocessCommandTests : IDisposable
{
    private readonly IO.TempFolder folder = new();

    public void Dispose() => folder.Dispose();

    /// <summary>Input file → (reference tensors, name of the expected <c>rgb224</c>).</summary>
    public static TheoryData<string, string> Inputs => new()
    {
        { Path.Combine("images", "ct_small.png"), "preprocess:ct_small.rgb224" },
        { Path.Combine("images", "palette.png"), "preprocess:palette.rgb224" },
        { Path.Combine("dicom", "MR_small.dcm"), "dicom:MR_small.rgb224" },
        { Path.Combine("dicom", "CT_small_raw_dataset_implicit.dcm"), "dicom:CT_small.rgb224" },
        { Path.Combine("dicom", "he_ybr_full_422_baseline_420.dcm"), "dicom:he_ybr_full_422_baseline_420.rgb224" },
        { Path.Combine("dicom", "JPGExtended.dcm"), "dicom:JPGExtended.rgb224" },
    };

    private static byte[] Expected(string tensor)
    {
        var (set, name) = (tensor.Split(':')[0], tensor.Split(':')[1]);
        return (set == "dicom" ? ReferenceTensors.Dicom : ReferenceTensors.Preprocess).U8(name);
    }

    private static byte[] DecodePng(string path)
    {
        var image = ImageDecoding.Decode(File.ReadAllBytes(path), path, 1_000_000);
        Assert.Equal((PillowMode.Rgb, 224, 224), (image.Mode, image.Width, image.Height));
        return image.Bytes;
    }

    [Theory]
    [MemberData(nameof(Inputs))]
    public void WrittenPngIsTheModelInput(string input, string tensor)
    {
        string path = TestData.PathOf(input.Split(Path.DirectorySeparatorChar));
        var result = CliRunner.Run("preprocess", path, "--out", folder.Path);
        Assert.True(result.ExitCode == 0, result.Error);
        var row = Assert.Single(result.Json.EnumerateArray());
        Assert.Equal(path, row.GetProperty("input").GetString());
        string written = row.GetProperty("output").GetString()!;
        Assert.Equal(Path.Combine(folder.Path, Path.GetFileNameWithoutExtension(path) + ".png"), written);
        Assert.Equal(Expected(tensor), DecodePng(written));
    }

    [Fact]
    public void JpegInputsGivePillowsModelInput()
    {
        var jpegs = new[] { "brain_MRI", "H_and_E_histopathology", "cjpeg_arith_420" }.Select(Imaging.Jpeg.JpegReferenceFile.Named).ToArray();
        var result = CliRunner.Run(["preprocess", .. jpegs.Select(j => j.Path), "--out", folder.Path]);
        Assert.True(result.ExitCode == 0, result.Error);
        var rows = result.Json.EnumerateArray().ToList();
        Assert.Equal(jpegs.Length, rows.Count);
        for (int i = 0; i < jpegs.Length; i++)
            PreprocessReferenceTests.AssertBytesEqual(Imaging.Jpeg.JpegReferenceFile.Tensors.U8(jpegs[i].Rgb224Tensor),
                DecodePng(rows[i].GetProperty("output").GetString()!), $"{jpegs[i].Stem} rgb224");
    }

    [Fact]
    public void ExistingOutputsAreKeptUnlessForced()
    {
        string dicom = TestData.PathOf("dicom", "MR_small.dcm"), png = TestData.PathOf("images", "ct_small.png");
        var existing = folder.Write("MR_small.png", "the user's file"u8.ToArray());

        var refused = CliRunner.Run("preprocess", png, dicom, "--out", folder.Path);
        Assert.Equal(2, refused.ExitCode);
        Assert.Contains("--force", refused.Error);
        Assert.Equal("the user's file", File.ReadAllText(existing));
        Assert.False(File.Exists(folder.File("ct_small.png")), "nothing is written when one output is refused");

        var forced = CliRunner.Run("preprocess", png, dicom, "--out", folder.Path, "--force");
        Assert.True(forced.ExitCode == 0, forced.Error);
        Assert.Equal(ReferenceTensors.Dicom.U8("MR_small.rgb224"), DecodePng(existing));
        Assert.True(File.Exists(folder.File("ct_small.png")));
    }

    [Fact]
    public void AnInputIsNeverOverwrittenEvenWithForce()
    {
        var input = folder.Write("scan.png", File.ReadAllBytes(TestData.PathOf("images", "ct_small.png")));
        var before = File.ReadAllBytes(input);
        var result = CliRunner.Run("preprocess", input, "--out", folder.Path, "--force");
        Assert.Equal(2, result.ExitCode);
        Assert.Contains("is one of the inputs", result.Error);
        Assert.Equal(before, File.ReadAllBytes(input));
    }

    [Fact]
    public void TwoInputsWithTheSameNameAreRefusedBeforeWriting()
    {
        var png = TestData.PathOf("images", "ct_small.png");
        var copy = folder.Write(Path.Combine("other", "ct_small.dcm"), File.ReadAllBytes(TestData.PathOf("dicom", "CT_small.dcm")));
        var output = Path.Combine(folder.Path, "out");
        var result = CliRunner.Run("preprocess", png, copy, "--out", output);
        Assert.Equal(2, result.ExitCode);
        Assert.Contains("would both be written to", result.Error);
        Assert.False(Directory.Exists(output) && Directory.EnumerateFileSystemEntries(output).Any());
    }

    [Fact]
    public void AnUnreadableInputIsReportedAndTheOthersAreWritten()
    {
        var broken = folder.Write("broken.dcm", [.. new byte[128], .. "DICM"u8, 1, 2, 3]);
        var good = TestData.PathOf("dicom", "color-pl.dcm");
        var output = Path.Combine(folder.Path, "out");
        var result = CliRunner.Run("preprocess", broken, good, "--out", output);
        Assert.Equal(1, result.ExitCode);
        Assert.Contains($"managedclip: {broken}: ", result.Error);
        var rows = result.Json.EnumerateArray().ToList();
        Assert.StartsWith(broken + ": ", rows[0].GetProperty("error").GetString());
        Assert.False(rows[0].TryGetProperty("output", out _));
        Assert.Equal(ReferenceTensors.Dicom.U8("color-pl.rgb224"), DecodePng(rows[1].GetProperty("output").GetString()!));
        Assert.False(File.Exists(Path.Combine(output, "broken.png")));
    }

    [Fact]
    public void FrameOptionChoosesTheDicomFrame()
    {
        var file = TestData.PathOf("dicom", "SC_rgb_rle_16bit_2frame.dcm");
        var result = CliRunner.Run("preprocess", file, "--out", folder.Path, "--frame", "1");
        Assert.True(result.ExitCode == 0, result.Error);
        // Frame 1 is frame 0 inverted (65535 − v): its 8-bit rendering is 255 − the reference, and the resize commutes with it.
        var inverted = ReferenceTensors.Dicom.U8("SC_rgb.rgb224").Select(v => (byte)(255 - v)).ToArray();
        var written = DecodePng(folder.File("SC_rgb_rle_16bit_2frame.png"));
        Assert.Equal(inverted, written);
    }

    [Fact]
    public void HelpListsTheCommand() => Assert.Contains("preprocess", CliRunner.Run("--help").Output);
}
