using System.Globalization;
using System.Text;
using System.Text.Json;

namespace ManagedClip.Cli;

/// <summary>One classified image, or the reason it could not be classified.</summary>
internal sealed record ClassifyRow(string Image, ZeroShotResult? Result, string? Error);

/// <summary>
/// The output of <c>classify</c>, written row by row as images are done (a long run shows its first rows at once):
/// <list type="bullet">
/// <item><c>json</c>: one array on one line, <c>[{"image", "labels", "probs"}, …]</c>;</item>
/// <item><c>jsonl</c>: one such object per line;</item>
/// <item><c>csv</c>: RFC 4180 (a field with a comma, quote or line break is quoted, quotes doubled), header
/// <c>image,label,prob,rank,error</c>, one line per image and label; <c>rank</c> 1 is the most probable label.</item>
/// </list>
/// A JSON row also says <c>"precision"</c> (fp32, bf16, int8) when the command gives it.
/// Labels are in the order given, or with <c>--top-k N</c> the N most probable, best first. An image that failed is
/// <c>{"image", "error"}</c> (CSV: one line with empty label, prob and rank and the message under <c>error</c>).
/// </summary>
internal abstract class ClassifyOutput(TextWriter output, int? topK, string? precision = null)
{
    public static readonly string[] Formats = ["json", "jsonl", "csv"];

    protected TextWriter Output { get; } = output;

    public static ClassifyOutput For(string format, TextWriter output, int? topK, string? precision = null) => format switch
    {
        "json" => new JsonArray(output, topK, precision),
        "jsonl" => new JsonLines(output, topK, precision),
        "csv" => new Csv(output, topK),
        _ => throw new UsageException($"--format must be one of {string.Join(", ", Formats)}, not '{format}'"),
    };

    public abstract void Write(ClassifyRow row);

    /// <summary>Ends the output (closes the JSON array); call once after the last row.</summary>
    public virtual void Finish() => Output.Flush();

    /// <summary>The label indexes to show, in the order to show them, and each one's rank (1 = most probable).</summary>
    protected (int[] Shown, int[] Rank) Selection(ZeroShotResult result)
    {
        int count = result.Probabilities.Length;
        // Most probable first; equal probabilities keep the order the labels were given in.
        var byProbability = Enumerable.Range(0, count).OrderByDescending(i => result.Probabilities[i]).ThenBy(i => i).ToArray();
        var rank = new int[count];
        for (int r = 0; r < count; r++) rank[byProbability[r]] = r + 1;
        var shown = topK is int k ? byProbability[..Math.Min(k, count)] : Enumerable.Range(0, count).ToArray();
        return (shown, rank);
    }

    /// <summary>The JSON object of one row.</summary>
    protected void WriteObject(Utf8JsonWriter writer, ClassifyRow row)
    {
        if (row.Result is null)
        {
            writer.WriteStartObject();
            writer.WriteString("image", row.Image);
            writer.WriteString("error", row.Error);
            writer.WriteEndObject();
            return;
        }
        WriteOne(writer, row.Image, row.Result, Selection(row.Result).Shown, precision);
    }

    /// <summary><c>{"image", "labels", "probs"}</c> with the labels in the order given (the server's /classify reply).</summary>
    public static void WriteOne(Utf8JsonWriter writer, string image, ZeroShotResult result) =>
        WriteOne(writer, image, result, Enumerable.Range(0, result.Labels.Count).ToArray(), null);

    private static void WriteOne(Utf8JsonWriter writer, string image, ZeroShotResult result, int[] shown, string? precision)
    {
        writer.WriteStartObject();
        writer.WriteString("image", image);
        writer.WriteStartArray("labels");
        foreach (var i in shown) writer.WriteStringValue(result.Labels[i]);
        writer.WriteEndArray();
        writer.WriteStartArray("probs");
        foreach (var i in shown) writer.WriteNumberValue(result.Probabilities[i]);
        writer.WriteEndArray();
        if (precision != null) writer.WriteString("precision", precision);
        writer.WriteEndObject();
    }

    private sealed class JsonArray(TextWriter output, int? topK, string? precision) : ClassifyOutput(output, topK, precision)
    {
        private bool first = true;

        public override void Write(ClassifyRow row)
        {
            Output.Write(first ? "[" : ",");
            first = false;
            Output.Write(Encoding.UTF8.GetString(CliJson.ToUtf8(writer => WriteObject(writer, row))));
            Output.Flush();
        }

        public override void Finish()
        {
            Output.WriteLine(first ? "[]" : "]");
            base.Finish();
        }
    }

    private sealed class JsonLines(TextWriter output, int? topK, string? precision) : ClassifyOutput(output, topK, precision)
    {
        public override void Write(ClassifyRow row) => CliJson.WriteLine(Output, writer => WriteObject(writer, row));
    }

    private sealed class Csv : ClassifyOutput
    {
        public Csv(TextWriter output, int? topK) : base(output, topK) => Output.Write("image,label,prob,rank,error\n");

        public override void Write(ClassifyRow row)
        {
            if (row.Result is null)
            {
                Output.Write($"{Field(row.Image)},,,,{Field(row.Error!)}\n");
            }
            else
            {
                var (shown, rank) = Selection(row.Result);
                foreach (var i in shown)
                    Output.Write(string.Join(',', Field(row.Image), Field(row.Result.Labels[i]),
                        row.Result.Probabilities[i].ToString("R", CultureInfo.InvariantCulture),
                        rank[i].ToString(CultureInfo.InvariantCulture), "") + "\n");
            }
            Output.Flush();
        }

        /// <summary>A CSV field: quoted when it holds a comma, a quote, a line break or edge spaces; quotes doubled.</summary>
        public static string Field(string value) =>
            value.AsSpan().IndexOfAny(",\"\r\n") >= 0 || (value.Length > 0 && (value[0] == ' ' || value[^1] == ' '))
                ? "\"" + value.Replace("\"", "\"\"") + "\""
                : value;
    }
}
