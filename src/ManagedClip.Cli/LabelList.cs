using System.Text;

namespace ManagedClip.Cli;

/// <summary>
/// Candidate labels from the command line. <c>--labels</c> is a comma-separated list; a label that itself contains a
/// comma is written in double quotes, and a double quote inside quotes is doubled, as in CSV:
/// <c>--labels 'brain MRI, "carcinoma, squamous cell", chest X-ray'</c> gives three labels.
/// <c>--labels-file</c> holds one label per line, taken as written (commas and quotes included).
/// Labels are trimmed; an empty label is an error. A label is text: a leading <c>@</c> is kept as is.
/// </summary>
internal static class LabelList
{
    /// <summary>Largest labels file read: a thousand labels of a few words fit in far less.</summary>
    public const long MaxFileBytes = 1 << 20;

    /// <summary>Splits a <c>--labels</c> value into trimmed labels.</summary>
    /// <exception cref="UsageException">Unbalanced quotes, text after a closing quote, or an empty label.</exception>
    public static string[] Parse(string text)
    {
        var labels = new List<string>();
        var label = new StringBuilder();
        int i = 0;
        while (true)
        {
            while (i < text.Length && char.IsWhiteSpace(text[i])) i++;
            label.Clear();
            if (i < text.Length && text[i] == '"')
            {
                // A quoted label runs to the next lone quote; "" inside it stands for one quote.
                int opening = i++;
                while (true)
                {
                    if (i >= text.Length)
                        throw new UsageException($"--labels: the quote at character {opening + 1} is never closed (write a quote inside a quoted label as \"\")");
                    if (text[i] == '"')
                    {
                        if (i + 1 < text.Length && text[i + 1] == '"') { label.Append('"'); i += 2; continue; }
                        i++;
                        break;
                    }
                    label.Append(text[i++]);
                }
                while (i < text.Length && char.IsWhiteSpace(text[i])) i++;
                if (i < text.Length && text[i] != ',')
                    throw new UsageException($"--labels: unexpected text after the quoted label \"{label}\" at character {i + 1} (expected a comma)");
            }
            else
            {
                while (i < text.Length && text[i] != ',') label.Append(text[i++]);
            }
            labels.Add(label.ToString().Trim());
            if (i >= text.Length) break;
            i++; // the comma
        }
        return Problem(labels, "--labels") is { } problem ? throw new UsageException(problem) : labels.ToArray();
    }

    /// <summary>Reads a labels file: UTF-8, one label per line, blank lines skipped.</summary>
    /// <exception cref="InvalidDataException">Too large, not UTF-8, or no labels.</exception>
    public static string[] ReadFile(string path)
    {
        var info = new FileInfo(path);
        if (!info.Exists) throw new FileNotFoundException($"{path}: no such labels file", path);
        if (info.Length > MaxFileBytes)
            throw new InvalidDataException($"{path}: {info.Length} bytes is too large for a labels file (at most {MaxFileBytes >> 20} MB)");
        string text;
        try
        {
            text = new UTF8Encoding(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true).GetString(File.ReadAllBytes(path));
        }
        catch (DecoderFallbackException)
        {
            throw new InvalidDataException($"{path}: not UTF-8 text (save the labels file as UTF-8)");
        }
        if (text.Length > 0 && text[0] == '\uFEFF') text = text[1..]; // a byte-order mark is not part of the first label
        var labels = text.ReplaceLineEndings("\n").Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0).ToList();
        if (labels.Count == 0) throw new InvalidDataException($"{path}: the labels file has no labels (one label per line)");
        return Problem(labels, path) is { } problem ? throw new InvalidDataException(problem) : labels.ToArray();
    }

    /// <summary>What is wrong with a label list, or null.</summary>
    private static string? Problem(List<string> labels, string where)
    {
        if (labels.Count == 1 && labels[0].Length == 0) return $"{where}: the label list is empty";
        int empty = labels.FindIndex(l => l.Length == 0);
        if (empty >= 0) return $"{where}: label {empty + 1} of {labels.Count} is empty (check the commas)";
        if (labels.Count > ScoringSchema.MaxLabels) return $"{where}: {labels.Count} labels; at most {ScoringSchema.MaxLabels}";
        return null;
    }
}
