using System.Text;
using ManagedClip.Tokenization;

namespace ManagedClip.Tests.Tokenization;

/// <summary>Edge cases of the public tokenizer: empty and blank text, lone surrogates, truncation, huge input.</summary>
public sealed class OpenClipBertTokenizerTests
{
    private static readonly Lazy<OpenClipBertTokenizer> Tokenizer = new(() => new OpenClipBertTokenizer(TestData.PathOf("vocab.txt")));
    private static OpenClipBertTokenizer T => Tokenizer.Value;

    private static int Id(string token)
    {
        var ids = T.Encode(token);
        Assert.Equal(3, ids.Length); // [CLS] token [SEP]: the word is a single vocabulary entry
        return ids[1];
    }

    [Theory]
    [InlineData("")]
    [InlineData("   \t\n  ")]
    [InlineData("\u3000\u00a0\u2028\u2029")]
    [InlineData("\u200b\ufeff\u0000")] // deleted: zero-width space (Cf), BOM, NUL
    public void EmptyOrBlankTextIsClsSep(string text) => Assert.Equal([2, 3], T.Encode(text));

    [Fact]
    public void SpecialIdsComeFromTheVocabulary()
    {
        Assert.Equal(0, T.PadTokenId);
        Assert.Equal(28895, T.VocabularySize);
        Assert.Equal(256, T.ContextLength);
    }

    [Fact]
    public void LoneSurrogatesAreReplacedThenDeletedLikePython()
    {
        // Python: ftfy turns an unpaired surrogate into U+FFFD, which BERT's cleaning deletes (joining the word).
        Assert.Equal("tumor\uFFFDcell", OpenClipBertTokenizer.Clean("tumor\uD800cell"));
        Assert.Equal(T.Encode("tumorcell"), T.Encode("tumor\uD800cell"));
        Assert.Equal(T.Encode("tumor cell"), T.Encode("tumor \uDC00cell"));
        Assert.Equal([2, 3], T.Encode("\uDE00\uD83D"));
        Assert.Equal([2, 3], T.Encode("\uD800"));
    }

    [Fact]
    public void TruncatesToContextLength()
    {
        var small = new OpenClipBertTokenizer(TestData.PathOf("vocab.txt"), contextLength: 4);
        int tumor = Id("tumor");
        Assert.Equal([2, tumor, tumor, 3], small.Encode("tumor tumor tumor tumor"));
        Assert.Equal([2, 3], new OpenClipBertTokenizer(TestData.PathOf("vocab.txt"), contextLength: 2).Encode("tumor"));
        Assert.Throws<ArgumentOutOfRangeException>(() => new OpenClipBertTokenizer(TestData.PathOf("vocab.txt"), contextLength: 1));
    }

    [Fact]
    public void NullTextIsRejected() => Assert.Throws<ArgumentNullException>(() => T.Encode(null!));

    [Fact]
    public void TenMegabytesOfTextAreTruncatedCorrectly()
    {
        // 10 MiB of UTF-16 text in one line: ftfy sees ten 1M-code-point segments; Encode stops after the first.
        // No timing assert (speed is measured in benchmarks); this checks completion and the exact prefix.
        int tumor = Id("tumor"), cell = Id("cell");
        var text = new StringBuilder(5 * 1024 * 1024);
        while (text.Length < 5 * 1024 * 1024) text.Append("tumor cell&amp; ");
        var ids = T.Encode(text.ToString());
        Assert.Equal(256, ids.Length);
        int amp = Id("&");
        for (int i = 1; i < 255; i++) Assert.Equal(((i - 1) % 3) switch { 0 => tumor, 1 => cell, _ => amp }, ids[i]);
        Assert.Equal(3, ids[255]);
    }

    [Fact]
    public void TenMegabytesWithoutAnySpaceIsOneUnknownWord()
    {
        var ids = T.Encode(new string('x', 10 * 1024 * 1024));
        Assert.Equal([2, 1, 3], ids);
    }

    [Fact]
    public void StoppingEarlyGivesTheSameTokensAsCleaningEverything()
    {
        // Segment boundaries (1M code points, newlines) with entities, mojibake and a '<' that turns off ftfy's HTML
        // decoding mid-text; the early-stopping path must agree with tokenizing the fully cleaned text.
        var text = new StringBuilder();
        text.Append(new string('a', 999_995)).Append("&amp;b caf\u00c3\u00a9\n");
        text.Append("x &lt; y\nthe <b> &amp;amp; line\n");
        // ~40,000 characters after the long line: several of the 8,192-character windows the tokenizer works in.
        for (int i = 0; i < 5000; i++) text.Append("w").Append(i % 10).Append(i % 7 == 0 ? "&nbsp;" : " ");
        var full = T.TokenStringsWithoutTruncation(text.ToString());
        Assert.True(full.Count > 254);
        var small = new OpenClipBertTokenizer(TestData.PathOf("vocab.txt"), contextLength: 9000);
        Assert.Equal(["[CLS]", .. full.Take(8998), "[SEP]"], small.TokenStrings(text.ToString()));
        Assert.Equal(["[CLS]", .. full.Take(254), "[SEP]"], T.TokenStrings(text.ToString()));
    }

    [Fact]
    public void EncodingIsThreadSafe()
    {
        string[] texts = ["chest X-ray", "café naïve", "ðŸ˜€ mojibake emoji", "&amp;amp; double escaped"];
        var expected = texts.Select(T.Encode).ToArray();
        Parallel.For(0, 200, i => Assert.Equal(expected[i % texts.Length], T.Encode(texts[i % texts.Length])));
    }
}
