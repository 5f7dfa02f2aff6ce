namespace ManagedClip.Cli;

/// <summary>
/// Which files the commands treat as images. A file named on the command line is always taken (its content decides
/// whether it decodes); a folder stands for the files under it, recursively, whose extension is an image format's,
/// in ordinal path order. <c>index</c> and <c>classify</c> use the same rule.
/// </summary>
internal static class ImageFiles
{
    // Files looked for under a folder; anything else there is ignored, not reported.
    private static readonly HashSet<string> Extensions = new(StringComparer.OrdinalIgnoreCase)
    {
        ".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".tga", ".pbm",
    };

    /// <summary>Whether a file under a folder is taken as an image.</summary>
    public static bool HasImageExtension(string path) => Extensions.Contains(Path.GetExtension(path));

    /// <summary>Deepest folder nesting walked; deeper folders are not entered.</summary>
    private const int MaxDepth = 64;

    /// <summary>The image files under <paramref name="folder"/>, recursively, sorted by path (ordinal).</summary>
    /// <remarks>
    /// Symbolic links to folders are followed (datasets are often linked in), but each real folder is walked once,
    /// so a link loop (<c>a/loop → ..</c>) ends the walk there instead of nesting until the system refuses;
    /// unreadable folders are passed over.
    /// </remarks>
    public static List<string> Under(string folder)
    {
        var files = new List<string>();
        var walked = new HashSet<string>(StringComparer.Ordinal);
        // (the path as the user will see it, the folder it really is, depth)
        var pending = new Stack<(string Shown, string Real, int Depth)>();
        pending.Push((folder, RealFolder(Path.GetFullPath(folder)), 0));
        while (pending.TryPop(out var current))
        {
            if (!walked.Add(current.Real)) continue;
            try
            {
                files.AddRange(Directory.EnumerateFiles(current.Shown).Where(HasImageExtension));
                if (current.Depth == MaxDepth) continue;
                foreach (var sub in Directory.EnumerateDirectories(current.Shown))
                    pending.Push((sub, RealFolder(Path.Combine(current.Real, Path.GetFileName(sub))), current.Depth + 1));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
            }
        }
        files.Sort(StringComparer.Ordinal);
        return files;
    }

    /// <summary>
    /// The folder a path names once its last component's links are followed (a relative target is taken from the
    /// folder that holds the link, as the system does). The parents are already real, as the walk builds them.
    /// </summary>
    private static string RealFolder(string path)
    {
        for (int hops = 0; hops < 40 && new DirectoryInfo(path).LinkTarget is { } target; hops++)
            path = Path.GetFullPath(target, Path.GetDirectoryName(path)!);
        return Path.TrimEndingDirectorySeparator(path);
    }

    /// <summary>
    /// The files and folders given, expanded: files as given, folders replaced by their images. A path that is
    /// neither is kept, so that it is reported as missing in its place rather than silently dropped.
    /// </summary>
    public static List<string> Expand(IEnumerable<string> paths)
    {
        var files = new List<string>();
        foreach (var path in paths)
        {
            if (Directory.Exists(path)) files.AddRange(Under(path));
            else files.Add(path);
        }
        return files;
    }
}
