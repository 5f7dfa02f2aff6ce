using System.Security.Cryptography;
using System.Text.Json;

namespace ManagedClip.Tests.Imaging.Jpeg;

/// <summary>One entry of <c>reference/jpeg/manifest.json</c>: a JPEG and what Pillow 9.4 / libjpeg-turbo 2.1.5 decode from it.</summary>
public sealed record JpegReferenceFile(
    string Stem, string File, string PilMode, int Width, int Height, string? DecodedTensor,
    IReadOnlyList<JpegReferenceTile> Tiles, string DecodedSha256, int BandRows, IReadOnlyList<string> BandSha256,
    string Rgb224Tensor, int ResizeWidth, int ResizeHeight, int CropLeft, int CropTop)
{
    private static readonly Lazy<List<JpegReferenceFile>> all = new(Load);
    private static readonly Lazy<ReferenceTensors> tensors = new(() => new(TestData.File("reference", "jpeg", "decoded.safetensors")));

    public static IReadOnlyList<JpegReferenceFile> All => all.Value;

    internal static ReferenceTensors Tensors => tensors.Value;

    public static JpegReferenceFile Named(string stem) => All.Single(f => f.Stem == stem);

    public string Path => System.IO.Path.Combine(TestData.Jpeg, File);

    public int Channels => PilMode switch { "L" => 1, "RGB" => 3, "CMYK" => 4, _ => throw new InvalidDataException(PilMode) };

    public override string ToString() => Stem;

    /// <summary>
    /// Compares a decoded buffer <c>[Height, Width, Channels]</c> with the reference: the whole tensor when stored,
    /// else the four corner tiles, the 16-row band digests (naming the first band that differs) and the whole digest.
    /// </summary>
    public void AssertDecodedEqual(byte[] actual)
    {
        int rowBytes = Width * Channels;
        Assert.Equal(Height * rowBytes, actual.Length);
        if (DecodedTensor is not null)
        {
            PreprocessReferenceTests.AssertBytesEqual(Tensors.U8(DecodedTensor), actual, $"{Stem} decoded");
            return;
        }
        foreach (var tile in Tiles)
        {
            var expected = Tensors.U8(tile.Tensor);
            var region = new byte[tile.H * tile.W * Channels];
            for (int y = 0; y < tile.H; y++)
                actual.AsSpan((tile.Y + y) * rowBytes + tile.X * Channels, tile.W * Channels).CopyTo(region.AsSpan(y * tile.W * Channels));
            PreprocessReferenceTests.AssertBytesEqual(expected, region, $"{Stem} tile at y={tile.Y}, x={tile.X}");
        }
        for (int band = 0; band < BandSha256.Count; band++)
        {
            int first = band * BandRows, rows = Math.Min(BandRows, Height - first);
            var digest = Convert.ToHexStringLower(SHA256.HashData(actual.AsSpan(first * rowBytes, rows * rowBytes)));
            Assert.True(digest == BandSha256[band], $"{Stem}: rows {first}..{first + rows - 1} (band {band}) differ from Pillow's");
        }
        Assert.Equal(DecodedSha256, Convert.ToHexStringLower(SHA256.HashData(actual)));
    }

    private static List<JpegReferenceFile> Load()
    {
        using var json = JsonDocument.Parse(System.IO.File.ReadAllBytes(TestData.File("reference", "jpeg", "manifest.json")));
        return json.RootElement.GetProperty("files").EnumerateArray().Select(e => new JpegReferenceFile(
            e.GetProperty("stem").GetString()!,
            e.GetProperty("file").GetString()!,
            e.GetProperty("pil_mode").GetString()!,
            e.GetProperty("width").GetInt32(),
            e.GetProperty("height").GetInt32(),
            e.GetProperty("decoded_tensor").ValueKind == JsonValueKind.Null ? null : e.GetProperty("decoded_tensor").GetString(),
            // Tiles and band digests are given only for the files whose decoded tensor is not stored.
            e.TryGetProperty("decoded_tiles", out var tiles) && tiles.ValueKind == JsonValueKind.Array
                ? tiles.EnumerateArray().Select(t => new JpegReferenceTile(
                    t.GetProperty("tensor").GetString()!, t.GetProperty("y").GetInt32(), t.GetProperty("x").GetInt32(),
                    t.GetProperty("h").GetInt32(), t.GetProperty("w").GetInt32())).ToList()
                : [],
            e.GetProperty("decoded_sha256").GetString()!,
            e.TryGetProperty("band_rows", out var bandRows) ? bandRows.GetInt32() : 0,
            e.TryGetProperty("band_sha256", out var bands) ? bands.EnumerateArray().Select(b => b.GetString()!).ToList() : [],
            e.GetProperty("rgb224_tensor").GetString()!,
            e.GetProperty("resize_to_wh")[0].GetInt32(), e.GetProperty("resize_to_wh")[1].GetInt32(),
            e.GetProperty("crop_left_top")[0].GetInt32(), e.GetProperty("crop_left_top")[1].GetInt32())).ToList();
    }
}

public sealed record JpegReferenceTile(string Tensor, int Y, int X, int H, int W);
