namespace ManagedClip.IO.Distribution;

/// <summary>
/// A model file could not be downloaded or did not verify. The message names the file and URL and says whether
/// a partial download was kept (a rerun resumes it) or removed.
/// </summary>
public sealed class ModelDownloadException : IOException
{
    /// <summary>Creates the exception with a complete, user-facing message.</summary>
    public ModelDownloadException(string message, Exception? innerException = null) : base(message, innerException) { }

    /// <summary>
    /// True when the same request may well succeed later (a cut or refused connection, a timeout, HTTP 5xx, 408 or
    /// 429); false when retrying cannot help (404, 401, a wrong hash, an unknown host, offline mode).
    /// </summary>
    public bool IsTransient { get; init; }

    /// <summary>How long the server asked us to wait (its Retry-After header), when it said.</summary>
    public TimeSpan? RetryAfter { get; init; }
}
