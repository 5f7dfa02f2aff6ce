namespace ManagedClip.IO.Distribution;

/// <summary>How far the download of one file has come.</summary>
/// <param name="FileName">The manifest name of the file being fetched.</param>
/// <param name="BytesDone">Bytes of the file on disk so far (a resumed download starts above zero).</param>
/// <param name="TotalBytes">The file's full length, or null when neither the manifest nor the server says.</param>
/// <param name="Note">A one-line event worth showing, e.g. that a failed request is about to be retried; else null.</param>
public readonly record struct DownloadProgress(string FileName, long BytesDone, long? TotalBytes, string? Note = null);
