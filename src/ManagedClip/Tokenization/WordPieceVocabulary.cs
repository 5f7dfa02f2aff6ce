using ManagedClip.IO;

namespace ManagedClip.Tokenization;

/// <summary>
/// A BERT WordPiece vocabulary (vocab.txt): one token per line, the line number is the id, read as transformers
/// 4.35's <c>load_vocab</c> reads it: the file opened as UTF-8 text (Python's universal newlines, so "\r\n" and a
/// lone "\r" end a line too), <c>readlines()</c>, each line stripped of its "\n", and <c>vocab[token] = index</c>,
/// so a token listed twice takes the id of its last line and a blank line is the empty token (never matched).
/// Loading refuses what HF would also choke on or what cannot be a vocabulary: invalid UTF-8, a missing special
/// token, absurdly long lines.
/// </summary>
internal sealed class WordPieceVocabulary
{
    /// <summary>No real WordPiece token comes close (BiomedBERT's longest has 24 characters).</summary>
    public const int MaxTokenLength = 1024;

    /// <summary>A 30k-token vocabulary is ~230 kB; refuse anything that is clearly not one.</summary>
    public const long MaxFileBytes = 64L * 1024 * 1024;

    public static readonly string[] SpecialTokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];

    private readonly Dictionary<string, int> _ids;

    private WordPieceVocabulary(Dictionary<string, int> ids)
    {
        _ids = ids;
        PadId = ids["[PAD]"];
        UnknownId = ids["[UNK]"];
        ClsId = ids["[CLS]"];
        SepId = ids["[SEP]"];
    }

    /// <summary>Distinct tokens (HF's <c>len(vocab)</c>).</summary>
    public int Count => _ids.Count;

    /// <summary>The largest id any token has (the last line holding a token; more than Count − 1 with duplicates).</summary>
    public int MaxId { get; private init; }

    public int PadId { get; }
    public int UnknownId { get; }
    public int ClsId { get; }
    public int SepId { get; }

    public bool TryGetId(string token, out int id) => _ids.TryGetValue(token, out id);

    public int IdOf(string token) => _ids[token];

    public static WordPieceVocabulary Load(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        return Parse(GuardedFile.ReadAllText(path, MaxFileBytes, "vocabulary file"), path);
    }

    internal static WordPieceVocabulary Parse(string content, string sourceName)
    {
        var ids = new Dictionary<string, int>(StringComparer.Ordinal);
        int lineIndex = 0;
        for (int lineStart = 0; lineStart < content.Length; lineIndex++)
        {
            // A line ends at "\n", "\r\n" or "\r" (universal newlines); the last one may have no end.
            int lineEnd = content.AsSpan(lineStart).IndexOfAny('\n', '\r');
            lineEnd = lineEnd < 0 ? content.Length : lineStart + lineEnd;
            if (lineEnd - lineStart > MaxTokenLength)
                throw new InvalidDataException(
                    $"Vocabulary {UserText.Quote(sourceName)}, line {lineIndex + 1}: {lineEnd - lineStart} characters; tokens are at most {MaxTokenLength}.");
            ids[content[lineStart..lineEnd]] = lineIndex; // a repeated token takes its last line's id, as in HF
            lineStart = lineEnd + (lineEnd + 1 < content.Length && content[lineEnd] == '\r' && content[lineEnd + 1] == '\n' ? 2 : 1);
        }
        if (ids.Count == 0) throw new InvalidDataException($"Vocabulary {UserText.Quote(sourceName)} has no tokens.");
        foreach (var special in SpecialTokens)
        {
            if (!ids.ContainsKey(special))
                throw new InvalidDataException($"Vocabulary {UserText.Quote(sourceName)} lacks the special token {special}.");
        }
        return new WordPieceVocabulary(ids) { MaxId = ids.Values.Max() };
    }
}
