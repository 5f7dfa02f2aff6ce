using System.Text.Json.Nodes;
using ManagedClip.IO;
using ManagedClip.IO.Distribution;
using ManagedClip.IO.Formats;
using ManagedClip.Model;

namespace ManagedClip.Tests.IO;

/// <summary>Reading model folders: configs in both key spellings, unsupported architectures, weights checked against the config.</summary>
public sealed class ModelDirectoryTests : IDisposable
{
    private readonly TempFolder folder = new();
    private static string TinyBin => Path.Combine(TestData.Tiny, "open_clip_pytorch_model.bin");

    public void Dispose() => folder.Dispose();

    [Fact]
    public void ReadsTheTinyFolder()
    {
        var model = ModelDirectory.Open(TestData.Tiny);
        var config = model.Config;
        Assert.Equal(32, config.EmbedDim);
        Assert.Equal(new VisionConfig(224, 16, 64, 2, 2, 256), config.Vision);
        Assert.Equal(new TextConfig(30522, 64, 2, 2, 256, 512, 2, 1e-12f, 256), config.Text);
        Assert.Equal(48, config.TextProjectionHidden); // tiny text.proj.0.weight is [48, 64]
        Assert.Equal(ClipConfig.OpenAiMean, config.Mean);
        Assert.Equal(ClipConfig.OpenAiStd, config.Std);
        // model.safetensors is preferred over the .bin and is chosen over outputs.safetensors by name.
        Assert.Equal(Path.Combine(TestData.Tiny, "model.safetensors"), model.WeightsPath);
        Assert.Equal(Path.Combine(TestData.Tiny, "text_config", "config.json"), model.TextConfigPath);
        Assert.Equal(Path.Combine(TestData.Tiny, "vocab.txt"), model.VocabularyPath);
        using var store = model.OpenWeights();
        Assert.IsType<SafeTensorsFile>(store);
    }

    [Fact]
    public void WeightsOverrideKeepsTheFolderConfigs()
    {
        var model = ModelDirectory.Open(TestData.Tiny, weightsOverride: TinyBin);
        Assert.Equal(TinyBin, model.WeightsPath);
        Assert.Equal(32, model.Config.EmbedDim);
        using var store = model.OpenWeights();
        Assert.IsType<TorchCheckpoint>(store);
        Assert.Throws<FileNotFoundException>(() => ModelDirectory.Open(TestData.Tiny, folder.File("missing.bin")));
    }

    [Fact]
    public void ExpectedTensorsForTheTinyConfigAreExactlyItsStateDict()
    {
        var expected = TinyCheckpointTests.ExpectedKeys();
        var actual = ClipStateDict.Expected(ModelDirectory.Open(TestData.Tiny).Config);
        Assert.Equal(expected.Select(e => $"{e.Name} {e.DType} [{string.Join(",", e.Shape)}]"),
            actual.Select(e => $"{e.Name} {e.DType} [{string.Join(",", e.Shape)}]"));
        Assert.Equal([ClipStateDict.PositionIdsName], actual.Where(e => !e.UsedInForward).Select(e => e.Name));
    }

    [Theory]
    [InlineData("open_clip_config.2023.json")]    // "proj" / "pooler_type", PubMedBERT name
    [InlineData("open_clip_config.current.json")] // "hf_proj_type" / "hf_pooler_type", BiomedBERT name
    public void BothConfigSpellingsGiveTheBiomedClipArchitecture(string file)
    {
        var model = OpenWithConfig(File.ReadAllText(Path.Combine(TestData.ModelCard, file)));
        var config = model.Config;
        Assert.Equal(512, config.EmbedDim);
        Assert.Equal(VisionConfig.VitBasePatch16_224, config.Vision);
        Assert.Equal(TextConfig.BiomedBertBase, config.Text);
        Assert.Equal(640, config.TextProjectionHidden);
        Assert.Equal(ClipConfig.OpenAiMean, config.Mean);
        Assert.Equal(ClipConfig.OpenAiStd, config.Std);
        Assert.Null(model.TextConfigPath); // built-in BiomedBERT sizes
        var missingVocabulary = Assert.Throws<FileNotFoundException>(() => model.VocabularyPath);
        Assert.Contains(Path.Combine(model.Root, "vocab.txt"), missingVocabulary.Message);
    }

    [Fact]
    public void ATextConfigBesideTheConfigWinsOverBuiltInSizes()
    {
        folder.Write("config.json", """{"model_type":"bert","hidden_size":96,"num_hidden_layers":3,"num_attention_heads":4,"intermediate_size":384}"""u8.ToArray());
        var model = OpenWithConfig(File.ReadAllText(Path.Combine(TestData.ModelCard, "open_clip_config.current.json")));
        Assert.Equal(folder.File("config.json"), model.TextConfigPath);
        // Given keys are used; absent ones take BertConfig's defaults.
        Assert.Equal(new TextConfig(30522, 96, 3, 4, 384, 512, 2, 1e-12f, 256), model.Config.Text);
    }

    [Theory]
    [InlineData("model_cfg.text_cfg.hf_proj_type", "\"linear\"", "unsupported model_cfg.text_cfg.hf_proj_type: 'linear'")]
    [InlineData("model_cfg.text_cfg.hf_pooler_type", "\"mean_pooler\"", "unsupported model_cfg.text_cfg.hf_pooler_type: 'mean_pooler'")]
    [InlineData("model_cfg.text_cfg.proj", "\"linear\"", "model_cfg.text_cfg.hf_proj_type 'mlp' contradicts model_cfg.text_cfg.proj 'linear'")]
    [InlineData("model_cfg.vision_cfg.timm_pool", "\"avg\"", "unsupported model_cfg.vision_cfg.timm_pool: 'avg'")]
    [InlineData("model_cfg.vision_cfg.timm_proj", "\"mlp\"", "unsupported model_cfg.vision_cfg.timm_proj: 'mlp'")]
    [InlineData("model_cfg.vision_cfg.timm_model_name", "\"convnext_base\"", "'convnext_base' is not a known timm ViT and no timm_model_args")]
    [InlineData("model_cfg.vision_cfg.image_size", "336", "unsupported model_cfg.vision_cfg.image_size: 336 differs from the 224-pixel input")]
    [InlineData("model_cfg.text_cfg.hf_model_name", "\"bert-base-uncased\"", "text model 'bert-base-uncased' has no BERT config.json")]
    [InlineData("model_cfg.text_cfg.context_length", "1024", "1024 exceeds the text model's 512 positions")]
    [InlineData("model_cfg.embed_dim", "-5", "model_cfg.embed_dim must be a positive integer, not -5")]
    [InlineData("preprocess_cfg.mean", "[0.5, 0.5]", "preprocess_cfg.mean must be three numbers")]
    [InlineData("preprocess_cfg.interpolation", "\"bilinear\"", "unsupported preprocess_cfg.interpolation: 'bilinear'")]
    public void RefusesUnsupportedOrInvalidConfigs(string key, string json, string expected)
    {
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(TestData.ModelCard, "open_clip_config.current.json")))!;
        var path = key.Split('.');
        var parent = path[..^1].Aggregate(config, (node, part) => node[part]!);
        parent[path[^1]] = JsonNode.Parse(json);
        var error = Assert.Throws<InvalidDataException>(() => OpenWithConfig(config.ToJsonString()));
        Assert.Contains(folder.File("open_clip_config.json"), error.Message);
        Assert.Contains(expected, error.Message);
    }

    [Fact]
    public void RefusesMalformedJsonAndMissingFiles()
    {
        Assert.Contains("not valid JSON", Assert.Throws<InvalidDataException>(() => OpenWithConfig("{ nope")).Message);
        Assert.Throws<DirectoryNotFoundException>(() => ModelDirectory.Open(folder.File("absent")));
        var empty = Directory.CreateDirectory(folder.File("empty")).FullName;
        Assert.Contains("has no open_clip_config.json", Assert.Throws<FileNotFoundException>(() => ModelDirectory.Open(empty)).Message);
    }

    [Fact]
    public void ATextModelNameCannotEscapeTheModelFolder()
    {
        // A folder outside the model folder with a BERT config must not be picked up through "../".
        var outside = Directory.CreateDirectory(folder.File("outside")).FullName;
        File.WriteAllText(Path.Combine(outside, "config.json"), """{"hidden_size":96}""");
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(TestData.Tiny, "open_clip_config.json")))!;
        config["model_cfg"]!["text_cfg"]!["hf_model_name"] = "../outside";
        var modelFolder = Directory.CreateDirectory(folder.File("model")).FullName;
        File.WriteAllText(Path.Combine(modelFolder, "open_clip_config.json"), config.ToJsonString());
        File.WriteAllBytes(Path.Combine(modelFolder, "open_clip_pytorch_model.bin"), []);
        Assert.Contains("text model '../outside' has no BERT config.json",
            Assert.Throws<InvalidDataException>(() => ModelDirectory.Open(modelFolder)).Message);
    }

    [Fact]
    public void WeightsThatDoNotFitTheConfigNameTheTensorAndBothShapes()
    {
        // The tiny folder's config with mlp_ratio 2: fc1 would be [128, 64], the checkpoint has [256, 64].
        var model = TinyCopy(config => config["timm_model_args"]!["mlp_ratio"] = 2.0);
        var error = Assert.Throws<InvalidDataException>(() => model.OpenWeights().Dispose());
        Assert.StartsWith($"weights {TinyBin}: ", error.Message);
        Assert.Contains("tensor 'visual.trunk.blocks.0.mlp.fc1.weight' has shape [256, 64], config expects [128, 64]", error.Message);
        Assert.Contains("tensor 'visual.trunk.blocks.1.mlp.fc2.weight' has shape [64, 256], config expects [64, 128]", error.Message);
    }

    [Fact]
    public void WeightsMissingATensorOrWithTheWrongDtypeOrAnExtraTensorAreRefused()
    {
        using var tiny = TorchCheckpoint.Open(TinyBin);
        var raw = (IRawTensorSource)tiny;
        var path = folder.File("edited.safetensors");
        var entries = tiny.Names
            .Where(n => n != "text.proj.2.weight")
            .Select(n => n == "visual.trunk.norm.bias"
                ? SafeTensorsWriter.Int64(n, [64], new long[64])
                : new SafeTensorsWriter.Entry(tiny.Info(n), s => s.Write(raw.RawBytes(n))))
            .Append(SafeTensorsWriter.Float32("text.transformer.pooler.dense.weight", [2], new float[2]));
        SafeTensorsWriter.Write(path, entries);

        var model = ModelDirectory.Open(TestData.Tiny, weightsOverride: path);
        var error = Assert.Throws<InvalidDataException>(() => model.OpenWeights().Dispose());
        Assert.Contains("tensor 'text.proj.2.weight' is missing (config expects [32, 48])", error.Message);
        Assert.Contains("tensor 'visual.trunk.norm.bias' has dtype I64, config expects a floating-point type", error.Message);
        Assert.Contains("unexpected tensor 'text.transformer.pooler.dense.weight' [2]", error.Message);
    }

    /// <summary>A folder holding <paramref name="configJson"/> and a placeholder weights file (not opened by Open).</summary>
    private ModelDirectory OpenWithConfig(string configJson)
    {
        File.WriteAllText(folder.File("open_clip_config.json"), configJson);
        if (!File.Exists(folder.File("open_clip_pytorch_model.bin"))) File.WriteAllBytes(folder.File("open_clip_pytorch_model.bin"), []);
        return ModelDirectory.Open(folder.Path);
    }

    /// <summary>The tiny folder's configs, edited, in a temp folder, with the tiny .bin as weights.</summary>
    private ModelDirectory TinyCopy(Action<JsonNode> edit)
    {
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(TestData.Tiny, "open_clip_config.json")))!;
        edit(config);
        File.WriteAllText(folder.File("open_clip_config.json"), config.ToJsonString());
        Directory.CreateDirectory(folder.File("text_config"));
        File.Copy(Path.Combine(TestData.Tiny, "text_config", "config.json"), folder.File("text_config/config.json"));
        return ModelDirectory.Open(folder.Path, weightsOverride: TinyBin);
    }
}
