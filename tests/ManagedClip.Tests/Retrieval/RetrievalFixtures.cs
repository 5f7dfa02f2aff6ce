using ManagedClip.Retrieval;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace ManagedClip.Tests.Retrieval;

/// <summary>Image folders and index read-back shared by the retrieval tests.</summary>
internal static class RetrievalFixtures
{
    /// <summary>
    /// Writes <paramref name="count"/> distinct small PNGs (random pixels from <paramref name="seed"/>) spread over
    /// three sub-folders, so sharding and ordering have something to do. Returns their relative paths.
    /// </summary>
    public static List<string> WriteImages(string folder, int count, int seed, int side = 24)
    {
        var random = new Random(seed);
        var paths = new List<string>();
        for (int i = 0; i < count; i++)
        {
            var relative = $"{"abc"[i % 3]}/img{seed}_{i:D4}.png";
            var full = Path.Combine(folder, relative);
            Directory.CreateDirectory(Path.GetDirectoryName(full)!);
            using var image = new Image<Rgb24>(side, side);
            for (int y = 0; y < side; y++)
                for (int x = 0; x < side; x++)
                    image[x, y] = new Rgb24((byte)random.Next(256), (byte)random.Next(256), (byte)random.Next(256));
            image.SaveAsPng(full);
            paths.Add(relative);
        }
        return paths;
    }

    /// <summary>An index's live rows, by path: metadata and the stored vector's bytes (what "bitwise" compares).</summary>
    public static SortedDictionary<string, (IndexRow Row, byte[] Vector)> ReadLiveRows(string folder)
    {
        var manifest = IndexManifest.Load(folder);
        var result = new SortedDictionary<string, (IndexRow, byte[])>(StringComparer.Ordinal);
        foreach (var part in manifest.Parts)
        {
            var rows = PartMetadata.ReadAll(Path.Combine(folder, part.ParquetName), part.Rows);
            using var matrix = IndexParts.OpenMatrix(folder, part, manifest.EmbeddingSize, manifest.DType);
            int bytes = manifest.EmbeddingSize * (manifest.DType == EmbeddingDType.Float16 ? 2 : 4);
            for (long r = 0; r < part.Rows; r++)
            {
                if (part.Deleted.Contains(r)) continue;
                byte[] vector;
                unsafe { vector = new ReadOnlySpan<byte>(matrix.RowPointer(r), bytes).ToArray(); }
                Assert.True(result.TryAdd(rows[r].Path, (rows[r], vector)), $"{rows[r].Path} has two live rows");
            }
        }
        return result;
    }

    /// <summary>Compares two indexes row by row (paths, metadata, vector bits), naming the first difference.</summary>
    public static void AssertSameRows(string expectedFolder, string actualFolder)
    {
        var expected = ReadLiveRows(expectedFolder);
        var actual = ReadLiveRows(actualFolder);
        Assert.Equal(expected.Keys, actual.Keys);
        foreach (var (path, (row, vector)) in expected)
        {
            var (otherRow, otherVector) = actual[path];
            Assert.Equal(row, otherRow);
            Assert.True(vector.AsSpan().SequenceEqual(otherVector), $"{path}: the embedding differs between {expectedFolder} and {actualFolder}");
        }
    }
}
