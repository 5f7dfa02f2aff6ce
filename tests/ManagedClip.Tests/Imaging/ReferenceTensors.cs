using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text.Json;

namespace ManagedClip.Tests.Imaging;

/// <summary>
/// Reads the U8 and F32 tensors of <c>preprocess.safetensors</c> for the imaging tests. Kept here (read whole,
/// tiny) so the imaging tests do not depend on which dtypes <c>IO/SafeTensorsFile</c> supports.
/// </summary>
internal sealed class ReferenceTensors
{
    private readonly byte[] data;
    private readonly Dictionary<string, (string DType, int[] Shape, int Begin, int End)> entries = new();

    internal ReferenceTensors(string path)
    {
        data = File.ReadAllBytes(path);
        int headerLength = checked((int)BinaryPrimitives.ReadUInt64LittleEndian(data));
        using var header = JsonDocument.Parse(data.AsMemory(8, headerLength));
        foreach (var tensor in header.RootElement.EnumerateObject())
        {
            if (tensor.Name == "__metadata__") continue;
            var offsets = tensor.Value.GetProperty("data_offsets").EnumerateArray().Select(e => e.GetInt32()).ToArray();
            entries[tensor.Name] = (tensor.Value.GetProperty("dtype").GetString()!,
                tensor.Value.GetProperty("shape").EnumerateArray().Select(e => e.GetInt32()).ToArray(),
                8 + headerLength + offsets[0], 8 + headerLength + offsets[1]);
        }
    }

    private static readonly Lazy<ReferenceTensors> preprocess = new(() => new(TestData.File("reference", "preprocess.safetensors")));
    private static readonly Lazy<ReferenceTensors> dicom = new(() => new(TestData.File("reference", "dicom", "dicom.safetensors")));

    public static ReferenceTensors Preprocess => preprocess.Value;

    /// <summary><c>dicom/dicom.safetensors</c>: per file <c>pixels</c> (U8, U16 or I16), <c>rendered</c> and <c>rgb224</c> (U8).</summary>
    public static ReferenceTensors Dicom => dicom.Value;

    public bool Contains(string name) => entries.ContainsKey(name);

    public int[] Shape(string name) => entries[name].Shape;

    /// <summary>A tensor's dtype name and its bytes as stored (little endian), whatever the dtype.</summary>
    public (string DType, byte[] Bytes) RawBytes(string name)
    {
        var (dtype, _, begin, end) = entries[name];
        return (dtype, data[begin..end]);
    }

    public byte[] U8(string name)
    {
        var (dtype, _, begin, end) = entries[name];
        Assert.Equal("U8", dtype);
        return data[begin..end];
    }

    /// <summary>An integer tensor (U8, U16 or I16) widened to int, with its dtype.</summary>
    public (string DType, int[] Values) Integers(string name)
    {
        var (dtype, _, begin, end) = entries[name];
        var bytes = data.AsSpan(begin, end - begin);
        int[] values = dtype switch
        {
            "U8" => bytes.ToArray().Select(b => (int)b).ToArray(),
            "U16" => MemoryMarshal.Cast<byte, ushort>(bytes).ToArray().Select(v => (int)v).ToArray(),
            "I16" => MemoryMarshal.Cast<byte, short>(bytes).ToArray().Select(v => (int)v).ToArray(),
            _ => throw new InvalidDataException($"{name}: dtype {dtype} is not an integer type read here"),
        };
        return (dtype, values);
    }

    public float[] F32(string name)
    {
        var (dtype, _, begin, end) = entries[name];
        Assert.Equal("F32", dtype);
        return MemoryMarshal.Cast<byte, float>(data.AsSpan(begin, end - begin)).ToArray();
    }
}

/// <summary>One row of <c>images/images.json</c>.</summary>
public sealed record ReferenceImage(string Name, string File, string PilMode, int Width, int Height,
    int ResizeWidth, int ResizeHeight, int CropLeft, int CropTop)
{
    private static readonly Lazy<List<ReferenceImage>> all = new(Load);

    public static IReadOnlyList<ReferenceImage> All => all.Value;

    public string Path => System.IO.Path.Combine(TestData.Images, File);

    public override string ToString() => Name;

    private static List<ReferenceImage> Load()
    {
        using var json = JsonDocument.Parse(System.IO.File.ReadAllBytes(TestData.File("reference", "images", "images.json")));
        return json.RootElement.EnumerateArray().Select(e => new ReferenceImage(
            e.GetProperty("name").GetString()!, e.GetProperty("file").GetString()!, e.GetProperty("pil_mode").GetString()!,
            e.GetProperty("width").GetInt32(), e.GetProperty("height").GetInt32(),
            e.GetProperty("resize_to_wh")[0].GetInt32(), e.GetProperty("resize_to_wh")[1].GetInt32(),
            e.GetProperty("crop_left_top")[0].GetInt32(), e.GetProperty("crop_left_top")[1].GetInt32())).ToList();
    }
}
