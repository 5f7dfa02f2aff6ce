using System.Security.Cryptography;

namespace ManagedClip.Retrieval;

/// <summary>The SHA-256 the index keeps of each file's content (what decides whether a touched file changed).</summary>
internal static class ContentHash
{
    /// <summary>Hex SHA-256 of the file's bytes, or null when it cannot be read.</summary>
    public static string? OfFileOrNull(string path)
    {
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1 << 16);
            return Convert.ToHexStringLower(SHA256.HashData(stream));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
