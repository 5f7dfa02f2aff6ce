namespace ManagedClip.Imaging.JpegLs;

/// <summary>
/// Thrown inside the JPEG-LS decoder for a stream it cannot decode; <see cref="JpegLsDecoder.Decode"/> turns it
/// into the one-line <see cref="InvalidDataException"/> that names the input. The message is in the user's terms.
/// </summary>
internal sealed class JpegLsException(string message) : Exception(message)
{
    /// <summary>The data ended before the scan did.</summary>
    public static JpegLsException Truncated(string where) => new($"truncated JPEG-LS stream: the data ends {where}");

    /// <summary>The scan's bits make no sense (damaged data).</summary>
    public static JpegLsException Damaged(string what) => new($"damaged JPEG-LS scan: {what}");
}
