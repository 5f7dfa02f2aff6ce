using System.Buffers.Binary;
using System.Text.Json;
using ManagedClip.Imaging.Jpeg;
using Xunit.Abstractions;

namespace ManagedClip.Tests.Imaging.Jpeg;

/// <summary>
/// The JPEG streams inside the DICOM reference files (<c>reference/dicom</c>): 12-bit extended DCT and lossless
/// frames (GDCM's IJG-derived codecs decoded the reference, cross-checked with dcmtk) and 8-bit baseline frames
/// (libjpeg-turbo, before colour conversion). Each stream is taken from the file's encapsulated pixel data (its
/// fragments joined) and decoded with <see cref="JpegColorOutput.Raw"/>; the stored values must equal the
/// reference <c>pixels</c> exactly (tolerance 0: lossless coding and integer IDCT arithmetic).
/// </summary>
public class JpegInDicomTests(ITestOutputHelper output)
{
    private static readonly Lazy<ReferenceTensors> Tensors = new(() => new(TestData.File("reference", "dicom", "dicom.safetensors")));

    /// <summary>Every DICOM file whose transfer syntax is JPEG baseline (.50), extended (.51) or lossless (.57, .70).</summary>
    public static TheoryData<string> JpegFiles()
    {
        using var json = JsonDocument.Parse(File.ReadAllBytes(TestData.File("reference", "dicom", "manifest.json")));
        var names = new TheoryData<string>();
        foreach (var f in json.RootElement.GetProperty("files").EnumerateArray())
        {
            string syntax = f.GetProperty("dicom").GetProperty("transfer_syntax_uid").GetString()!;
            if (syntax is "1.2.840.10008.1.2.4.50" or "1.2.840.10008.1.2.4.51" or "1.2.840.10008.1.2.4.57" or "1.2.840.10008.1.2.4.70")
                names.Add(f.GetProperty("stem").GetString()!);
        }
        return names;
    }

    [Fact]
    public void ReferenceHasEighteenJpegFiles() => Assert.Equal(18, JpegFiles().Count); // baseline 7, extended 2, lossless 5 + 4

    [Theory]
    [MemberData(nameof(JpegFiles))]
    public void StoredValuesMatchReference(string stem)
    {
        using var json = JsonDocument.Parse(File.ReadAllBytes(TestData.File("reference", "dicom", "manifest.json")));
        var entry = json.RootElement.GetProperty("files").EnumerateArray().Single(f => f.GetProperty("stem").GetString() == stem);
        var path = TestData.File("reference", "dicom", entry.GetProperty("file").GetString()!);
        var stream = EncapsulatedFirstFrame(File.ReadAllBytes(path));

        var image = JpegDecoder.Decode(stream, path, 100_000_000, JpegColorOutput.Raw);
        output.WriteLine(image.ToString());
        var (dtype, expected) = Tensors.Value.RawBytes(entry.GetProperty("pixels_tensor").GetString()!);
        byte[] actual = dtype == "U8"
            ? image.Bytes!
            : System.Runtime.InteropServices.MemoryMarshal.AsBytes(image.Samples.AsSpan()).ToArray(); // int16 tensors hold the same 16-bit patterns
        PreprocessReferenceTests.AssertBytesEqual(expected, actual, $"{stem} pixels");
    }

    /// <summary>
    /// The fragments of the first frame of a little-endian encapsulated Pixel Data element (7FE0,0010), joined:
    /// items (FFFE,E000) after the Basic Offset Table item up to the sequence delimiter. Enough for these files,
    /// which hold one frame each; the DICOM reader proper lives elsewhere.
    /// </summary>
    internal static byte[] EncapsulatedFirstFrame(byte[] file)
    {
        int tag = file.AsSpan().LastIndexOf(new byte[] { 0xE0, 0x7F, 0x10, 0x00 });
        Assert.True(tag >= 0, "no Pixel Data element");
        int p = tag + 4;
        if (file[p] == (byte)'O') p += 4; // explicit VR: "OB" + 2 reserved bytes
        Assert.Equal(0xFFFFFFFFu, BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(p)));
        p += 4;
        var frame = new List<byte>();
        bool offsetTable = true;
        while (BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(p)) == 0xE000FFFEu)
        {
            int length = (int)BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(p + 4));
            if (!offsetTable) frame.AddRange(file.AsSpan(p + 8, length).ToArray());
            offsetTable = false;
            p += 8 + length;
        }
        return frame.ToArray();
    }
}
