namespace ManagedClip.IO.Distribution;

/// <summary>
/// The environment variables huggingface_hub users set, read the way huggingface_hub reads them, so a machine set up
/// for Python needs nothing new:
/// <list type="bullet">
/// <item><c>HF_ENDPOINT</c>: the hub's address (a mirror), default https://huggingface.co;</item>
/// <item><c>HF_TOKEN</c>: an access token, else the token <c>huggingface-cli login</c> saved in
/// <c>$HF_TOKEN_PATH</c> (default <c>$HF_HOME/token</c>, <c>~/.cache/huggingface/token</c>);</item>
/// <item><c>HF_HUB_OFFLINE</c>: 1/true/yes/on forbids every request; only files already in the caches are used.</item>
/// </list>
/// </summary>
public static class HubEnvironment
{
    /// <summary>The mirror variable huggingface_hub reads.</summary>
    public const string EndpointVariable = "HF_ENDPOINT";

    /// <summary>The access-token variable.</summary>
    public const string TokenVariable = "HF_TOKEN";

    /// <summary>The offline switch.</summary>
    public const string OfflineVariable = "HF_HUB_OFFLINE";

    /// <summary><c>$HF_ENDPOINT</c>, or null when unset or blank.</summary>
    public static string? Endpoint => NonBlank(Environment.GetEnvironmentVariable(EndpointVariable))?.Trim();

    /// <summary>True when <c>HF_HUB_OFFLINE</c> is 1, true, yes or on (any case), as huggingface_hub decides.</summary>
    public static bool Offline =>
        Environment.GetEnvironmentVariable(OfflineVariable)?.Trim().ToUpperInvariant() is "1" or "TRUE" or "YES" or "ON";

    /// <summary><c>$HF_TOKEN</c>, else the first line of the saved token file; null when there is neither.</summary>
    public static string? Token
    {
        get
        {
            var token = NonBlank(Environment.GetEnvironmentVariable(TokenVariable));
            if (token is not null) return token.Trim();
            var path = NonBlank(Environment.GetEnvironmentVariable("HF_TOKEN_PATH")) ?? Path.Combine(CachePaths.HuggingFaceHome, "token");
            try
            {
                // A token is one short line; anything larger is not a token file.
                var info = new FileInfo(path);
                if (!info.Exists || info.Length > 4096) return null;
                return NonBlank(File.ReadLines(path).FirstOrDefault())?.Trim();
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                return null;
            }
        }
    }

    private static string? NonBlank(string? value) => string.IsNullOrWhiteSpace(value) ? null : value;
}
