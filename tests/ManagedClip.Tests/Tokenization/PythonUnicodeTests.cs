using System.Globalization;
using System.Text;
using ManagedClip.Tokenization;

namespace ManagedClip.Tests.Tokenization;

/// <summary>The Unicode 14.0 view of Python 3.11 against .NET 10's newer tables.</summary>
public sealed class PythonUnicodeTests
{
    [Theory]
    [InlineData(0x1FA75, UnicodeCategory.OtherNotAssigned)] // LIGHT BLUE HEART, Unicode 15.0
    [InlineData(0x31350, UnicodeCategory.OtherNotAssigned)] // CJK Extension H, Unicode 15.0
    [InlineData(0x2EBF0, UnicodeCategory.OtherNotAssigned)] // CJK Extension I, Unicode 15.1
    [InlineData(0x1FA7A, UnicodeCategory.OtherSymbol)] // STETHOSCOPE, Unicode 12.0: assigned
    [InlineData(0x1171E, UnicodeCategory.NonSpacingMark)] // Mn in 14.0, Mc later
    [InlineData(0xD800, UnicodeCategory.Surrogate)]
    public void CategoryIsUnicode14(int codePoint, UnicodeCategory expected) =>
        Assert.Equal(expected, PythonUnicode.Category(codePoint));

    [Theory]
    [InlineData(0x130, "i\u0307")] // Python's full mapping; .NET's invariant mapping keeps U+0130
    [InlineData('A', "a")]
    [InlineData(0x3A3, "σ")] // one code point at a time: never the final form ς
    [InlineData(0xA7CB, "\uA7CB")] // assigned in 16.0 (lower-cases to U+0264 there): unchanged in Python 3.11
    public void LowerIsPythons(int codePoint, string expected)
    {
        var output = new StringBuilder();
        PythonUnicode.AppendLower(output, codePoint);
        Assert.Equal(expected, output.ToString());
    }

    [Fact]
    public void RegexWhitespaceExcludesInformationSeparatorsAndZeroWidthCharacters()
    {
        Assert.True(PythonUnicode.IsSpace(0x1C));
        Assert.False(PythonUnicode.IsRegexWhitespace(0x1C));
        Assert.True(PythonUnicode.IsRegexWhitespace(0x3000));
        Assert.True(PythonUnicode.IsRegexWhitespace(0x85));
        Assert.False(PythonUnicode.IsRegexWhitespace(0x200B));
        Assert.False(PythonUnicode.IsSpace(0x200B));
    }
}
