using System.Globalization;
using ManagedClip.Retrieval;

namespace ManagedClip.Benchmarks.Retrieval;

/// <summary>
/// Writes an index of random unit vectors directly in the index format (manifest, .npy + .parquet parts), as
/// `managedclip index` would lay it out, without a model: for search latency and memory at sizes no test corpus
/// reaches. Row paths are "synthetic/NNNNNNNNN.png".
/// </summary>
internal static class SyntheticIndex
{
    public static void Write(string folder, long rows, int width, EmbeddingDType dtype, long rowsPerPart, ulong seed, Shard shard = default)
    {
        if (shard.Count == 0) shard = Shard.Whole;
        if (Directory.Exists(folder)) throw new IOException($"{folder} exists; choose an empty place for the synthetic index");
        Directory.CreateDirectory(folder);
        var identity = new ModelIdentity(new string('5', 64), new string('a', 64), new string('b', 64), null, width, "synthetic");
        var manifest = new IndexManifest { Model = identity, DType = dtype, Root = "/synthetic", Shard = shard };
        var vector = new float[width];
        var state = seed | 1;
        var modified = new DateTime(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc);
        for (long first = 0; first < rows; first += rowsPerPart)
        {
            long count = Math.Min(rowsPerPart, rows - first);
            using var builder = new PartBuilder(folder, manifest.NewPartName(), count, width, dtype, identity.Id);
            for (long r = first; r < first + count; r++)
            {
                // xorshift64* → uniform in [-1, 1), then scaled to unit length: directions spread over the sphere well enough
                // for timing (a scan's cost does not depend on the values).
                double norm = 0;
                for (int i = 0; i < width; i++)
                {
                    state ^= state >> 12; state ^= state << 25; state ^= state >> 27;
                    float v = (float)((long)(state * 2685821657736338717UL) >> 11) / (1L << 52);
                    vector[i] = v;
                    norm += v * v;
                }
                float scale = (float)(1 / Math.Sqrt(norm));
                for (int i = 0; i < width; i++) vector[i] *= scale;
                builder.Add(new IndexRow($"synthetic/{r.ToString("D9", CultureInfo.InvariantCulture)}.png", 100_000 + r % 1000, modified, null, null), vector);
            }
            manifest.Parts.Add(builder.Complete());
        }
        manifest.Complete = true;
        manifest.Save(folder);
    }
}
