using System.Security.Cryptography;
using System.Text.RegularExpressions;
using ManagedClip.IO.Distribution;

namespace ManagedClip.Tests.IO;

/// <summary>
/// The manifest of the real model (weights/manifest.json, embedded in the library) against independent records:
/// the model card's checkpoint hash and the SHA-256 of the shared copies of the small files.
/// </summary>
public sealed class RealManifestTests
{
    private const string Revision = "9f341de24bfb00180f1b847274256e9b65a3a32e";
    private const string CheckpointSha256 = "52cc993c5c5ff962bd0c60931874bc001e7e9b41666a385530f4a036294576be";

    private static readonly ModelManifest Manifest = ModelManifest.Default;

    [Fact]
    public void NamesTheSixFilesAtPinnedUrls()
    {
        Assert.Equal("https://huggingface.co", Manifest.Endpoint);
        Assert.Equal(
            ["config.json", "open_clip_config.json", "open_clip_pytorch_model.bin", "special_tokens_map.json", "tokenizer_config.json", "vocab.txt"],
            Manifest.Files.Select(f => f.Name).Order());
        foreach (var file in Manifest.Files.Where(f => f.Name != "config.json"))
            Assert.Equal($"microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224/resolve/{Revision}/{file.Name}", file.Url);
        Assert.Equal("microsoft/BiomedNLP-BiomedBERT-base-uncased-abstract/resolve/main/config.json", File("config.json").Url);
    }

    [Fact]
    public void EmbeddedManifestIsTheRepositoryFile()
    {
        var fromRepository = ModelManifest.Load(Path.Combine(RepositoryRoot(), "weights", "manifest.json"));
        Assert.Equal(fromRepository.Endpoint, Manifest.Endpoint);
        Assert.Equal(fromRepository.Files, Manifest.Files);
    }

    [Fact]
    public void CheckpointHashIsTheModelCards()
    {
        // The constant above is also checked against the model card text, so a typo in either is caught.
        var card = System.IO.File.ReadAllText(Path.Combine(TestData.ModelCard, "README.md"));
        Assert.Matches(new Regex($@"open_clip_pytorch_model\.bin.*{Revision}.*SHA-256 `{CheckpointSha256}`"), card);
        Assert.Equal(CheckpointSha256, File("open_clip_pytorch_model.bin").Sha256);
    }

    [Theory]
    [InlineData("vocab.txt", "reference/vocab.txt")]
    [InlineData("open_clip_config.json", "model-card/open_clip_config.current.json")]
    [InlineData("tokenizer_config.json", "model-card/tokenizer_config.json")]
    [InlineData("special_tokens_map.json", "model-card/special_tokens_map.json")]
    [InlineData("config.json", "reference/biomedbert_config.json")]
    public void SmallFileEntryMatchesSharedCopy(string name, string sharedCopy)
    {
        var bytes = System.IO.File.ReadAllBytes(Path.Combine(TestData.Root, sharedCopy));
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(bytes)), File(name).Sha256);
        Assert.Equal(bytes.Length, File(name).Size);
    }

    private static ModelFile File(string name) => Manifest.Files.Single(f => f.Name == name);

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
            if (System.IO.File.Exists(Path.Combine(dir.FullName, "ManagedClip.sln"))) return dir.FullName;
        throw new DirectoryNotFoundException("Could not locate ManagedClip.sln above " + AppContext.BaseDirectory);
    }
}
