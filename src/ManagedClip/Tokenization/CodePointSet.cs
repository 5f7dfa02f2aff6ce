namespace ManagedClip.Tokenization;

/// <summary>
/// A set of code points written like a regex character class body: literal characters and "a-z" ranges
/// (e.g. "À-Ñß"). Membership is a bitmap lookup for the Basic Multilingual Plane, where all of ftfy's classes live.
/// </summary>
internal sealed class CodePointSet
{
    private readonly ulong[] _bits = new ulong[0x10000 / 64]; // [bmp code point / 64]

    public CodePointSet(params string[] classBodies)
    {
        foreach (var body in classBodies)
        {
            for (int i = 0; i < body.Length; i++)
            {
                if (i + 2 < body.Length && body[i + 1] == '-')
                {
                    for (int c = body[i]; c <= body[i + 2]; c++) Add(c);
                    i += 2;
                }
                else Add(body[i]);
            }
        }
    }

    private void Add(int c) => _bits[c >> 6] |= 1UL << (c & 63);

    public bool Contains(int codePoint) => codePoint < 0x10000 && (_bits[codePoint >> 6] & (1UL << (codePoint & 63))) != 0;
}
