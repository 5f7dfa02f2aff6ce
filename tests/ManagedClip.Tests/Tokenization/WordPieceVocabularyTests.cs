using ManagedClip.Tokenization;

namespace ManagedClip.Tests.Tokenization;

/// <summary>
/// vocab.txt read as transformers 4.35's <c>load_vocab</c> reads it (CRLF and lone CR end lines, a repeated token
/// takes its last line's id, blank lines are the empty token); files HF would also fail on are refused with a
/// message naming the problem.
/// </summary>
public sealed class WordPieceVocabularyTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("managedclip-vocab-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private string Write(string name, byte[] content)
    {
        var path = Path.Combine(_directory, name);
        File.WriteAllBytes(path, content);
        return path;
    }

    private string Write(string name, string content) => Write(name, System.Text.Encoding.UTF8.GetBytes(content));

    private const string Specials = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n";

    [Fact]
    public void LoadsAMinimalVocabulary()
    {
        var tokenizer = new OpenClipBertTokenizer(Write("ok.txt", Specials + "tumor\n##s\n"));
        Assert.Equal(7, tokenizer.VocabularySize);
        Assert.Equal([2, 5, 6, 3], tokenizer.Encode("Tumors"));
        Assert.Equal([2, 1, 3], tokenizer.Encode("cell"));
    }

    [Fact]
    public void MissingFile()
    {
        var path = Path.Combine(_directory, "nope.txt");
        var e = Assert.Throws<FileNotFoundException>(() => new OpenClipBertTokenizer(path));
        Assert.Contains(path, e.Message);
    }

    [Fact]
    public void EmptyFile()
    {
        var e = Assert.Throws<InvalidDataException>(() => new OpenClipBertTokenizer(Write("empty.txt", "")));
        Assert.Contains("empty", e.Message);
    }

    /// <summary>HF: <c>vocab[token] = index</c> line by line, so the last line of a repeated token gives its id.</summary>
    [Fact]
    public void DuplicateTokenTakesItsLastLine()
    {
        var tokenizer = new OpenClipBertTokenizer(Write("dup.txt", Specials + "tumor\n##s\ntumor\n"));
        Assert.Equal(7, tokenizer.VocabularySize); // len(vocab): distinct tokens
        Assert.Equal(7, tokenizer.MaxTokenId);
        Assert.Equal([2, 7, 6, 3], tokenizer.Encode("Tumors"));
    }

    [Fact]
    public void MissingSpecialToken()
    {
        var e = Assert.Throws<InvalidDataException>(() =>
            new OpenClipBertTokenizer(Write("nomask.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\ntumor\n")));
        Assert.Contains("[MASK]", e.Message);
    }

    /// <summary>Python's text mode (universal newlines) ends lines at CRLF and lone CR too.</summary>
    [Theory]
    [InlineData("\r\n")]
    [InlineData("\r")]
    public void WindowsAndOldMacLineEndsGiveTheSameIds(string lineEnd)
    {
        var unix = new OpenClipBertTokenizer(Write("lf.txt", Specials + "tumor\n##s\n"));
        var other = new OpenClipBertTokenizer(Write("crlf.txt", (Specials + "tumor\n##s\n").Replace("\n", lineEnd)));
        Assert.Equal(unix.Encode("Tumors cell"), other.Encode("Tumors cell"));
        Assert.Equal(unix.VocabularySize, other.VocabularySize);
    }

    /// <summary>Trailing blank lines are the empty token (an id WordPiece never produces); no new ids for real tokens.</summary>
    [Fact]
    public void TrailingBlankLinesAreHarmless()
    {
        var tokenizer = new OpenClipBertTokenizer(Write("blank.txt", Specials + "tumor\n##s\n\n\n"));
        Assert.Equal([2, 5, 6, 3], tokenizer.Encode("Tumors"));
        Assert.Equal(8, tokenizer.VocabularySize); // the seven tokens and ""
    }

    [Fact]
    public void NamedPipeIsRefusedWithoutBlocking()
    {
        var fifo = Path.Combine(_directory, "vocab.fifo");
        if (!IO.SpecialFiles.TryMakeFifo(fifo)) return; // not on this platform (see SpecialFiles)
        var e = Assert.Throws<InvalidDataException>(() => new OpenClipBertTokenizer(fifo));
        Assert.Contains("named pipe", e.Message);
    }

    [Fact]
    public void HugeLine()
    {
        var e = Assert.Throws<InvalidDataException>(() =>
            new OpenClipBertTokenizer(Write("huge.txt", Specials + new string('a', 5000) + "\n")));
        Assert.Contains("line 6", e.Message);
    }

    [Fact]
    public void InvalidUtf8()
    {
        var bytes = System.Text.Encoding.UTF8.GetBytes(Specials).Concat(new byte[] { 0xC3, 0x28, 0x0A }).ToArray();
        var e = Assert.Throws<InvalidDataException>(() => new OpenClipBertTokenizer(Write("latin.txt", bytes)));
        Assert.Contains("UTF-8", e.Message);
    }
}
