using Xunit.Abstractions;

namespace ManagedClip.Tests.Fuzz;

/// <summary>
/// The bounded fuzz campaign of the normal test run (README.md in this folder: what runs, how to run longer, how to
/// reproduce a failure). One theory case per parser; each fails with the list of inputs that broke the contract.
/// </summary>
public sealed class FuzzTests(ITestOutputHelper output)
{
    public static TheoryData<string> Targets => [.. FuzzTargets.All.Select(t => t.Name)];

    [Theory]
    [MemberData(nameof(Targets))]
    public void ParserKeepsTheErrorContract(string target)
    {
        var failures = FuzzCampaign.Run(FuzzTargets.All.Single(t => t.Name == target), FuzzCampaign.CasesPerTarget, FuzzCampaign.BaseSeed, output.WriteLine);
        Assert.True(failures.Count == 0, FuzzCampaign.Report(failures));
    }

    /// <summary>The harness itself: a parser that crashes, hangs or speaks .NET is caught (so a green campaign means something).</summary>
    [Fact]
    public void HarnessCatchesEachKindOfFailure()
    {
        var seeds = () => (IReadOnlyList<byte[]>)[[1, 2, 3]];
        FuzzTarget Target(string name, Action<byte[]> run) =>
            new(name, false, seeds, (input, _) => { if (input.Length != 3 || input[0] != 1 || input[1] != 2 || input[2] != 3) run(input); }, [typeof(InvalidDataException)]);
        Assert.Contains("escaped", FuzzCampaign.Run(Target("crash", _ => throw new IndexOutOfRangeException()), 5, 1)[0]);
        Assert.Contains("speaks .NET", FuzzCampaign.Run(Target("dotnet", _ => throw new InvalidDataException("bad (Parameter 'x')")), 5, 1)[0]);
        Assert.Contains("one line", FuzzCampaign.Run(Target("lines", _ => throw new InvalidDataException("a\nb")), 5, 1)[0]);
        Assert.Contains("allocated", FuzzCampaign.Run(Target("memory", _ => GC.KeepAlive(new byte[FuzzCampaign.AllocationCeiling + 1])), 5, 1)[0]);
        Assert.Empty(FuzzCampaign.Run(Target("fine", _ => throw new InvalidDataException("x: refused")), 5, 1));
    }
}
