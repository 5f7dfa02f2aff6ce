namespace ManagedClip.Imaging;

/// <summary>
/// Builds the exception for an input that cannot become a model input (empty, truncated, not an image,
/// unsupported, over the pixel limit): an <see cref="InvalidDataException"/> (sealed, so not subclassed) whose
/// one-line message starts with the file name.
/// </summary>
internal static class InvalidImage
{
    public static InvalidDataException Error(string sourceName, string problem, Exception? inner = null) =>
        new($"{sourceName}: {problem}", inner);

    /// <summary>
    /// The one-line error of an input that failed, naming it: decoders report bad input in several exception types,
    /// most of them already naming the input; the others get its name in front.
    /// </summary>
    public static string Describe(Exception error, string sourceName) =>
        error.Message.Contains(sourceName, StringComparison.Ordinal) ? error.Message : $"{sourceName}: {error.Message}";
}
