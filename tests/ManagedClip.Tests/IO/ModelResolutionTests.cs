using ManagedClip.IO.Distribution;

namespace ManagedClip.Tests.IO;

/// <summary>Tests that change process-wide environment variables run alone, never beside other tests.</summary>
[CollectionDefinition(nameof(EnvironmentCollection), DisableParallelization = true)]
public sealed class EnvironmentCollection;

/// <summary>Where <see cref="ModelDirectory.Resolve"/> looks: --model, $MANAGEDCLIP_MODEL, the download folder, the HF hub cache.</summary>
[Collection(nameof(EnvironmentCollection))]
public sealed class ModelResolutionTests : IDisposable
{
    private static readonly string[] Variables = ["MANAGEDCLIP_MODEL", "MANAGEDCLIP_CACHE", "HF_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME"];
    private readonly Dictionary<string, string?> saved = Variables.ToDictionary(v => v, Environment.GetEnvironmentVariable);
    private readonly TempFolder folder = new();

    public ModelResolutionTests()
    {
        // Point every cache at empty temp folders so the machine's real caches never leak in.
        foreach (var variable in Variables) Environment.SetEnvironmentVariable(variable, null);
        Environment.SetEnvironmentVariable("MANAGEDCLIP_CACHE", folder.File("download"));
        Environment.SetEnvironmentVariable("HF_HUB_CACHE", folder.File("hub"));
    }

    public void Dispose()
    {
        foreach (var (variable, value) in saved) Environment.SetEnvironmentVariable(variable, value);
        folder.Dispose();
    }

    private string HubModel => Path.Combine(folder.File("hub"), "models--microsoft--BiomedCLIP-PubMedBERT_256-vit_base_patch16_224");

    [Fact]
    public void NothingFoundListsEveryPlaceSearched()
    {
        var error = Assert.Throws<DirectoryNotFoundException>(() => ModelDirectory.Resolve());
        Assert.Contains("--model argument (not given)", error.Message);
        Assert.Contains("$MANAGEDCLIP_MODEL (not set)", error.Message);
        Assert.Contains(folder.File("download"), error.Message);
        Assert.Contains(Path.Combine(HubModel, "snapshots"), error.Message);
    }

    [Fact]
    public void TheEnvironmentVariableIsUsedAndAnExplicitFolderWins()
    {
        Environment.SetEnvironmentVariable("MANAGEDCLIP_MODEL", TestData.Tiny);
        Assert.Equal(Path.GetFullPath(TestData.Tiny), ModelDirectory.Resolve().Root);

        var other = Directory.CreateDirectory(folder.File("explicit")).FullName;
        Assert.Contains("has no open_clip_config.json", Assert.Throws<FileNotFoundException>(() => ModelDirectory.Resolve(other)).Message);

        // A variable naming a broken folder is an error, not silently skipped.
        Environment.SetEnvironmentVariable("MANAGEDCLIP_MODEL", other);
        Assert.Throws<FileNotFoundException>(() => ModelDirectory.Resolve());
    }

    [Fact]
    public void TheDownloadFolderComesBeforeTheHubCache()
    {
        CopyTinyInto(folder.File("download"));
        MakeSnapshot("abc123", symlinks: true);
        Assert.Equal(folder.File("download"), ModelDirectory.Resolve().Root);
    }

    [Fact]
    public void HubCacheSnapshotsWithSymlinkedFilesResolveToTheirBlobs()
    {
        MakeSnapshot("0ld", symlinks: true);
        var current = MakeSnapshot("abc123", symlinks: true);
        Directory.SetLastWriteTimeUtc(current, DateTime.UtcNow.AddDays(-30)); // older than "0ld", but refs/main names it
        Directory.CreateDirectory(Path.Combine(HubModel, "refs"));
        File.WriteAllText(Path.Combine(HubModel, "refs", "main"), "abc123");

        var model = ModelDirectory.Resolve();
        Assert.Equal(current, model.Root);
        var blobs = Path.Combine(HubModel, "blobs") + Path.DirectorySeparatorChar;
        Assert.StartsWith(blobs, model.ConfigPath);
        Assert.StartsWith(blobs, model.WeightsPath);
        Assert.StartsWith(blobs, model.VocabularyPath);
        Assert.StartsWith(blobs, model.TextConfigPath);
        using var store = model.OpenWeights();
        Assert.Equal(72, store.Names.Count);
    }

    [Fact]
    public void WithoutRefsTheNewestSnapshotIsUsed()
    {
        var old = MakeSnapshot("aaa", symlinks: false);
        Directory.SetLastWriteTimeUtc(old, DateTime.UtcNow.AddDays(-30));
        var newest = MakeSnapshot("bbb", symlinks: false);
        Assert.Equal(newest, ModelDirectory.Resolve().Root);
    }

    [Fact]
    public void ADanglingSnapshotLinkIsReportedAsAnIncompleteDownload()
    {
        var snapshot = MakeSnapshot("abc123", symlinks: true);
        var weights = File.ResolveLinkTarget(Path.Combine(snapshot, "model.safetensors"), true)!.FullName;
        File.Delete(weights);
        var error = Assert.Throws<FileNotFoundException>(() => ModelDirectory.Resolve());
        Assert.Contains("symbolic link to a missing file", error.Message);
    }

    private static void CopyTinyInto(string target)
    {
        Directory.CreateDirectory(Path.Combine(target, "text_config"));
        foreach (var file in new[] { "open_clip_config.json", "model.safetensors", "vocab.txt", "text_config/config.json" })
            File.Copy(Path.Combine(TestData.Tiny, file), Path.Combine(target, file));
    }

    /// <summary>The hub layout: files in blobs/&lt;hash&gt;, snapshots/&lt;revision&gt;/&lt;name&gt; → ../../blobs/&lt;hash&gt;.</summary>
    private string MakeSnapshot(string revision, bool symlinks)
    {
        var snapshot = Path.Combine(HubModel, "snapshots", revision);
        Directory.CreateDirectory(Path.Combine(snapshot, "text_config"));
        Directory.CreateDirectory(Path.Combine(HubModel, "blobs"));
        foreach (var file in new[] { "open_clip_config.json", "model.safetensors", "vocab.txt", "text_config/config.json" })
        {
            var source = Path.Combine(TestData.Tiny, file);
            var link = Path.Combine(snapshot, file);
            if (!symlinks) { File.Copy(source, link); continue; }
            var blob = Path.Combine(HubModel, "blobs", $"{revision}-{file.Replace('/', '-')}");
            File.Copy(source, blob);
            File.CreateSymbolicLink(link, Path.GetRelativePath(Path.GetDirectoryName(link)!, blob));
        }
        return snapshot;
    }
}
