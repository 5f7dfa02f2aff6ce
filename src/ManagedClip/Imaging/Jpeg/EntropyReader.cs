using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace ManagedClip.Imaging.Jpeg;

/// <summary>
/// Reads an entropy-coded segment: bits for the Huffman decoders, bytes for the arithmetic decoder. A stuffed
/// FF 00 is a data byte 0xFF, any FF run before a marker is fill. A marker ends the segment: from there on the
/// reader supplies zero bits, as libjpeg's <c>jpeg_fill_bit_buffer</c> does, and remembers the marker for the
/// restart logic and for whatever follows the scan.
/// </summary>
/// <remarks>
/// libjpeg flags <c>insufficient_data</c> as soon as a decode needs one of those zero bits; the Huffman decoders
/// then leave the rest of the segment's MCUs zero. <see cref="ReadPastData"/> gives the same answer: the zero bits
/// are counted in <c>padding</c>, and they are the last ones in the bit buffer.
/// </remarks>
internal ref struct EntropyReader
{
    private readonly ReadOnlySpan<byte> data;
    private int position;   // next byte to load
    private ulong buffer;   // right-aligned: the next bit to read is bit (count − 1)
    private int count;      // bits held in buffer
    private int padding;    // zero bits appended after the segment ended (the last `padding` of `count`)
    private int markerEnd;  // position just after Marker

    public EntropyReader(ReadOnlySpan<byte> data, int position)
    {
        this.data = data;
        this.position = position;
    }

    /// <summary>The marker that ended the segment (libjpeg's <c>unread_marker</c>); 0 while data remains.</summary>
    public int Marker { get; private set; }

    /// <summary>Whether a decode has used a zero bit from past the end of the segment.</summary>
    public readonly bool ReadPastData => count < padding;

    // ---- bits (Huffman and lossless decoders) ----

    /// <summary>Makes at least 56 bits available (zeros past the segment's end).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Fill()
    {
        if (Marker == 0 && data.Length - position >= 8)
        {
            ulong word = BinaryPrimitives.ReadUInt64BigEndian(data[position..]);
            ulong inverted = ~word;
            if (((inverted - 0x0101010101010101UL) & ~inverted & 0x8080808080808080UL) == 0)
            {
                // No 0xFF among the next 8 bytes: take as many whole bytes as fit.
                int bytes = (63 - count) >> 3;
                if (bytes > 0)
                {
                    buffer = (buffer << (8 * bytes)) | (word >> (64 - 8 * bytes));
                    count += 8 * bytes;
                    position += bytes;
                }
                return;
            }
        }
        FillSlowly();
    }

    private void FillSlowly()
    {
        while (count <= 56)
        {
            int value = 0;
            if (Marker != 0)
            {
                padding += 8;
            }
            else
            {
                if (position >= data.Length) throw JpegException.Truncated("inside the compressed image data");
                value = data[position];
                if (value != 0xFF)
                {
                    position++;
                }
                else
                {
                    int p = position + 1;
                    while (p < data.Length && data[p] == 0xFF) p++;
                    if (p >= data.Length) throw JpegException.Truncated("inside the compressed image data");
                    if (data[p] == 0)
                    {
                        position = p + 1; // FF 00: a data byte 0xFF
                    }
                    else
                    {
                        Marker = data[p];
                        markerEnd = p + 1;
                        position = p - 1;
                        value = 0;
                        padding += 8;
                    }
                }
            }
            buffer = (buffer << 8) | (uint)value;
            count += 8;
        }
    }

    /// <summary>
    /// The bit buffer for a hot loop to keep in registers: the loop works on copies and calls <see cref="Refill"/>
    /// when fewer than 32 bits remain, then hands them back with <see cref="Return"/>.
    /// </summary>
    public readonly (ulong Bits, int Count) Borrow() => (buffer, count);

    /// <summary>Takes back a borrowed buffer, refills it (at least 56 bits) and lends it out again.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Refill(ref ulong bits, ref int bitCount)
    {
        buffer = bits;
        count = bitCount;
        Fill();
        bits = buffer;
        bitCount = count;
    }

    /// <summary>Takes back a borrowed buffer.</summary>
    public void Return(ulong bits, int bitCount)
    {
        buffer = bits;
        count = bitCount;
    }

    /// <summary>The next <paramref name="n"/> (≤ 24) bits without consuming them; call <see cref="Fill"/> first if fewer may be held.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public readonly int Peek(int n) => (int)(buffer >> (count - n)) & ((1 << n) - 1);

    /// <summary>Reads <paramref name="n"/> (0..16) bits as an unsigned number.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int ReadBits(int n)
    {
        if (count < n) Fill();
        count -= n;
        return (int)(buffer >> count) & ((1 << n) - 1);
    }

    /// <summary>Reads one bit.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int ReadBit()
    {
        if (count < 1) Fill();
        count--;
        return (int)(buffer >> count) & 1;
    }

    /// <summary>Decodes one Huffman symbol.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int DecodeSymbol(HuffmanTable table)
    {
        if (count < 32) Fill();
        int entry = table.Lookup[Peek(HuffmanTable.LookaheadBits)];
        if (entry != 0)
        {
            count -= entry >> 8;
            return entry & 0xFF;
        }
        return DecodeLongSymbol(table);
    }

    private int DecodeLongSymbol(HuffmanTable table)
    {
        var (symbol, length) = table.DecodeSlow(Peek(16), HuffmanTable.LookaheadBits + 1);
        count -= length;
        return symbol;
    }

    /// <summary>Reads a magnitude category's bits and extends the sign (T.81 F.2.2.1, "RECEIVE" + "EXTEND").</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int ReceiveExtend(int size)
    {
        if (size == 0) return 0;
        int bits = ReadBits(size);
        return HuffmanTable.Extend(bits, size);
    }

    // ---- bytes (arithmetic decoder) ----

    /// <summary>
    /// The next data byte for the arithmetic decoder; 0 once a marker has been reached (T.81 D.2.6: "the
    /// decoder ... reads zeros"), as libjpeg's <c>arith_decode</c> supplies.
    /// </summary>
    public int ReadByte()
    {
        if (Marker != 0) return 0;
        if (position >= data.Length) throw JpegException.Truncated("inside the compressed image data");
        int value = data[position];
        if (value != 0xFF)
        {
            position++;
            return value;
        }
        int p = position + 1;
        while (p < data.Length && data[p] == 0xFF) p++;
        if (p >= data.Length) throw JpegException.Truncated("inside the compressed image data");
        if (data[p] == 0)
        {
            position = p + 1;
            return 0xFF;
        }
        Marker = data[p];
        markerEnd = p + 1;
        position = p - 1;
        return 0;
    }

    // ---- segment boundaries ----

    /// <summary>
    /// At a restart point: drops buffered bits and finds the expected RSTn, recovering like libjpeg's
    /// <c>read_restart_marker</c> + <c>jpeg_resync_to_restart</c> when it is not next. Returns with
    /// <see cref="Marker"/> 0 when decoding can continue after a marker, or with a marker left unread (the next
    /// segment is then empty: all zero bits).
    /// </summary>
    public void ReadRestartMarker(int expected)
    {
        buffer = 0;
        count = 0;
        padding = 0;
        if (Marker == 0) TakeNextMarker(position);
        while (true)
        {
            int marker = Marker;
            if (marker == JpegMarker.Rst0 + expected)
            {
                ResumeAfterMarker();
                return;
            }
            // resync_to_restart: a non-marker code or a restart 1-2 behind → skip ahead to the next marker;
            // any other marker, or a restart 1-2 ahead → leave it for later (the segment reads as empty);
            // a restart further off → assume it is the one we want.
            int action;
            if (marker < JpegMarker.Sof0) action = 2;
            else if (!JpegMarker.IsRestart(marker)) action = 3;
            else if (marker == JpegMarker.Rst0 + ((expected + 1) & 7) || marker == JpegMarker.Rst0 + ((expected + 2) & 7)) action = 3;
            else if (marker == JpegMarker.Rst0 + ((expected - 1) & 7) || marker == JpegMarker.Rst0 + ((expected - 2) & 7)) action = 2;
            else action = 1;

            if (action == 1)
            {
                ResumeAfterMarker();
                return;
            }
            if (action == 3) return;
            TakeNextMarker(markerEnd);
        }
    }

    private void ResumeAfterMarker()
    {
        position = markerEnd;
        Marker = 0;
    }

    /// <summary>libjpeg's <c>next_marker</c> from <paramref name="start"/>: skips data bytes, fill bytes and FF 00 pairs.</summary>
    private void TakeNextMarker(int start)
    {
        var reader = new JpegReader(data) { Position = start };
        Marker = reader.NextMarker("inside the compressed image data");
        markerEnd = reader.Position;
        position = markerEnd - 2;
    }

    /// <summary>
    /// After a scan: the offset of the marker that follows it (the one that ended the data, or the next one after
    /// the bytes read), for the marker reader to continue from.
    /// </summary>
    public int MarkerOffsetAfterScan()
    {
        if (Marker == 0) TakeNextMarker(position);
        return markerEnd - 2;
    }
}
