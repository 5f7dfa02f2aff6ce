using ManagedClip.Tokenization;

namespace ManagedClip.Tests.Tokenization;

/// <summary>Python 3.11 <c>html.unescape</c> edge cases; expected strings were printed by Python 3.11 itself.</summary>
public sealed class PythonHtmlTests
{
    [Theory]
    [InlineData("&amp;amp;", "&amp;")]
    [InlineData("&ampx", "&x")] // legacy name without ';'
    [InlineData("&notit;", "¬it;")] // longest known prefix
    [InlineData("&#x41;&#65;&#0;&#x80;&#xD800;&#1114112;&#11;&#x1F600;&#13;", "AA\uFFFD€\uFFFD\uFFFD😀\r")]
    [InlineData("&#12ab;", "\fab;")]
    [InlineData("&unknown; & &# &#x; &;", "&unknown; & &# &#x; &;")]
    [InlineData("&NotEqualTilde;&nbsp&lt", "\u2242\u0338\u00a0<")]
    [InlineData("&#0000000000065;", "A")]
    [InlineData("&#x110000;&#xfdd0;&#x10FFFF;&#x81;", "\uFFFD\u0081")]
    public void MatchesPython(string input, string expected) => Assert.Equal(expected, PythonHtml.Unescape(input));

    [Fact]
    public void EntityTableIsComplete()
    {
        Assert.Equal(2231, HtmlEntityTable.Html5.Count); // len(html.entities.html5) in Python 3.11
        Assert.Equal(2125 + 1376, HtmlEntityTable.Ftfy.Count); // names with ';' + ftfy's upper-case spellings
    }
}
