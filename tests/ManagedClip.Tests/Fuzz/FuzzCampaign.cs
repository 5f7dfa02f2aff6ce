using System.Text;

namespace ManagedClip.Tests.Fuzz;

/// <summary>
/// One parser under fuzz: its seed inputs (valid files the mutations start from) and how to feed it one input.
/// <paramref name="Allowed"/> are the exception types that mean "refused with a message" for it; anything else,
/// a message that is not one bounded line in the user's terms, a hang or an allocation over the ceiling is a failure.
/// </summary>
/// <param name="Name">Shown in reports and in the names of saved failing inputs.</param>
/// <param name="Text">Whether the text operators apply (JSON, vocabularies, tokenizer text).</param>
/// <param name="Seeds">Valid inputs; each must be accepted as it is.</param>
/// <param name="Run">Feeds one input to the parser; <see cref="FuzzScratch"/> gives it a private folder.</param>
/// <param name="Allowed">Exception types a refusal may use.</param>
internal sealed record FuzzTarget(string Name, bool Text, Func<IReadOnlyList<byte[]>> Seeds, Action<byte[], FuzzScratch> Run, Type[] Allowed)
{
    public override string ToString() => Name;
}

/// <summary>A folder private to one target's campaign, for parsers that read paths.</summary>
internal sealed class FuzzScratch : IDisposable
{
    public string Folder { get; } = Directory.CreateTempSubdirectory("managedclip-fuzz-").FullName;

    /// <summary>Writes <paramref name="data"/> to <paramref name="name"/> in the folder and returns its path.</summary>
    public string Write(string name, byte[] data)
    {
        var path = Path.Combine(Folder, name);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, data);
        return path;
    }

    public void Dispose()
    {
        try { Directory.Delete(Folder, recursive: true); }
        catch (IOException) { }
    }
}

/// <summary>
/// Runs a bounded, reproducible campaign against one target: the seeds as they are, then mutated cases, each on a
/// thread of its own with a deadline and an allocation ceiling, and checks the error contract. Sizes come from the
/// environment (see README.md in this folder): the default is the short campaign the normal test run and CI use.
/// </summary>
internal static class FuzzCampaign
{
    /// <summary>Cases per target: <c>MANAGEDCLIP_FUZZ_CASES</c>, default 400 (the whole suite then takes about a minute on 2 cores).</summary>
    public static int CasesPerTarget => Setting("MANAGEDCLIP_FUZZ_CASES", 400);

    /// <summary>Base seed: <c>MANAGEDCLIP_FUZZ_SEED</c>, default 14; another value explores other mutations.</summary>
    public static int BaseSeed => Setting("MANAGEDCLIP_FUZZ_SEED", 14);

    /// <summary>Per-case deadline in seconds: <c>MANAGEDCLIP_FUZZ_TIMEOUT</c>, default 30 (generous: the VM is shared).</summary>
    public static int TimeoutSeconds => Setting("MANAGEDCLIP_FUZZ_TIMEOUT", 30);

    /// <summary>
    /// Most a case may allocate on its thread: inputs are at most a few hundred KB and images are capped at 4 MP here
    /// (16 MB RGBA, 32 MB at 16 bits, plus the resize's window and the decoder's buffers), so 256 MB only trips on
    /// memory that follows a lying header instead of the data.
    /// </summary>
    public const long AllocationCeiling = 256L << 20;

    /// <summary>Longest error message accepted (the CLI prints at most 2000 characters after its prefix).</summary>
    public const int MaxMessage = 2100;

    private static int Setting(string name, int fallback) =>
        int.TryParse(Environment.GetEnvironmentVariable(name), out int value) && value > 0 ? value : fallback;

    /// <summary>Runs the campaign; returns the failures (empty when the contract held for every case).</summary>
    public static List<string> Run(FuzzTarget target, int cases, int baseSeed, Action<string>? log = null)
    {
        var seeds = target.Seeds();
        var failures = new List<string>();
        int refused = 0;
        using var scratch = new FuzzScratch();
        for (int i = 0; i < cases; i++)
        {
            bool asIs = i < seeds.Count;
            var random = new Random(CaseSeed(baseSeed, target.Name, i));
            var input = asIs ? seeds[i] : Mutator.Mutate(random, seeds[i % seeds.Count], seeds, target.Text);
            var (error, allocated, finished) = RunOne(target, input, scratch);
            string? problem = !finished ? $"no answer within {TimeoutSeconds} s (a hang)"
                : allocated > AllocationCeiling ? $"allocated {allocated:N0} bytes for a {input.Length:N0}-byte input"
                : asIs && error is not null ? $"the valid seed was refused: {error.GetType().Name}: {error.Message}"
                : Violation(target, error);
            if (error is not null) refused++;
            if (problem is null) continue;
            var saved = Save(target, baseSeed, i, input);
            failures.Add($"{target.Name} case {i} (seed {baseSeed}, input saved as {saved}): {problem}");
            if (!finished) break; // the stuck thread keeps running; stop before it multiplies
        }
        log?.Invoke($"{target.Name}: {cases} cases ({seeds.Count} seeds as they are), {refused} refused, {failures.Count} contract failures");
        return failures;
    }

    /// <summary>Why an outcome breaks the contract, or null if it holds.</summary>
    private static string? Violation(FuzzTarget target, Exception? error)
    {
        if (error is null) return null;
        if (!target.Allowed.Any(type => type.IsInstanceOfType(error)))
            return $"{error.GetType().FullName} escaped: {error.Message}\n{error.StackTrace}";
        var message = error.Message;
        if (message.Contains('\n') || message.Contains('\r')) return $"message is not one line: {message}";
        if (message.Length > MaxMessage) return $"message of {message.Length:N0} characters";
        foreach (var internals in new[] { "Exception", "(Parameter '", "LineNumber:", "BytePositionInLine" })
            if (message.Contains(internals, StringComparison.Ordinal)) return $"message speaks .NET ({internals}): {message}";
        return null;
    }

    private static (Exception? Error, long Allocated, bool Finished) RunOne(FuzzTarget target, byte[] input, FuzzScratch scratch)
    {
        Exception? error = null;
        long allocated = 0;
        var thread = new Thread(() =>
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            try
            {
                target.Run(input, scratch);
            }
            catch (Exception e)
            {
                error = e;
            }
            allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        }, maxStackSize: 16 << 20) { IsBackground = true, Name = $"fuzz {target.Name}" };
        thread.Start();
        bool finished = thread.Join(TimeSpan.FromSeconds(TimeoutSeconds));
        return (error, allocated, finished);
    }

    /// <summary>A seed for case <paramref name="index"/> that does not depend on .NET's per-process string hashing.</summary>
    private static int CaseSeed(int baseSeed, string name, int index)
    {
        uint hash = 2166136261;
        foreach (char c in name) hash = (hash ^ c) * 16777619;
        return (int)(hash ^ (uint)(baseSeed * 1_000_003) ^ (uint)(index * 7919));
    }

    private static string Save(FuzzTarget target, int baseSeed, int index, byte[] input)
    {
        var folder = Path.Combine(Path.GetTempPath(), "managedclip-fuzz-failures");
        Directory.CreateDirectory(folder);
        var path = Path.Combine(folder, $"{target.Name}-{baseSeed}-{index}.bin");
        File.WriteAllBytes(path, input);
        return path;
    }

    /// <summary>Text of a failure report, one failure a line (first 20).</summary>
    public static string Report(List<string> failures) =>
        new StringBuilder().AppendJoin("\n", failures.Take(20)).Append(failures.Count > 20 ? $"\n… and {failures.Count - 20} more" : "").ToString();
}
