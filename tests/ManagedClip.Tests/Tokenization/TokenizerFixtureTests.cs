using System.Text.Json;
using ManagedClip.Tokenization;

namespace ManagedClip.Tests.Tokenization;

/// <summary>
/// The 58 reference texts of testdata/reference/tokenizer.jsonl, produced by open_clip 2.23 + transformers 4.35.2 +
/// ftfy 6.1.1. Everything must match exactly: the cleaned text, the token strings and the ids.
/// </summary>
public sealed class TokenizerFixtureTests
{
    private static readonly Lazy<OpenClipBertTokenizer> Tokenizer = new(() => new OpenClipBertTokenizer(TestData.PathOf("vocab.txt")));

    private sealed record FixtureLine(string Text, string Cleaned, int NumTokens, string[] Tokens, int[] InputIds);

    private static readonly Lazy<FixtureLine[]> Lines = new(() => File.ReadLines(TestData.PathOf("tokenizer.jsonl"))
        .Select(line =>
        {
            var root = JsonDocument.Parse(line).RootElement;
            return new FixtureLine(
                root.GetProperty("text").GetString()!,
                root.GetProperty("cleaned").GetString()!,
                root.GetProperty("num_tokens").GetInt32(),
                root.GetProperty("tokens").EnumerateArray().Select(e => e.GetString()!).ToArray(),
                root.GetProperty("input_ids").EnumerateArray().Select(e => e.GetInt32()).ToArray());
        }).ToArray());

    public static TheoryData<int> LineNumbers()
    {
        var data = new TheoryData<int>();
        for (int i = 0; i < 58; i++) data.Add(i);
        return data;
    }

    [Fact]
    public void FixtureHas58Lines() => Assert.Equal(58, Lines.Value.Length);

    [Theory]
    [MemberData(nameof(LineNumbers))]
    public void CleanedTextMatchesOpenClip(int line)
    {
        var reference = Lines.Value[line];
        Assert.Equal(reference.Cleaned, OpenClipBertTokenizer.Clean(reference.Text));
    }

    [Theory]
    [MemberData(nameof(LineNumbers))]
    public void TokensMatchTransformers(int line)
    {
        var reference = Lines.Value[line];
        Assert.Equal(reference.Tokens, Tokenizer.Value.TokenStrings(reference.Text));
    }

    [Theory]
    [MemberData(nameof(LineNumbers))]
    public void IdsMatchTransformersAndOnlyPaddingIsLeftOut(int line)
    {
        var reference = Lines.Value[line];
        var ids = Tokenizer.Value.Encode(reference.Text);
        Assert.Equal(reference.NumTokens, ids.Length);
        Assert.Equal(reference.InputIds[..ids.Length], ids);
        // The reference pads to 256 with [PAD] = 0; our API does not pad.
        Assert.All(reference.InputIds[ids.Length..], id => Assert.Equal(Tokenizer.Value.PadTokenId, id));
        Assert.Equal(256, reference.InputIds.Length);
    }
}
