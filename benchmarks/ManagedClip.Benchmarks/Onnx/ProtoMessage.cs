namespace ManagedClip.Benchmarks.Onnx;

/// <summary>
/// One protocol-buffers message being encoded: the handful of wire-format pieces ONNX files need
/// (varint, fixed32 float, length-delimited bytes/strings/sub-messages). Fields are encoded as they are added;
/// large byte payloads (tensor data) are kept by reference and only copied when the message is written, so a
/// graph of several hundred megabytes is never assembled into one array.
/// </summary>
/// <remarks>
/// Wire format: every field is a key <c>(fieldNumber &lt;&lt; 3) | wireType</c> as a varint, then the value:
/// wire type 0 = varint, 5 = 4 little-endian bytes, 2 = varint length + that many bytes. A sub-message's
/// length must be known when its parent writes it, so a message is frozen once it is added to a parent.
/// </remarks>
internal sealed class ProtoMessage
{
    private const int WireVarint = 0;
    private const int WireLengthDelimited = 2;
    private const int WireFixed32 = 5;

    // Each part is an already-encoded head (key, and length for length-delimited fields) followed by
    // either nothing, a byte payload, or a child message.
    private readonly List<(byte[] Head, byte[]? Payload, ProtoMessage? Child)> parts = new();
    private bool frozen;

    /// <summary>Encoded size in bytes of everything added so far.</summary>
    public long Size { get; private set; }

    /// <summary>An int32/int64/enum field (negative values take 10 bytes, as protobuf specifies).</summary>
    public ProtoMessage Varint(int field, long value)
    {
        var head = new List<byte>(12);
        AppendVarint(head, Key(field, WireVarint));
        AppendVarint(head, unchecked((ulong)value));
        return Add(head.ToArray(), null, null, 0);
    }

    /// <summary>A float field (fixed32, little-endian IEEE 754).</summary>
    public ProtoMessage Float(int field, float value)
    {
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("protobuf fixed32 is little-endian.");
        var head = new List<byte>(9);
        AppendVarint(head, Key(field, WireFixed32));
        head.AddRange(BitConverter.GetBytes(value));
        return Add(head.ToArray(), null, null, 0);
    }

    /// <summary>A UTF-8 string field.</summary>
    public ProtoMessage String(int field, string value) => Bytes(field, System.Text.Encoding.UTF8.GetBytes(value));

    /// <summary>A bytes field. The array is referenced, not copied: do not change it afterwards.</summary>
    public ProtoMessage Bytes(int field, byte[] payload) => Add(LengthHead(field, payload.LongLength), payload, null, payload.LongLength);

    /// <summary>A sub-message field. The child is frozen: its size is part of this message's encoding now.</summary>
    public ProtoMessage Message(int field, ProtoMessage child)
    {
        child.frozen = true;
        return Add(LengthHead(field, child.Size), null, child, child.Size);
    }

    /// <summary>Writes the encoded message (without an outer length) to <paramref name="output"/>.</summary>
    public void WriteTo(Stream output)
    {
        foreach (var (head, payload, child) in parts)
        {
            output.Write(head);
            if (payload is not null) output.Write(payload);
            child?.WriteTo(output);
        }
    }

    private ProtoMessage Add(byte[] head, byte[]? payload, ProtoMessage? child, long payloadSize)
    {
        if (frozen) throw new InvalidOperationException("A protobuf message cannot change after it was added to its parent.");
        parts.Add((head, payload, child));
        Size += head.Length + payloadSize;
        return this;
    }

    private static byte[] LengthHead(int field, long length)
    {
        var head = new List<byte>(12);
        AppendVarint(head, Key(field, WireLengthDelimited));
        AppendVarint(head, (ulong)length);
        return head.ToArray();
    }

    private static ulong Key(int field, int wireType) => ((ulong)field << 3) | (uint)wireType;

    private static void AppendVarint(List<byte> bytes, ulong value)
    {
        // 7 bits per byte, least significant group first, high bit set on every byte but the last.
        while (value >= 0x80)
        {
            bytes.Add((byte)(value | 0x80));
            value >>= 7;
        }
        bytes.Add((byte)value);
    }
}
