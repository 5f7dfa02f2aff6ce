using System.Text;

namespace ManagedClip.Tokenization;

/// <summary>
/// A BERT WordPiece vocabulary (vocab.txt): one token per line, the line number is the id, as transformers'
/// <c>load_vocab</c> reads it (UTF-8, only '\n' separates lines). Loading rejects files that would silently give
/// wrong ids: duplicates, missing special tokens, invalid UTF-8, absurdly long lines.
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

    public int Count => _ids.Count;
    public int PadId { get; }
    public int UnknownId { get; }
    public int ClsId { get; }
    public int SepId { get; }

    public bool TryGetId(string token, out int id) => _ids.TryGetValue(token, out id);

    public int IdOf(string token) => _ids[token];

    public static WordPieceVocabulary Load(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var file = new FileInfo(path);
        if (!file.Exists) throw new FileNotFoundException($"Vocabulary file not found: {path}", path);
        if (file.Length == 0) throw new InvalidDataException($"Vocabulary file {path} is empty.");
        if (file.Length > MaxFileBytes)
            throw new InvalidDataException($"Vocabulary file {path} has {file.Length} bytes; a WordPiece vocab.txt has well under {MaxFileBytes}.");

        string content;
        try
        {
            content = new UTF8Encoding(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true)
                .GetString(File.ReadAllBytes(path));
        }
        catch (DecoderFallbackException e)
        {
            throw new InvalidDataException($"Vocabulary file {path} is not valid UTF-8: {e.Message}", e);
        }
        return Parse(content, path);
    }

    internal static WordPieceVocabulary Parse(string content, string sourceName)
    {
        var ids = new Dictionary<string, int>(StringComparer.Ordinal);
        int lineStart = 0;
        for (int lineIndex = 0; lineStart < content.Length; lineIndex++)
        {
            int newline = content.IndexOf('\n', lineStart);
            int lineEnd = newline < 0 ? content.Length : newline;
            if (lineEnd - lineStart > MaxTokenLength)
                throw new InvalidDataException(
                    $"Vocabulary {sourceName}, line {lineIndex + 1}: {lineEnd - lineStart} characters; tokens are at most {MaxTokenLength}.");
            var token = content[lineStart..lineEnd];
            if (!ids.TryAdd(token, lineIndex))
                throw new InvalidDataException(
                    $"Vocabulary {sourceName}, line {lineIndex + 1}: token \"{token}\" already appears on line {ids[token] + 1}.");
            lineStart = lineEnd + 1;
        }
        if (ids.Count == 0) throw new InvalidDataException($"Vocabulary {sourceName} has no tokens.");
        foreach (var special in SpecialTokens)
        {
            if (!ids.ContainsKey(special))
            {
                string hint = ids.ContainsKey(special + "\r") ? " (the file has Windows line endings; use \\n only)" : "";
                throw new InvalidDataException($"Vocabulary {sourceName} lacks the special token {special}{hint}.");
            }
        }
        return new WordPieceVocabulary(ids);
    }
}
