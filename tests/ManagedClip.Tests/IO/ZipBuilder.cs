using System.Buffers.Binary;
using System.Text;

namespace ManagedClip.Tests.IO;

/// <summary>
/// Writes small stored (uncompressed) zip archives laid out like torch.save's: optional 64-byte data alignment via a
/// padding extra field, and optionally zip64 end records and zip64 extra fields in the central directory.
/// </summary>
internal sealed class ZipBuilder
{
    private readonly List<(string Name, byte[] Data)> entries = [];

    public bool Zip64EndRecords { get; init; } = true;
    public bool Zip64ExtraFields { get; init; }

    public ZipBuilder Add(string name, byte[] data) { entries.Add((name, data)); return this; }

    /// <summary>A torch-style checkpoint: &lt;prefix&gt;/data.pkl, &lt;prefix&gt;/data/&lt;key&gt; storages, &lt;prefix&gt;/version.</summary>
    public static byte[] Checkpoint(byte[] pickle, params (string Key, byte[] Data)[] storages)
    {
        var zip = new ZipBuilder().Add("archive/data.pkl", pickle);
        foreach (var (key, data) in storages) zip.Add("archive/data/" + key, data);
        return zip.Add("archive/version", "3\n"u8.ToArray()).ToArray();
    }

    public byte[] ToArray()
    {
        var output = new MemoryStream();
        var offsets = new List<long>();
        foreach (var (name, data) in entries)
        {
            offsets.Add(output.Position);
            var nameBytes = Encoding.UTF8.GetBytes(name);
            // Pad with an extra field (id 'FB', as torch does) so the data starts on a 64-byte boundary.
            long unpadded = output.Position + 30 + nameBytes.Length + 4;
            int padding = (int)((64 - unpadded % 64) % 64);
            var w = new BinaryWriter(output);
            w.Write(0x04034b50u); w.Write((ushort)20); w.Write((ushort)0); w.Write((ushort)0); w.Write(0u); w.Write(0u);
            w.Write((uint)data.Length); w.Write((uint)data.Length); w.Write((ushort)nameBytes.Length); w.Write((ushort)(4 + padding));
            w.Write(nameBytes); w.Write((ushort)0x4246); w.Write((ushort)padding); w.Write(new byte[padding]);
            w.Write(data);
        }
        long directoryStart = output.Position;
        var writer = new BinaryWriter(output);
        for (int i = 0; i < entries.Count; i++)
        {
            var (name, data) = entries[i];
            var nameBytes = Encoding.UTF8.GetBytes(name);
            bool z64 = Zip64ExtraFields;
            writer.Write(0x02014b50u); writer.Write((ushort)45); writer.Write((ushort)45); writer.Write((ushort)0); writer.Write((ushort)0);
            writer.Write(0u); writer.Write(0u);
            writer.Write(z64 ? 0xFFFFFFFFu : (uint)data.Length); writer.Write(z64 ? 0xFFFFFFFFu : (uint)data.Length);
            writer.Write((ushort)nameBytes.Length); writer.Write((ushort)(z64 ? 28 : 0)); writer.Write((ushort)0);
            writer.Write((ushort)0); writer.Write((ushort)0); writer.Write(0u);
            writer.Write(z64 ? 0xFFFFFFFFu : (uint)offsets[i]);
            writer.Write(nameBytes);
            if (z64)
            {
                writer.Write((ushort)1); writer.Write((ushort)24);
                writer.Write((ulong)data.Length); writer.Write((ulong)data.Length); writer.Write((ulong)offsets[i]);
            }
        }
        long directorySize = output.Position - directoryStart;
        if (Zip64EndRecords)
        {
            long record = output.Position;
            writer.Write(0x06064b50u); writer.Write(44UL); writer.Write((ushort)45); writer.Write((ushort)45); writer.Write(0u); writer.Write(0u);
            writer.Write((ulong)entries.Count); writer.Write((ulong)entries.Count); writer.Write((ulong)directorySize); writer.Write((ulong)directoryStart);
            writer.Write(0x07064b50u); writer.Write(0u); writer.Write((ulong)record); writer.Write(1u);
        }
        writer.Write(0x06054b50u); writer.Write((ushort)0); writer.Write((ushort)0);
        writer.Write((ushort)entries.Count); writer.Write((ushort)entries.Count);
        writer.Write((uint)directorySize); writer.Write((uint)directoryStart); writer.Write((ushort)0);
        writer.Flush();
        return output.ToArray();
    }

    /// <summary>Little-endian float32 bytes.</summary>
    public static byte[] Floats(params float[] values)
    {
        var bytes = new byte[values.Length * 4];
        for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(4 * i), values[i]);
        return bytes;
    }
}
