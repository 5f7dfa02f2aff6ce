namespace ManagedClip.Tests;

/// <summary>
/// Where the ground truth the tests compare against lives: the repository's <c>testdata/</c> folder (copied from the
/// upstream reference runs; <c>testdata/README.md</c> says where each file came from), or <c>$MANAGEDCLIP_TESTDATA</c>
/// when set (a folder with the same layout, e.g. a newer <c>shared/</c> drop).
/// </summary>
/// <remarks>
/// Nothing here throws while a test class is being initialised: paths are only computed, and <see cref="File"/>
/// reports a missing file by its full path and what to do about it.
/// </remarks>
public static class TestData
{
    public const string EnvironmentVariable = "MANAGEDCLIP_TESTDATA";

    public static string Root { get; } = FindRoot();

    public static string Reference => Path.Combine(Root, "reference");
    public static string ModelCard => Path.Combine(Root, "model-card");
    public static string Tiny => Path.Combine(Reference, "tiny");
    public static string Full => Path.Combine(Reference, "full");
    public static string Images => Path.Combine(Reference, "images");
    public static string Jpeg => Path.Combine(Reference, "jpeg");
    public static string Dicom => Path.Combine(Reference, "dicom");

    /// <summary>A path under <c>reference/</c>.</summary>
    public static string PathOf(params string[] parts) => Path.Combine([Reference, .. parts]);

    /// <summary>A path under the test data root that must exist; a clear message if it does not.</summary>
    public static string File(params string[] parts)
    {
        var path = Path.Combine([Root, .. parts]);
        if (!System.IO.File.Exists(path) && !Directory.Exists(path))
            throw new FileNotFoundException(
                $"Test data missing: {path}. It belongs to the repository's testdata/ folder (see testdata/README.md); " +
                $"{EnvironmentVariable} points the tests at another copy.", path);
        return path;
    }

    private static string FindRoot()
    {
        var fromEnvironment = Environment.GetEnvironmentVariable(EnvironmentVariable);
        if (!string.IsNullOrEmpty(fromEnvironment)) return Path.GetFullPath(fromEnvironment);
        // Walk up from the test binary to the checkout (the folder holding ManagedClip.sln).
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
            if (System.IO.File.Exists(Path.Combine(dir.FullName, "ManagedClip.sln")))
                return Path.Combine(dir.FullName, "testdata");
        // Not inside a checkout: report paths relative to the working directory; File() says what is missing.
        return Path.GetFullPath("testdata");
    }
}
