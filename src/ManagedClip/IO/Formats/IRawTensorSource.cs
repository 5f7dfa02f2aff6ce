namespace ManagedClip.IO.Formats;

/// <summary>A tensor store that can hand out each tensor's stored bytes unchanged (used to convert between formats).</summary>
internal interface IRawTensorSource
{
    /// <summary>The tensor's bytes as stored: little-endian, row-major, contiguous, in its own dtype.</summary>
    ReadOnlySpan<byte> RawBytes(string name);
}
