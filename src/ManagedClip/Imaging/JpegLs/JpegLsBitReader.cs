using System.Numerics;
using System.Runtime.CompilerServices;

namespace ManagedClip.Imaging.JpegLs;

/// <summary>
/// Reads the bits of a JPEG-LS scan (T.87 §9.1, A.1). JPEG-LS does not stuff a zero byte after 0xFF as JPEG does:
/// after a data byte 0xFF the encoder inserts one zero bit, so the next byte carries only 7 data bits (its top bit
/// is the stuffed 0). An 0xFF followed by a byte with the top bit set is therefore a marker, and ends the segment.
/// </summary>
/// <remarks>
/// Past the end of the segment the reader supplies zero bits, counted in <c>padding</c>; a decode that uses one of
/// them read past the data (<see cref="ReadPastData"/>), and the scan decoder reports a truncated scan. Every read
/// is bounded (the Golomb prefix by LIMIT), so a damaged scan cannot loop.
/// </remarks>
internal ref struct JpegLsBitReader
{
    private readonly ReadOnlySpan<byte> data;
    private int position;    // next byte to load
    private ulong buffer;    // right-aligned: the next bit to read is bit (count − 1)
    private int count;       // bits held in buffer (at most 63)
    private int padding;     // zero bits appended after the segment ended (the last `padding` of `count`)
    private bool afterFF;    // the last byte loaded was 0xFF: the next one has a stuffed zero bit on top
    private int segmentEnd;  // where the marker ending the segment starts (data.Length until one is seen)

    public JpegLsBitReader(ReadOnlySpan<byte> data, int position)
    {
        this.data = data;
        this.position = position;
        segmentEnd = data.Length;
    }

    /// <summary>Whether a decode has used a zero bit from past the end of the segment.</summary>
    public readonly bool ReadPastData => count < padding;

    /// <summary>Makes at least 49 bits available (zeros past the end of the segment).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Fill()
    {
        while (count <= 48)
        {
            if (position >= segmentEnd)
            {
                buffer <<= 8;
                count += 8;
                padding += 8;
                continue;
            }
            byte value = data[position];
            if (afterFF)
            {
                // Top bit stuffed: 7 data bits. (A set top bit here would be a marker, caught when the FF was loaded.)
                buffer = (buffer << 7) | value;
                count += 7;
                afterFF = false;
                position++;
                continue;
            }
            if (value == 0xFF && (position + 1 >= data.Length || data[position + 1] >= 0x80))
            {
                segmentEnd = position; // a marker (or the data ends on a lone FF): the segment ends here
                continue;
            }
            buffer = (buffer << 8) | value;
            count += 8;
            afterFF = value == 0xFF;
            position++;
        }
    }

    /// <summary>One bit.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int ReadBit()
    {
        if (count == 0) Fill();
        count--;
        return (int)(buffer >> count) & 1;
    }

    /// <summary><paramref name="bits"/> bits (0..32), most significant first.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int ReadBits(int bits)
    {
        if (bits == 0) return 0;
        if (count < bits) Fill();
        count -= bits;
        return (int)((buffer >> count) & ((1UL << bits) - 1));
    }

    /// <summary>
    /// The number of 0 bits before the next 1 bit, which is consumed; at most <paramref name="maximum"/> zeros are
    /// read: a longer run gives <paramref name="maximum"/> + 1 (the caller reports a damaged code).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int ReadUnary(int maximum)
    {
        int zeros = 0;
        while (true)
        {
            if (count == 0) Fill();
            ulong held = buffer << (64 - count); // left-aligned; the bits below are zero
            int leading = BitOperations.LeadingZeroCount(held);
            if (leading < count)
            {
                zeros += leading;
                count -= leading + 1;
                return zeros > maximum ? maximum + 1 : zeros;
            }
            zeros += count;
            count = 0;
            if (zeros > maximum || padding > 0) return Math.Min(zeros, maximum + 1);
        }
    }

    /// <summary>
    /// Ends the segment: the bits left in the current byte are padding (T.87 A.1), and the bytes up to the next
    /// marker too. Returns the position of that marker's first 0xFF, or the end of the data.
    /// </summary>
    public int SkipToMarker()
    {
        buffer = 0;
        count = 0;
        padding = 0;
        afterFF = false;
        int at = Math.Min(position, segmentEnd);
        while (at < data.Length && !(data[at] == 0xFF && (at + 1 >= data.Length || data[at + 1] >= 0x80))) at++;
        position = segmentEnd = at;
        return at;
    }

    /// <summary>Starts reading a new segment at <paramref name="start"/> (after a restart marker).</summary>
    public void Restart(int start)
    {
        buffer = 0;
        count = 0;
        padding = 0;
        afterFF = false;
        position = start;
        segmentEnd = data.Length;
    }
}
