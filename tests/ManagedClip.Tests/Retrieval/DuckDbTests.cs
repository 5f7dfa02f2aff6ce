using System.Diagnostics;
using System.Text.Json;
using ManagedClip.Tests.EndToEnd;
using ManagedClip.Tests.IO;

namespace ManagedClip.Tests.Retrieval;

/// <summary>Runs where Node.js and the npm package @duckdb/node-api are installed (.ci/run installs them).</summary>
public sealed class DuckDbFactAttribute : FactAttribute
{
    public const string Variable = "MANAGEDCLIP_DUCKDB_NODE_MODULES";

    public DuckDbFactAttribute()
    {
        if (DuckDbTests.NodeModules is null)
            Skip = $"@duckdb/node-api not installed: run `npm install --prefix tools/duckdb` (or set {Variable} to a node_modules folder holding it) to read the Parquet parts with DuckDB";
    }
}

/// <summary>The Parquet row metadata as DuckDB reads it: unchanged, no conversion, the types a SQL user expects.</summary>
public class DuckDbTests
{
    internal static string? NodeModules
    {
        get
        {
            var candidates = new[]
            {
                Environment.GetEnvironmentVariable(DuckDbFactAttribute.Variable),
                Path.Combine(Path.GetDirectoryName(TestData.Root)!, "tools", "duckdb", "node_modules"),
            };
            return candidates.FirstOrDefault(c => !string.IsNullOrEmpty(c) && Directory.Exists(Path.Combine(c, "@duckdb", "node-api")));
        }
    }

    [DuckDbFact]
    public void DuckDbReadsThePartsUnchanged()
    {
        using var folder = new TempFolder();
        var images = Path.Combine(folder.Path, "images");
        var paths = RetrievalFixtures.WriteImages(images, 5, seed: 40);
        File.WriteAllText(Path.Combine(images, "c", "broken.png"), "not a png");
        var index = folder.File("index");
        var built = CliRunner.Run("index", "--model", TestModels.TinyDirectory, images, "--out", index, "--chunk-images", "2");
        Assert.True(built.ExitCode == 0, built.Error);

        // ES modules resolve packages from the script's folder: run a copy beside a link to the modules.
        var runner = Path.Combine(folder.Path, "duckdb");
        Directory.CreateDirectory(runner);
        Directory.CreateSymbolicLink(Path.Combine(runner, "node_modules"), NodeModules!);
        var script = Path.Combine(runner, "read-index.mjs");
        File.Copy(Path.Combine(Path.GetDirectoryName(TestData.Root)!, "tools", "duckdb", "read-index.mjs"), script);
        var info = new ProcessStartInfo("node") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add(script);
        info.ArgumentList.Add(index);
        using var process = Process.Start(info)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        Assert.True(process.WaitForExit(120_000), "node did not finish in 120 s");
        Assert.True(process.ExitCode == 0, error.Result);

        var result = JsonDocument.Parse(output.Result).RootElement;
        var columns = result.GetProperty("columns").EnumerateArray().ToDictionary(c => c.GetProperty("name").GetString()!, c => c.GetProperty("type").GetString()!);
        Assert.Equal(new Dictionary<string, string>
        {
            // The UTC-adjusted nanosecond timestamp becomes DuckDB's TIMESTAMPTZ (microseconds; pandas and Arrow keep ns).
            ["path"] = "VARCHAR", ["size"] = "BIGINT", ["mtime"] = "TIMESTAMP WITH TIME ZONE",
            ["sha256"] = "VARCHAR", ["error"] = "VARCHAR", ["model_id"] = "VARCHAR",
        }, columns);
        var rows = result.GetProperty("rows").EnumerateArray().ToList();
        Assert.Equal(paths.Append("c/broken.png").Order(StringComparer.Ordinal), rows.Select(r => r.GetProperty("path").GetString()));
        foreach (var row in rows)
        {
            var full = Path.Combine(images, row.GetProperty("path").GetString()!);
            Assert.Equal(new FileInfo(full).Length, long.Parse(row.GetProperty("size").ToString()));
            long nanoseconds = (File.GetLastWriteTimeUtc(full) - DateTime.UnixEpoch).Ticks / 10 * 1000; // to DuckDB's µs
            Assert.Equal(nanoseconds.ToString(), row.GetProperty("mtime_ns").GetString());
            Assert.Equal(built.Json.GetProperty("model_id").GetString(), row.GetProperty("model_id").GetString());
            bool broken = row.GetProperty("path").GetString() == "c/broken.png";
            Assert.Equal(broken, row.GetProperty("error").ValueKind == JsonValueKind.String);
        }
    }
}
