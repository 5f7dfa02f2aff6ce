using ManagedClip.Tokenization;

namespace ManagedClip.Tests.Tokenization;

/// <summary>Vocabulary files that would silently give wrong ids are rejected with a message naming the problem.</summary>
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

    [Fact]
    public void DuplicateToken()
    {
        var e = Assert.Throws<InvalidDataException>(() => new OpenClipBertTokenizer(Write("dup.txt", Specials + "a\nb\na\n")));
        Assert.Contains("line 8", e.Message);
        Assert.Contains("line 6", e.Message);
    }

    [Fact]
    public void MissingSpecialToken()
    {
        var e = Assert.Throws<InvalidDataException>(() =>
            new OpenClipBertTokenizer(Write("nomask.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\ntumor\n")));
        Assert.Contains("[MASK]", e.Message);
    }

    [Fact]
    public void WindowsLineEndingsAreExplained()
    {
        var e = Assert.Throws<InvalidDataException>(() => new OpenClipBertTokenizer(Write("crlf.txt", Specials.Replace("\n", "\r\n"))));
        Assert.Contains("line endings", e.Message);
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
