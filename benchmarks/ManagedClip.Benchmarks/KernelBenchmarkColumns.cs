using System.Globalization;
using System.Reflection;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;

namespace ManagedClip.Benchmarks;

/// <summary>
/// GFLOPS = floating-point operations per call / median time (robust to bursts of load from other VMs), for benchmark classes that say how much work a call
/// does through a public static <c>double FlopCount(BenchmarkCase)</c> (a multiply-add counts as 2).
/// </summary>
public sealed class GflopsColumn : IColumn
{
    public string Id => nameof(GflopsColumn);
    public string ColumnName => "GFLOPS";
    public bool AlwaysShow => true;
    public ColumnCategory Category => ColumnCategory.Custom;
    public int PriorityInCategory => 0;
    public bool IsNumeric => true;
    public UnitType UnitType => UnitType.Dimensionless;
    public string Legend => "Billions of floating-point operations per second (multiply-add = 2), from Median";

    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
    public bool IsAvailable(Summary summary) => true;
    public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
    {
        var flopCount = benchmarkCase.Descriptor.Type.GetMethod("FlopCount",
            BindingFlags.Public | BindingFlags.Static | BindingFlags.FlattenHierarchy, [typeof(BenchmarkCase)]);
        double? medianNanoseconds = summary[benchmarkCase]?.ResultStatistics?.Median;
        if (flopCount is null || medianNanoseconds is not > 0) return "-";
        double flops = (double)flopCount.Invoke(null, [benchmarkCase])!;
        return (flops / medianNanoseconds.Value).ToString("F1", CultureInfo.InvariantCulture); // flop/ns = GFLOPS
    }

    public override string ToString() => ColumnName;
}

/// <summary>The default columns plus median and GFLOPS.</summary>
public sealed class KernelBenchmarkConfig : ManualConfig
{
    public KernelBenchmarkConfig() => AddColumn(StatisticColumn.Median, new GflopsColumn());
}
