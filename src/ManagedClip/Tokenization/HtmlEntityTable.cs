using System.Globalization;
using System.Text;

namespace ManagedClip.Tokenization;

/// <summary>
/// Named HTML character references, read once from two embedded tables (Data/*.tsv):
/// the HTML5 list exactly as Python 3.11's <c>html.entities.html5</c> holds it (2,231 names, 106 of them also
/// without ';'), and ftfy's extra upper-cased spellings such as "NTILDE;".
/// </summary>
internal static class HtmlEntityTable
{
    /// <summary>Python's <c>html.entities.html5</c>: name (with ';' where the standard has one) → replacement.</summary>
    public static IReadOnlyDictionary<string, string> Html5 => Tables.Value.Html5;

    /// <summary>ftfy's <c>HTML_ENTITIES</c>: "&amp;name;" → replacement (HTML5 names ending in ';' + upper-cased ones).</summary>
    public static IReadOnlyDictionary<string, string> Ftfy => Tables.Value.Ftfy;

    /// <summary>Longest name in <see cref="Html5"/>, in characters.</summary>
    public const int LongestHtml5Name = 32;

    private static readonly Lazy<(Dictionary<string, string> Html5, Dictionary<string, string> Ftfy)> Tables =
        new(Load, LazyThreadSafetyMode.ExecutionAndPublication);

    private static (Dictionary<string, string>, Dictionary<string, string>) Load()
    {
        var html5 = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (name, value) in ReadResource("html5-entities.tsv")) html5.Add(name, value);
        var ftfy = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (name, value) in html5)
            if (name.EndsWith(';')) ftfy.Add("&" + name, value);
        foreach (var (name, value) in ReadResource("ftfy-uppercase-entities.tsv")) ftfy.Add("&" + name, value);
        return (html5, ftfy);
    }

    private static IEnumerable<(string Name, string Value)> ReadResource(string fileName)
    {
        var resourceName = "ManagedClip.Tokenization." + fileName;
        using var stream = typeof(HtmlEntityTable).Assembly.GetManifestResourceStream(resourceName)
            ?? throw new InvalidOperationException($"Embedded resource {resourceName} is missing from the assembly.");
        using var reader = new StreamReader(stream, Encoding.UTF8);
        var rows = new List<(string, string)>();
        while (reader.ReadLine() is { } line)
        {
            if (line.Length == 0 || line[0] == '#') continue;
            int tab = line.IndexOf('\t');
            var value = new StringBuilder();
            foreach (var hex in line[(tab + 1)..].Split(' '))
                PythonUnicode.AppendCodePoint(value, int.Parse(hex, NumberStyles.HexNumber, CultureInfo.InvariantCulture));
            rows.Add((line[..tab], value.ToString()));
        }
        return rows;
    }
}
