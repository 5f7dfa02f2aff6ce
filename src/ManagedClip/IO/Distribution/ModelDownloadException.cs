namespace ManagedClip.IO.Distribution;

/// <summary>
/// A model file could not be downloaded or did not verify. The message names the file and URL and says whether
/// a partial download was kept (a rerun resumes it) or removed.
/// </summary>
public sealed class ModelDownloadException : IOException
{
    /// <summary>Creates the exception with a complete, user-facing message.</summary>
    public ModelDownloadException(string message, Exception? innerException = null) : base(message, innerException) { }
}
