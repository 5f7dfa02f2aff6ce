using System.Text.Json;

namespace ManagedClip.Tests.Imaging.Dicom;

/// <summary>One entry of <c>reference/dicom/manifest.json</c>: a DICOM file, what it holds, and its reference tensors.</summary>
public sealed record DicomReferenceFile(
    string Stem, string File, bool Required, string TransferSyntaxUid, string TransferSyntaxName, int Rows, int Columns,
    int Frames, string Photometric, int BitsAllocated, bool Signed,
    string PixelsTensor, string PixelsDType, int[] PixelsShape, string RenderedTensor, int[] RenderedShape, string Rgb224Tensor)
{
    private static readonly Lazy<List<DicomReferenceFile>> all = new(Load);

    public static IReadOnlyList<DicomReferenceFile> All => all.Value;

    public static DicomReferenceFile Get(string stem) => All.Single(f => f.Stem == stem);

    public string Path => System.IO.Path.Combine(TestData.Dicom, File);

    public override string ToString() => Stem;

    private static List<DicomReferenceFile> Load()
    {
        using var json = JsonDocument.Parse(System.IO.File.ReadAllBytes(TestData.File("reference", "dicom", "manifest.json")));
        return json.RootElement.GetProperty("files").EnumerateArray().Select(e =>
        {
            var dicom = e.GetProperty("dicom");
            int[] Shape(string name) => e.GetProperty(name).EnumerateArray().Select(v => v.GetInt32()).ToArray();
            return new DicomReferenceFile(
                e.GetProperty("stem").GetString()!, e.GetProperty("file").GetString()!, e.GetProperty("required").GetBoolean(),
                dicom.GetProperty("transfer_syntax_uid").GetString()!, dicom.GetProperty("transfer_syntax_name").GetString()!,
                dicom.GetProperty("rows").GetInt32(), dicom.GetProperty("columns").GetInt32(), dicom.GetProperty("frames").GetInt32(),
                dicom.GetProperty("photometric").GetString()!, dicom.GetProperty("bits_allocated").GetInt32(),
                dicom.GetProperty("pixel_representation").GetInt32() == 1,
                e.GetProperty("pixels_tensor").GetString()!, e.GetProperty("pixels_dtype").GetString()!, Shape("pixels_shape"),
                e.GetProperty("rendered_tensor").GetString()!, Shape("rendered_shape"), e.GetProperty("rgb224_tensor").GetString()!);
        }).ToList();
    }
}
