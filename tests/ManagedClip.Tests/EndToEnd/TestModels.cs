using ManagedClip.IO;

namespace ManagedClip.Tests.EndToEnd;

/// <summary>
/// Model directories for end-to-end tests: the tiny reference model (read in place) and the full-size synthetic
/// model, generated once per machine into the temp folder by the same code as <c>managedclip synth</c>
/// (its tensors are checked hash by hash in SyntheticWeightsTests).
/// </summary>
internal static class TestModels
{
    public static string TinyDirectory => TestData.Tiny;

    private static readonly Lazy<ClipModel> tiny = new(() => ClipModel.Load(TinyDirectory));
    private static readonly Lazy<string> fullDirectory = new(CreateFullDirectory);
    private static readonly Lazy<ClipModel> full = new(() => ClipModel.Load(FullDirectory));

    /// <summary>The tiny model, loaded once and shared (ClipModel is thread-safe).</summary>
    public static ClipModel Tiny => tiny.Value;

    public static string FullDirectory => fullDirectory.Value;

    public static ClipModel Full => full.Value;

    private static string CreateFullDirectory()
    {
        // One folder per generator version; a marker written last tells a complete folder from an interrupted one.
        var dir = Path.Combine(Path.GetTempPath(), "managedclip-test-synthetic-full-v1");
        var marker = Path.Combine(dir, "complete");
        if (File.Exists(marker)) return dir;
        using var mutex = new Mutex(false, "managedclip-test-synthetic-full");
        mutex.WaitOne();
        try
        {
            if (File.Exists(marker)) return dir;
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
            SyntheticWeights.WriteModelDirectory(dir, TestData.PathOf("vocab.txt"));
            File.WriteAllText(marker, "");
            return dir;
        }
        finally
        {
            mutex.ReleaseMutex();
        }
    }
}
