using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using ManagedClip.Tests.EndToEnd;
using ManagedClip.Tests.IO;

namespace ManagedClip.Tests.Retrieval;

/// <summary>Runs only where a one-node Slurm cluster can be started: Linux, root, slurm-wlm and munge installed.</summary>
public sealed partial class SlurmFactAttribute : FactAttribute
{
    public SlurmFactAttribute()
    {
        if (!OperatingSystem.IsLinux()) Skip = "Slurm runs on Linux only";
        else if (geteuid() != 0) Skip = "starting slurmd needs root (it runs jobs as their user); run the suite as root, as CI does";
        else if (SlurmArrayTests.MissingTool() is { } tool)
            Skip = $"{tool} not found: install the Debian packages slurm-wlm and munge (.ci/run does) to run the Slurm job array test";
    }

    [LibraryImport("libc")]
    private static partial uint geteuid();
}

/// <summary>
/// The sharded run on a real scheduler: a one-node Slurm cluster (tools/slurm/local-cluster.sh) runs
/// tools/slurm/index-array.sbatch as a 4-task job array with the tiny model, a dependent job merges the shards,
/// and the merged index must equal one unsharded run bit for bit. The cluster is stopped also when the test fails.
/// </summary>
public class SlurmArrayTests
{
    private static readonly string[] Tools = ["munged", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "sinfo"];
    private static readonly string[] SearchPath =
        [.. (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries), "/usr/sbin", "/usr/bin", "/sbin"];

    internal static string? MissingTool() => Tools.FirstOrDefault(t => !SearchPath.Any(d => File.Exists(Path.Combine(d, t))));

    private static string RepositoryRoot => Path.GetDirectoryName(TestData.Root)!;

    [SlurmFact]
    public void JobArrayShardsMergedEqualTheUnshardedIndex()
    {
        using var folder = new TempFolder();
        var images = Path.Combine(folder.Path, "images");
        RetrievalFixtures.WriteImages(images, 24, seed: 30);
        File.WriteAllText(Path.Combine(images, "b", "broken.png"), "not a png");
        var reference = folder.File("reference");
        var whole = CliRunner.Run("index", "--model", TestModels.TinyDirectory, images, "--out", reference);
        Assert.True(whole.ExitCode == 0, whole.Error);

        var cluster = folder.File("cluster");
        var script = Path.Combine(RepositoryRoot, "tools", "slurm", "local-cluster.sh");
        var environment = new Dictionary<string, string>
        {
            ["SLURM_LOCAL_CTLD_PORT"] = FreePort().ToString(),
            ["SLURM_LOCAL_SLURMD_PORT"] = FreePort().ToString(),
            ["SLURM_CONF"] = Path.Combine(cluster, "slurm.conf"),
            ["PATH"] = string.Join(':', SearchPath),
            ["MANAGEDCLIP"] = $"dotnet {CliProcess.CliDll}",
            ["MANAGEDCLIP_INDEX_ARGS"] = $"--model {TestModels.TinyDirectory} --chunk-images 4",
        };
        var start = Run("bash", [script, "start", cluster], environment, TimeSpan.FromSeconds(60));
        try
        {
            Assert.True(start.Code == 0, $"the cluster did not start: {start.Output} {start.Error}");
            var shards = folder.File("shards");
            var merged = folder.File("merged");
            var array = Run("sbatch", ["--parsable", "--export=ALL", "--array=0-3", "--cpus-per-task=1", "--oversubscribe",
                $"--chdir={folder.Path}", $"--output={folder.Path}/index-%A_%a.out",
                Path.Combine(RepositoryRoot, "tools", "slurm", "index-array.sbatch"), images, shards], environment, TimeSpan.FromSeconds(30));
            Assert.True(array.Code == 0, array.Error);
            string arrayJob = array.Output.Trim().Split(';')[0];
            var merge = Run("sbatch", ["--parsable", "--export=ALL", $"--dependency=afterok:{arrayJob}", $"--chdir={folder.Path}",
                $"--output={folder.Path}/merge-%j.out", "--wrap", $"dotnet {CliProcess.CliDll} merge {shards} --out {merged}"], environment, TimeSpan.FromSeconds(30));
            Assert.True(merge.Code == 0, merge.Error);
            string mergeJob = merge.Output.Trim().Split(';')[0];

            var deadline = DateTime.UtcNow.AddSeconds(240);
            while (Run("squeue", ["-h", "-o", "%i"], environment, TimeSpan.FromSeconds(30)).Output.Trim().Length > 0)
            {
                Assert.True(DateTime.UtcNow < deadline, "the jobs did not finish in 240 s: " + Logs(folder.Path));
                Thread.Sleep(500);
            }
            var state = Run("scontrol", ["show", "job", mergeJob], environment, TimeSpan.FromSeconds(30)).Output;
            Assert.True(state.Contains("JobState=COMPLETED"), $"merge job: {state} {Logs(folder.Path)}");
            for (int task = 0; task < 4; task++)
                Assert.True(File.Exists(Path.Combine(shards, $"shard-{task:D5}-of-00004", "manifest.json")), $"task {task}: " + Logs(folder.Path));

            RetrievalFixtures.AssertSameRows(reference, merged);
        }
        finally
        {
            Run("bash", [script, "stop", cluster], environment, TimeSpan.FromSeconds(60));
        }
    }

    private static string Logs(string folder) =>
        string.Join(" | ", Directory.GetFiles(folder, "*.out").Order().Select(f => $"{Path.GetFileName(f)}: {File.ReadAllText(f).ReplaceLineEndings(" ")}"));

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static (int Code, string Output, string Error) Run(string command, string[] args, Dictionary<string, string> environment, TimeSpan timeout)
    {
        var info = new ProcessStartInfo(command) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) info.ArgumentList.Add(a);
        foreach (var (k, v) in environment) info.Environment[k] = v;
        using var process = Process.Start(info)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(timeout))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{command} {string.Join(' ', args)} did not finish in {timeout}");
        }
        return (process.ExitCode, output.Result, error.Result);
    }
}
