using ManagedClip.Tokenization;

namespace ManagedClip.Tests.Tokenization;

/// <summary>
/// ftfy behaviour beyond the fixture, with expected values taken from ftfy 6.1.1's own documentation (docstrings of
/// <c>ftfy/__init__.py</c> and <c>ftfy/fixes.py</c>); the pieces the fixture does not reach (byte-A0 restoration,
/// lossy sequences, C1 controls, upper-case entities, terminal escapes, half-width katakana).
/// </summary>
public sealed class FtfyTests
{
    [Theory]
    [InlineData("âœ” No problems", "✔ No problems")]
    [InlineData("&macr;\\_(ã\u0083\u0084)_/&macr;", "¯\\_(ツ)_/¯")]
    [InlineData("ＬＯＵＤ　ＮＯＩＳＥＳ", "LOUD NOISES")]
    [InlineData("Ｕﾀｰﾝ", "Uターン")]
    [InlineData("ﬂuﬃeﬆ", "fluffiest")]
    [InlineData("\u001b[36;44mI'm blue, da ba dee da ba doo...\u001b[0m", "I'm blue, da ba dee da ba doo...")]
    [InlineData("This string is made of two things:\u20291. Unicode\u20282. Spite", "This string is made of two things:\n1. Unicode\n2. Spite")]
    [InlineData("Content-type: text/plain\r\n\r\nHi.", "Content-type: text/plain\n\nHi.")]
    [InlineData("\ufeffWhere do you want to go today?", "Where do you want to go today?")]
    [InlineData("P&eacute;rez", "Pérez")]
    [InlineData("P&EACUTE;REZ", "PÉREZ")]
    [InlineData("BUNDESSTRA&SZLIG;E", "BUNDESSTRASSE")]
    [InlineData("&ntilde; &Ntilde; &NTILDE; &nTILDE;", "ñ Ñ Ñ &nTILDE;")]
    [InlineData("&Jscr;ohn &HilbertSpace;ancock", "𝒥ohn ℋancock")]
    [InlineData("&checkmark;", "✓")]
    [InlineData("<em>HTML entities &lt;3</em>", "<em>HTML entities &lt;3</em>")] // a '<' means HTML: entities stay
    public void FixTextMatchesFtfyDocumentation(string input, string expected) =>
        Assert.Equal(expected, Ftfy.FixText(input));

    [Theory]
    [InlineData("sÃ³", "só")]
    [InlineData("Ã³", "ó")]
    [InlineData("voilÃ le travail", "voilà le travail")] // restore_byte_a0: the space was a mangled A0
    [InlineData("&ATILDE;&SUP3;", "&ATILDE;&SUP3;")]
    [InlineData("â€œ like this â€\ufffd", "“ like this \ufffd")] // replace_lossy_sequences
    [InlineData("This text was never UTF-8 at all\u0085", "This text was never UTF-8 at all…")] // Latin-1 meant as 1252
    [InlineData("not such a fan of Charlotte Brontë…”", "not such a fan of Charlotte Brontë…”")] // left alone
    public void FixEncodingMatchesFtfyDocumentation(string input, string expected) =>
        Assert.Equal(expected, FtfyEncodingFix.FixEncoding(input));

    [Fact]
    public void HtmlDecodingStopsForTheRestOfTheTextAfterALineWithALessThanSign()
    {
        // fix_text switches "auto" entity decoding off for good at the first segment containing '<'.
        Assert.Equal("&\n<b>\n&amp;", Ftfy.FixText("&amp;\n<b>\n&amp;"));
    }

    [Fact]
    public void LoneSurrogatesBecomeReplacementCharacters()
    {
        Assert.Equal("a\uFFFDb", Ftfy.FixText("a\uD800b"));
        Assert.Equal("\uFFFD\uFFFD", Ftfy.FixText("\uDE00\uD83D")); // a pair in the wrong order
        Assert.Equal("😀", Ftfy.FixText("\uD83D\uDE00"));
    }

    [Fact]
    public void LongLinesAreFixedInSegmentsOfAMillionCodePoints()
    {
        // A surrogate pair counts once, as in Python: 10 astral characters + 999,990 'a' make one full segment.
        var text = string.Concat(Enumerable.Repeat("😀", 10)) + new string('a', 999_990) + "b";
        Assert.Equal(text.Length - 1, Ftfy.NextSegmentEnd(text, 0));
        Assert.Equal(text.Length, Ftfy.NextSegmentEnd(text, text.Length - 1));
        Assert.Equal(3, Ftfy.NextSegmentEnd("ab\ncd", 1));
    }
}
