using System.Buffers.Binary;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace ManagedClip.Retrieval;

/// <summary>
/// Shard <see cref="Index"/> of <see cref="Count"/>: which files one worker of a sharded run embeds. A file belongs
/// to shard <c>uint64_be(sha256(utf8(relative path))[0..8]) mod Count</c>: the same on every machine and in every
/// run, whatever order a folder lists its files in, so N workers given 0/N … N−1/N cover every file exactly once.
/// </summary>
public readonly record struct Shard(int Index, int Count)
{
    /// <summary>The whole folder in one index (shard 0 of 1).</summary>
    public static Shard Whole => new(0, 1);

    /// <summary>True for a real split (more than one shard).</summary>
    public bool IsSharded => Count > 1;

    /// <summary>Parses "i/N" (0 ≤ i &lt; N ≤ 100000).</summary>
    public static Shard Parse(string text)
    {
        var parts = text.Split('/');
        if (parts.Length != 2
            || !int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out int index)
            || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out int count)
            || count < 1 || count > 100_000 || index >= count)
            throw new ArgumentException($"shard '{text}' is not i/N with 0 <= i < N (e.g. 0/4 … 3/4)");
        return new Shard(index, count);
    }

    /// <summary>The shard (0 … count−1) a relative path belongs to.</summary>
    public static int Of(string relativePath, int count)
    {
        if (count == 1) return 0;
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(Encoding.UTF8.GetBytes(relativePath), hash);
        return (int)(BinaryPrimitives.ReadUInt64BigEndian(hash) % (ulong)count);
    }

    /// <summary>True if this shard embeds the file at <paramref name="relativePath"/>.</summary>
    public bool Contains(string relativePath) => Of(relativePath, Count) == Index;

    /// <summary>The sub-folder a shard's index is written to: <c>shard-00002-of-00004</c>.</summary>
    public string FolderName => $"shard-{Index.ToString("D5", CultureInfo.InvariantCulture)}-of-{Count.ToString("D5", CultureInfo.InvariantCulture)}";

    /// <inheritdoc/>
    public override string ToString() => $"{Index.ToString(CultureInfo.InvariantCulture)}/{Count.ToString(CultureInfo.InvariantCulture)}";
}
