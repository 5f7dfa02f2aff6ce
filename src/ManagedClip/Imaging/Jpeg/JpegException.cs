namespace ManagedClip.Imaging.Jpeg;

/// <summary>
/// Thrown inside the decoder for a file it cannot decode; <see cref="JpegDecoder.Decode"/> turns it into the
/// one-line <see cref="InvalidDataException"/> that names the input. The message is in the user's terms.
/// </summary>
internal sealed class JpegException(string message, bool truncated = false) : Exception(message)
{
    /// <summary>True when the data ended early (where libjpeg would wait for more and Pillow reports truncation).</summary>
    public bool IsTruncation { get; } = truncated;

    /// <summary>Where libjpeg (and so Pillow) would report "image file is truncated".</summary>
    public static JpegException Truncated(string where) =>
        new($"truncated JPEG: the data ends {where} (image file is truncated)", truncated: true);
}
