using System.Buffers;
using System.Text;

namespace ManagedClip.Tokenization;

/// <summary>
/// BiomedCLIP's text tokenizer: open_clip's <c>HFTokenizer</c> over a BERT WordPiece vocabulary (not the byte-pair
/// "CLIP tokenizer" of OpenAI's models). Id for id what open_clip 2.23 computes with
/// <c>HFTokenizer("microsoft/BiomedNLP-BiomedBERT-base-uncased-abstract", clean="whitespace")</c>:
/// ftfy 6.1.1 + HTML unescaping + whitespace cleaning, then BERT's uncased WordPiece (transformers 4.35.2),
/// <c>[CLS]</c> + at most <c>contextLength − 2</c> pieces + <c>[SEP]</c>. No padding.
/// Immutable after construction and safe to use from several threads.
/// </summary>
/// <remarks>
/// Known limits of the reproduction: Unicode normalization (NFC/NFD) is .NET's (ICU), which knows characters newer
/// than Python 3.11's Unicode 14.0; such characters are deleted by BERT's cleaning either way, but a rare sequence
/// mixing them with combining marks could be reordered differently first. A decimal HTML reference of more than 4,300
/// digits gives U+FFFD here, where Python raises.
/// </remarks>
public sealed class OpenClipBertTokenizer
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
    public OpenClipBertTokenizer(string vocabularyPath, int contextLength = DefaultContextLength)
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

    /// <summary>The largest id <see cref="Encode"/> can return (the vocabulary's last token line).</summary>
    public int MaxTokenId => _vocabulary.MaxId;

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

    /// <summary>Characters after which the text may be cut (see <see cref="PiecesOf"/>).</summary>
    private static readonly SearchValues<char> CutAfter = SearchValues.Create(" \t\n\f");

    /// <summary>Roughly how much cleaned text is tokenized at a time, so that a long text stops early.</summary>
    private const int WindowLength = 8192;

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
        var carry = new StringBuilder(); // ftfy output not yet tokenized; it contains no cut point
        for (int start = 0; start < text.Length;)
        {
            int end = Ftfy.NextSegmentEnd(text, start);
            var fixedSegment = ftfy.FixNextSegment(text[start..end]);
            start = end;

            int firstCut = fixedSegment.AsSpan().IndexOfAny(CutAfter);
            if (firstCut < 0) { carry.Append(fixedSegment); continue; }
            var head = carry.Append(fixedSegment, 0, firstCut + 1).ToString();
            carry.Clear();
            foreach (var piece in PiecesOfCleaned(head)) yield return piece;

            for (int position = firstCut + 1; position < fixedSegment.Length;)
            {
                int cut = CutPointAfter(fixedSegment, position);
                if (cut < 0) { carry.Append(fixedSegment, position, fixedSegment.Length - position); break; }
                foreach (var piece in PiecesOfCleaned(fixedSegment[position..(cut + 1)])) yield return piece;
                position = cut + 1;
            }
        }
        foreach (var piece in PiecesOfCleaned(carry.ToString())) yield return piece;
    }

    private IEnumerable<string> PiecesOfCleaned(string fixedText) => _bert.Tokenize(OpenClipTextCleaner.CleanAfterFtfy(fixedText));

    // A cut point about WindowLength characters after `position`, else the last one after it, else -1.
    private static int CutPointAfter(string text, int position)
    {
        int windowEnd = position + WindowLength;
        if (windowEnd < text.Length)
        {
            int next = text.AsSpan(windowEnd).IndexOfAny(CutAfter);
            if (next >= 0) return windowEnd + next;
        }
        int last = text.AsSpan(position).LastIndexOfAny(CutAfter);
        return last < 0 ? -1 : position + last;
    }
}
