using System.Globalization;
using System.Text;

namespace ManagedClip.Benchmarks.Compare;

/// <summary>One workload's row of the ratio plot: the median of its paired time ratios and their quartiles.</summary>
internal readonly record struct RatioBar(string Label, double Median, double LowerQuartile, double UpperQuartile);

/// <summary>
/// Draws ManagedClip / ONNX Runtime time ratios as a self-contained SVG: one horizontal bar per workload from the
/// 1.0 reference line to the median ratio, a whisker over the interquartile range, the median printed at the
/// bar's outer end, on a logarithmic x axis.
/// </summary>
/// <remarks>
/// <para>Plain XML text with no dependencies, scripts, styles or external fonts, so GitHub shows it in a README
/// (it serves SVGs as images: only the markup itself renders) and it can be checked without ONNX Runtime.</para>
/// <para>Log scale because ratios are symmetric on it: 0.5 (twice as fast) lies as far left of 1.0 as 2 (twice
/// as slow) lies right, and the padded texts' ≈ 0.05 fits on the same axis as ≈ 1.5. The axis spans at least
/// 0.03–2 so plots from different runs line up, wider when a ratio falls outside.</para>
/// </remarks>
internal static class RatioPlotSvg
{
    private const double Width = 800;
    private const double PlotLeft = 250, PlotRight = 770;  // workload labels sit left of PlotLeft
    private const double PlotTop = 100, RowHeight = 34, BarHeight = 16;
    private const double LabelRoom = 46;                   // px kept free inside the plot for the printed medians
    private const double MinimumLow = 0.03, MinimumHigh = 2;
    private const string FasterColour = "#2f9e44", SlowerColour = "#e8590c", InkColour = "#212529", GridColour = "#dee2e6";

    /// <summary>The SVG document for <paramref name="bars"/>, top to bottom in the given order.</summary>
    /// <param name="title">First heading line, e.g. what is compared and when.</param>
    /// <param name="subtitle">Second, smaller line, e.g. the machine.</param>
    /// <param name="bars">Ratios must be positive and finite (a log axis has no room for 0).</param>
    public static string Render(string title, string subtitle, IReadOnlyList<RatioBar> bars)
    {
        if (bars.Count == 0) throw new ArgumentException("Nothing to plot.", nameof(bars));
        foreach (var bar in bars)
            if (!new[] { bar.Median, bar.LowerQuartile, bar.UpperQuartile }.All(r => double.IsFinite(r) && r > 0))
                throw new ArgumentException($"'{bar.Label}': ratios must be positive and finite for a log axis.", nameof(bars));

        double plotBottom = PlotTop + bars.Count * RowHeight;
        double height = plotBottom + 56;
        var x = LogAxis(bars);
        var svg = new StringBuilder();
        svg.AppendLine($"""<svg xmlns="http://www.w3.org/2000/svg" width="{N(Width)}" height="{N(height)}" viewBox="0 0 {N(Width)} {N(height)}" font-family="sans-serif" font-size="12" fill="{InkColour}">""");
        // Opaque background: GitHub's dark theme would otherwise put the dark text on a dark page.
        svg.AppendLine($"""  <rect width="{N(Width)}" height="{N(height)}" fill="#ffffff"/>""");
        svg.AppendLine($"""  <text x="20" y="26" font-size="16" font-weight="bold">{Escape(title)}</text>""");
        svg.AppendLine($"""  <text x="20" y="46" font-size="11" fill="#495057">{Escape(subtitle)}</text>""");
        AppendLegend(svg, y: 70);

        // Grid and tick labels first, so bars and whiskers draw over them.
        foreach (double tick in Ticks(x.Low, x.High))
        {
            double tx = x.At(tick);
            svg.AppendLine($"""  <line x1="{N(tx)}" y1="{N(PlotTop)}" x2="{N(tx)}" y2="{N(plotBottom)}" stroke="{GridColour}"/>""");
            svg.AppendLine($"""  <text x="{N(tx)}" y="{N(plotBottom + 16)}" text-anchor="middle" font-size="11">{tick.ToString(CultureInfo.InvariantCulture)}</text>""");
        }
        svg.AppendLine($"""  <line x1="{N(PlotLeft)}" y1="{N(plotBottom)}" x2="{N(PlotRight)}" y2="{N(plotBottom)}" stroke="{InkColour}"/>""");
        svg.AppendLine($"""  <text x="{N((PlotLeft + PlotRight) / 2)}" y="{N(plotBottom + 38)}" text-anchor="middle" font-size="11">ManagedClip time / ONNX Runtime time, paired per round (log scale)</text>""");

        for (int row = 0; row < bars.Count; row++)
            AppendBar(svg, bars[row], x, centre: PlotTop + (row + 0.5) * RowHeight);

        // The reference line goes last so no bar hides it.
        double one = x.At(1);
        svg.AppendLine($"""  <line x1="{N(one)}" y1="{N(PlotTop - 8)}" x2="{N(one)}" y2="{N(plotBottom)}" stroke="{InkColour}" stroke-width="1.5"/>""");
        svg.AppendLine($"""  <text x="{N(one)}" y="{N(PlotTop - 12)}" text-anchor="middle" font-size="11">ONNX Runtime = 1.0</text>""");
        svg.AppendLine("</svg>");
        return svg.ToString();
    }

    /// <summary>A ratio as the table and the plot print it: three decimals below 0.1, where two would say 0.05 for 0.046, else two.</summary>
    public static string FormatRatio(double ratio) =>
        ratio.ToString(ratio < 0.1 ? "F3" : "F2", CultureInfo.InvariantCulture);

    private static void AppendBar(StringBuilder svg, RatioBar bar, LogScale x, double centre)
    {
        bool faster = bar.Median < 1;
        double one = x.At(1), end = x.At(bar.Median);
        double left = Math.Min(one, end), width = Math.Max(Math.Abs(end - one), 1); // a ratio of 1.0 still shows
        svg.AppendLine($"""  <text x="{N(PlotLeft - 12)}" y="{N(centre + 4)}" text-anchor="end">{Escape(bar.Label)}</text>""");
        svg.AppendLine($"""  <rect x="{N(left)}" y="{N(centre - BarHeight / 2)}" width="{N(width)}" height="{N(BarHeight)}" fill="{(faster ? FasterColour : SlowerColour)}"/>""");

        double q1 = x.At(bar.LowerQuartile), q3 = x.At(bar.UpperQuartile);
        svg.AppendLine($"""  <path d="M{N(q1)} {N(centre)}H{N(q3)}M{N(q1)} {N(centre - 6)}V{N(centre + 6)}M{N(q3)} {N(centre - 6)}V{N(centre + 6)}" stroke="{InkColour}" stroke-width="1.5" fill="none"/>""");

        // The number goes beyond whichever reaches further out, bar or whisker, on the bar's side of 1.0.
        string value = FormatRatio(bar.Median);
        if (faster)
            svg.AppendLine($"""  <text x="{N(Math.Min(end, q1) - 6)}" y="{N(centre + 4)}" text-anchor="end">{value}</text>""");
        else
            svg.AppendLine($"""  <text x="{N(Math.Max(end, q3) + 6)}" y="{N(centre + 4)}">{value}</text>""");
    }

    private static void AppendLegend(StringBuilder svg, double y)
    {
        svg.AppendLine($"""  <rect x="20" y="{N(y - 10)}" width="12" height="12" fill="{FasterColour}"/>""");
        svg.AppendLine($"""  <text x="38" y="{N(y)}">ManagedClip faster</text>""");
        svg.AppendLine($"""  <rect x="175" y="{N(y - 10)}" width="12" height="12" fill="{SlowerColour}"/>""");
        svg.AppendLine($"""  <text x="193" y="{N(y)}">ONNX Runtime faster</text>""");
        svg.AppendLine($"""  <path d="M340 {N(y - 4)}H362M340 {N(y - 9)}V{N(y + 1)}M362 {N(y - 9)}V{N(y + 1)}" stroke="{InkColour}" stroke-width="1.5" fill="none"/>""");
        svg.AppendLine($"""  <text x="370" y="{N(y)}">interquartile range of the paired ratios</text>""");
    }

    /// <summary>Maps ratios to x pixels, logarithmically, between <see cref="Low"/> and <see cref="High"/>.</summary>
    private readonly record struct LogScale(double Low, double High)
    {
        public double At(double ratio) =>
            PlotLeft + (Math.Log(ratio) - Math.Log(Low)) / (Math.Log(High) - Math.Log(Low)) * (PlotRight - PlotLeft);
    }

    // The data's range (at least 0.03–2) fills the plot minus LabelRoom at each end; the axis extends over that
    // room, so a median printed beyond the outermost bar or whisker never leaves the plot.
    private static LogScale LogAxis(IReadOnlyList<RatioBar> bars)
    {
        double low = Math.Log(Math.Min(MinimumLow, bars.Min(b => Math.Min(b.Median, b.LowerQuartile))));
        double high = Math.Log(Math.Max(MinimumHigh, bars.Max(b => Math.Max(b.Median, b.UpperQuartile))));
        double logPerPixel = (high - low) / (PlotRight - PlotLeft - 2 * LabelRoom);
        return new LogScale(Math.Exp(low - LabelRoom * logPerPixel), Math.Exp(high + LabelRoom * logPerPixel));
    }

    // 1-2-5 steps per decade (…, 0.05, 0.1, 0.2, 0.5, 1, 2, …): round numbers, evenly spread on a log axis.
    private static IEnumerable<double> Ticks(double low, double high)
    {
        for (int decade = (int)Math.Floor(Math.Log10(low)); decade <= (int)Math.Ceiling(Math.Log10(high)); decade++)
            foreach (int step in new[] { 1, 2, 5 })
            {
                // Dividing by an exact power of ten gives the double nearest 0.05; multiplying by 0.01 need not.
                double tick = decade < 0 ? step / Math.Pow(10, -decade) : step * Math.Pow(10, decade);
                if (tick >= low && tick <= high) yield return tick;
            }
    }

    // Coordinates with at most two decimals, and always a '.' whatever the current culture.
    private static string N(double value) => value.ToString("0.##", CultureInfo.InvariantCulture);

    private static string Escape(string text) => text
        .Replace("&", "&amp;").Replace("<", "&lt;").Replace(">", "&gt;").Replace("\"", "&quot;");
}
