using System.Globalization;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;

namespace ManagedClip.Benchmarks;

/// <summary>
/// Median time / the baseline's median time in the same category. BenchmarkDotNet's Ratio column uses means;
/// the performance targets are stated on medians, which one slow iteration on a shared machine moves less.
/// </summary>
public sealed class MedianRatioColumn : IColumn
{
    public string Id => nameof(MedianRatioColumn);
    public string ColumnName => "Ratio (median)";
    public bool AlwaysShow => true;
    public ColumnCategory Category => ColumnCategory.Baseline;
    public int PriorityInCategory => 10;
    public bool IsNumeric => true;
    public UnitType UnitType => UnitType.Dimensionless;
    public string Legend => "Median time / the baseline's median time in the same category";

    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
    public bool IsAvailable(Summary summary) => true;
    public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
    {
        var baseline = summary.GetBaseline(summary.GetLogicalGroupKey(benchmarkCase));
        double? median = summary[benchmarkCase]?.ResultStatistics?.Median;
        double? baselineMedian = baseline is null ? null : summary[baseline]?.ResultStatistics?.Median;
        if (median is null || baselineMedian is not > 0) return "-";
        return (median.Value / baselineMedian.Value).ToString("F2", CultureInfo.InvariantCulture);
    }

    public override string ToString() => ColumnName;
}
