using System.Text;

namespace ManagedClip.Tokenization;

/// <summary>
/// BiomedCLIP's text tokenizer, id-for-id what open_clip 2.23 computes with
/// <c>HFTokenizer("microsoft/BiomedNLP-BiomedBERT-base-uncased-abstract", clean="whitespace")</c>:
/// ftfy 6.1.1 + HTML unescaping + whitespace cleaning, then BERT's uncased WordPiece (transformers 4.35.2),
/// <c>[CLS]</c> + at most <c>contextLength − 2</c> pieces + <c>[SEP]</c>. No padding.
/// Immutable after construction and safe to use from several threads.
/// </summary>
public sealed class ClipTokenizer
{
    /// <summary>BiomedCLIP's context length (its text tower has 256 positions in use).</summary>
    public const int DefaultContextLength = 256;

    private readonly WordPieceVocabulary _vocabulary;
    private readonly BertTokenizer _bert;

    /// <summary>Loads a WordPiece vocabulary (vocab.txt, one token per line, line number = id).</summary>
    /// <param name="vocabularyPath">Path of vocab.txt.</param>
    /// <param name="contextLength">Maximum number of ids <see cref="Encode"/> returns, [CLS] and [SEP] included.</param>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file is empty, not UTF-8, has duplicate or over-long tokens, or
    /// lacks one of [PAD], [UNK], [CLS], [SEP], [MASK].</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="contextLength"/> is less than 2.</exception>
    public ClipTokenizer(string vocabularyPath, int contextLength = DefaultContextLength)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(contextLength, 2);
        _vocabulary = WordPieceVocabulary.Load(vocabularyPath);
        _bert = new BertTokenizer(_vocabulary);
        ContextLength = contextLength;
    }

    /// <summary>Maximum number of ids per text, [CLS] and [SEP] included.</summary>
    public int ContextLength { get; }

    /// <summary>Number of tokens in the vocabulary (ids are 0 .. VocabularySize − 1).</summary>
    public int VocabularySize => _vocabulary.Count;

    /// <summary>Id of [PAD], for callers that batch texts of different lengths.</summary>
    public int PadTokenId => _vocabulary.PadId;

    /// <summary>
    /// Token ids of <paramref name="text"/>: [CLS], the first <see cref="ContextLength"/> − 2 WordPiece ids, [SEP].
    /// Any string is accepted (lone surrogates included); empty or blank text gives [CLS][SEP].
    /// </summary>
    public int[] Encode(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = new List<int> { _vocabulary.ClsId };
        foreach (var piece in PiecesOf(text).Take(ContextLength - 2)) ids.Add(_vocabulary.IdOf(piece));
        ids.Add(_vocabulary.SepId);
        return ids.ToArray();
    }

    /// <summary>open_clip's cleaned text (what the reference fixture calls "cleaned").</summary>
    internal static string Clean(string text) => OpenClipTextCleaner.Clean(text);

    /// <summary>Token strings of the whole text (no truncation), from the fully cleaned text; for tests and debugging.</summary>
    internal IReadOnlyList<string> TokenStringsWithoutTruncation(string text) => _bert.Tokenize(Clean(text)).ToList();

    /// <summary>Token strings as <see cref="Encode"/> produces them, [CLS] and [SEP] included.</summary>
    internal IReadOnlyList<string> TokenStrings(string text) =>
        ["[CLS]", .. PiecesOf(text).Take(ContextLength - 2), "[SEP]"];

    /// <summary>
    /// WordPiece tokens of the cleaned text, produced lazily so that a long text stops being processed once enough
    /// pieces exist. ftfy works on independent segments (lines, or 1,000,000 code points), so its output is built
    /// segment by segment. The later stages are cut only just after a space, tab, newline or form feed of ftfy's
    /// output: no HTML character reference contains one, and for the whitespace collapse and BERT they separate words,
    /// so the pieces of the parts, concatenated, are exactly the pieces of the whole.
    /// </summary>
    private IEnumerable<string> PiecesOf(string text)
    {
        var ftfy = new Ftfy();
        var pending = new StringBuilder(); // ftfy output not yet tokenized, free of cut points except in the newest segment
        for (int start = 0; start < text.Length;)
        {
            int end = Ftfy.NextSegmentEnd(text, start);
            int searchFrom = pending.Length;
            pending.Append(ftfy.FixNextSegment(text[start..end]));
            start = end;

            int cut = LastCutPoint(pending, searchFrom);
            if (cut < 0) continue;
            var ready = pending.ToString(0, cut + 1);
            pending.Remove(0, cut + 1);
            foreach (var piece in _bert.Tokenize(OpenClipTextCleaner.CleanAfterFtfy(ready))) yield return piece;
        }
        foreach (var piece in _bert.Tokenize(OpenClipTextCleaner.CleanAfterFtfy(pending.ToString()))) yield return piece;
    }

    private static int LastCutPoint(StringBuilder text, int searchFrom)
    {
        for (int i = text.Length - 1; i >= searchFrom; i--)
            if (text[i] is ' ' or '\t' or '\n' or '\f') return i;
        return -1;
    }
}
