namespace ManagedClip.Tokenization;

/// <summary>
/// ftfy 6.1.1's mojibake heuristic <c>is_bad(text)</c>: true when the text contains any of a list of character
/// sequences that are far likelier to be UTF-8 misread in a single-byte encoding than intended text. The character
/// categories and the sequence list follow ftfy's <c>badness.py</c> of the 6.1 line (with ü among the lower-case
/// accented letters, the 6.1.1 fix for "ß" in MacRoman mojibake; without 6.3's Windows-1257 and "law" additions);
/// the regex is evaluated by a direct scan over code points (linear time, Python's <c>\s</c>/<c>\w</c>/<c>.</c>
/// semantics) instead of a .NET Regex.
/// </summary>
internal static class FtfyBadness
{
    // MOJIBAKE_CATEGORIES
    private const string C1 = "\u0080-\u009f";
    private const string Bad = "¦¤¨¬¯¶§¸ƒˆˇ˘˛˜†‡‰⌐◊\ufffdªº";
    private const string Currency = "¢£¥₧€";
    private const string StartPunctuation = "¡«¿©΄΅‘‚“„•‹\uf8ff";
    private const string EndPunctuation = "®»˝”›™";
    private const string Numeric = "²³¹±¼½¾×µ÷⁄∂∆∏∑√∞∩∫≈≠≡≤≥№";
    private const string Kaomoji = "Ò-ÖÙ-Üò-öø-üŐ°";
    private const string UpperAccented = "À-ÑØÜÝĂĄĆČĎĐĘĚĞİĹĽŁŃŇŒŘŚŞŠŢŤŮŰŸŹŻŽҐ";
    private const string LowerAccented = "ßà-ñăąćčďđęěğĺľłœŕśşšťüźżžґﬁﬂ";
    private const string UpperCommon = "ÞΑ-ΩΆΈΉΊΌΎΏΪΫЁ-Я";
    private const string LowerCommon = "α-ωάέήίΰа-џ";
    private const string Box = "│┌┐┘├┤┬┼═-╬▀▄█▌▐░▒▓";
    private const string Common = "\u00a0\u00ad\u00b7\u00b4\u2013\u2014\u2015\u2026\u2019";

    private delegate bool Test(int codePoint);

    private static Test Set(params string[] bodies)
    {
        var set = new CodePointSet(bodies);
        return set.Contains;
    }

    private static readonly Test PythonSpace = c => PythonUnicode.IsSpace(c);
    private static readonly Test PythonWord = c => c == '_' || PythonUnicode.IsAlphanumeric(c);
    private static readonly Test AnyButNewline = c => c != '\n';
    private static readonly Test NotAsciiLetter = c => c is not (>= 'A' and <= 'Z' or >= 'a' and <= 'z');

    private sealed record Pattern(bool AnchoredAtStart, Test[] Elements);

    private static Pattern P(params Test[] elements) => new(false, elements);

    // BADNESS_RE, one alternative per entry ("[a-z]\s?[ÃÂ][ ]" is written out as its two lengths).
    private static readonly Pattern[] Patterns =
    [
        P(Set(C1)),
        P(Set(Bad, LowerAccented, UpperAccented, Box, StartPunctuation, EndPunctuation, Currency, Numeric), Set(Bad)),
        P(Set("a-zA-Z"), Set(LowerCommon, UpperCommon), Set(Bad)),
        P(Set(Bad), Set(LowerAccented, UpperAccented, Box, StartPunctuation, EndPunctuation, Currency, Numeric)),
        P(Set(LowerAccented, LowerCommon, Box, EndPunctuation, Currency, Numeric), Set(UpperAccented)),
        P(Set(Box, EndPunctuation, Currency, Numeric), Set(LowerAccented)),
        P(Set(LowerAccented, Box, EndPunctuation), Set(Currency)),
        P(PythonSpace, Set(UpperAccented), Set(Currency)),
        P(Set(UpperAccented, Box), Set(Numeric)),
        P(Set(LowerAccented, UpperAccented, Box, Currency, EndPunctuation), Set(StartPunctuation), Set(Numeric)),
        P(Set(LowerAccented, UpperAccented, Currency, Numeric, Box), Set(EndPunctuation), Set(StartPunctuation)),
        P(Set(Currency, Numeric, Box), Set(StartPunctuation)),
        P(Set("a-z"), Set(UpperAccented), Set(StartPunctuation, Currency)),
        P(Set(Box), Set(Kaomoji)),
        P(Set(LowerAccented, UpperAccented, Currency, Numeric, StartPunctuation, EndPunctuation), Set(Box)),
        P(Set(Box), Set(EndPunctuation)),
        P(Set(LowerAccented, UpperAccented), Set(EndPunctuation), PythonWord),
        // the ligature œ when not followed by an unaccented Latin letter
        P(Set("Œœ"), NotAsciiLetter),
        // common Windows-1252 2-character mojibake not covered above
        P(Set("ÂÃÎÐ"), Set("€Šš¢£Ÿž\u00a0\u00ad®©°·»", StartPunctuation, EndPunctuation, "–—´")),
        P(Set("×"), Set("²³")),
        // Windows-1252 mojibake of Arabic: four characters, since it includes the 'common' ones
        P(Set("ØÙ"), Set(Common, Currency, Bad, Numeric, StartPunctuation, "ŸŠ®°µ»"),
          Set("ØÙ"), Set(Common, Currency, Bad, Numeric, StartPunctuation, "ŸŠ®°µ»")),
        // Windows-1252 mojibake starting 3-character sequences of some South Asian alphabets
        P(Set("à"), Set("²µ¹¼½¾")),
        // MacRoman mojibake
        P(Set("√"), Set("±∂†≠®™´≤≥¥µø")),
        P(Set("≈"), Set("°¢")),
        P(Set("‚"), Set("Ä"), Set("ìîïòôúùû†°¢π")),
        P(Set("‚"), Set("âó"), Set("àä°ê")),
        // Windows-1251 mojibake
        P(Set("в"), Set("Ђ")),
        P(Set("ВГРС"), Set(C1, Bad, StartPunctuation, EndPunctuation, Currency, "°µ"), Set("ВГРС")),
        P(Set("Г"), Set("ў"), Set("В"), Set("Ђ"), Set("В"), AnyButNewline, Set("A-Za-z ")),
        // Windows-1252 encodings of 'à' and 'á', and of \xa0 itself
        P(Set("Ã"), Set("\u00a0¡")),
        P(Set("a-z"), Set("ÃÂ"), Set(" ")),
        P(Set("a-z"), PythonSpace, Set("ÃÂ"), Set(" ")),
        new Pattern(true, [Set("ÃÂ"), Set(" ")]),
        // Â before a character as an encoding of exactly that character
        P(Set("a-z.,?!", EndPunctuation), Set("Â"), Set(" ", StartPunctuation, EndPunctuation)),
        // Windows-1253 mojibake
        P(Set("β"), Set("€"), Set("™\u00a0Ά\u00ad®°")),
        P(Set("ΒΓΞΟ"), Set(C1, Bad, StartPunctuation, EndPunctuation, Currency, "°"), Set("ΒΓΞΟ")),
    ];

    // For each BMP character, the patterns whose first element accepts it (astral characters start none), so a
    // position is tried against a handful of patterns, or none, instead of all of them.
    private static readonly Pattern[][] PatternsStartingWith = BuildStartTable();

    private static Pattern[][] BuildStartTable()
    {
        var table = new Pattern[0x10000][];
        var shared = new Dictionary<ulong, Pattern[]>(); // one array per distinct set of patterns
        for (int c = 0; c < table.Length; c++)
        {
            ulong mask = 0;
            for (int p = 0; p < Patterns.Length; p++)
                if (Patterns[p].Elements[0](c)) mask |= 1UL << p;
            if (!shared.TryGetValue(mask, out var patterns))
            {
                patterns = Patterns.Where((_, p) => (mask & (1UL << p)) != 0).ToArray();
                shared.Add(mask, patterns);
            }
            table[c] = patterns;
        }
        return table;
    }

    /// <summary><c>ftfy.badness.is_bad</c>: <c>BADNESS_RE.search(text)</c> finds something.</summary>
    public static bool IsBad(string text)
    {
        // Every pattern needs a non-ASCII character.
        if (System.Text.Ascii.IsValid(text)) return false;
        for (int i = 0; i < text.Length; i += char.IsSurrogatePair(text, i) ? 2 : 1)
            foreach (var pattern in PatternsStartingWith[text[i]])
                if ((!pattern.AnchoredAtStart || i == 0) && MatchesAt(pattern.Elements, text, i))
                    return true;
        return false;
    }

    private static bool MatchesAt(Test[] elements, string text, int index)
    {
        foreach (var element in elements)
        {
            if (index >= text.Length) return false;
            int codePoint = PythonUnicode.CodePointAt(text, index, out int width);
            if (!element(codePoint)) return false;
            index += width;
        }
        return true;
    }
}
