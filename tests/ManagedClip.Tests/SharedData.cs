namespace ManagedClip.Tests;

/// <summary>
/// Where the read-only ground truth lives: ../shared beside the checkout, or MANAGEDCLIP_SHARED.
/// Tests read it in place and never copy it into the repository.
/// </summary>
public static class SharedData
{
    public static string Root { get; } = FindRoot();

    public static string Reference => Path.Combine(Root, "reference");
    public static string ModelCard => Path.Combine(Root, "model-card");
    public static string Tiny => Path.Combine(Reference, "tiny");
    public static string Full => Path.Combine(Reference, "full");
    public static string Images => Path.Combine(Reference, "images");

    public static string PathOf(params string[] parts) => Path.Combine([Reference, .. parts]);

    private static string FindRoot()
    {
        var fromEnv = Environment.GetEnvironmentVariable("MANAGEDCLIP_SHARED");
        if (!string.IsNullOrEmpty(fromEnv)) return Path.GetFullPath(fromEnv);
        // Walk up from the test binary to the checkout, then take its sibling "shared".
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "ManagedClip.sln")))
            {
                var candidate = Path.Combine(dir.Parent?.FullName ?? dir.FullName, "shared");
                if (Directory.Exists(candidate)) return candidate;
                throw new DirectoryNotFoundException(
                    $"Reference data not found at {candidate}; set MANAGEDCLIP_SHARED to the shared/ folder.");
            }
        }
        throw new DirectoryNotFoundException("Could not locate ManagedClip.sln above " + AppContext.BaseDirectory);
    }
}
