using ManagedClip.Retrieval;

namespace ManagedClip.Cli;

/// <summary>
/// Which files the commands treat as images. A file named on the command line is always taken (its content decides
/// whether it decodes); a folder stands for the image files under it, recursively, as <c>index</c> takes them
/// (<see cref="FileTree"/>: by extension, <c>.dcm</c> and extension-less DICOM by content; symbolic links to folders
/// are not followed, so a link loop cannot repeat a file), in ordinal path order.
/// </summary>
internal static class ImageFiles
{
    /// <summary>The image files under <paramref name="folder"/>, recursively, sorted by path (ordinal), each as
    /// <paramref name="folder"/> joined with its path below it (so the output names files the way the user did).</summary>
    public static List<string> Under(string folder) =>
        FileTree.Walk(folder, exclude: null, take: _ => true).Files
            .Select(f => Path.Combine(folder, f.RelativePath.Replace('/', Path.DirectorySeparatorChar)))
            .ToList();

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
