using System.Text.Json;
using ManagedClip.Model;

namespace ManagedClip.IO.Formats;

/// <summary>
/// Turns an <c>open_clip_config.json</c> (plus, for the text tower, a Hugging Face BERT <c>config.json</c>) into a
/// <see cref="ClipConfig"/>. Only the architecture ManagedClip implements is accepted: a timm ViT with class-token
/// pooling and a linear head, and a BERT text tower with CLS pooling and open_clip's "mlp" projection. Anything else
/// is refused with the key and value that made it unsupported. Defaults are open_clip 2.23's and transformers' own.
/// </summary>
internal static class OpenClipConfigReader
{
    /// <summary>HF names of BiomedCLIP's text model (renamed in 2023); their BERT sizes are built in.</summary>
    public static readonly string[] KnownBiomedBertNames =
    [
        "microsoft/BiomedNLP-BiomedBERT-base-uncased-abstract",
        "microsoft/BiomedNLP-PubMedBERT-base-uncased-abstract",
    ];

    /// <summary>What the configs say, and which files they came from.</summary>
    /// <param name="Config">The parsed model configuration.</param>
    /// <param name="TextConfigPath">The BERT config.json used, or null when built-in BiomedBERT sizes were used.</param>
    /// <param name="TextFolder">The folder inside the model directory that <c>hf_model_name</c> names, if any.</param>
    public sealed record Result(ClipConfig Config, string? TextConfigPath, string? TextFolder);

    public static Result Read(string configPath, string modelRoot) =>
        JsonErrors.Guard(() => ReadUnguarded(configPath, modelRoot), UserText.Quote(configPath));

    private static Result ReadUnguarded(string configPath, string modelRoot)
    {
        using var document = ParseJson(configPath);
        var root = new Fields(document.RootElement, configPath, "");
        var model = root.Object("model_cfg");
        int embedDim = model.PositiveInt("embed_dim");
        var (mean, std) = Preprocessing(root);
        var vision = Vision(root, model.Object("vision_cfg"));
        var (text, textConfigPath, textFolder) = Text(model.Object("text_cfg"), modelRoot, configPath);
        return new Result(new ClipConfig(embedDim, vision, text, mean, std), textConfigPath, textFolder);
    }

    private static (float[] Mean, float[] Std) Preprocessing(Fields root)
    {
        var preprocess = root.OptionalObject("preprocess_cfg");
        if (preprocess is null) return (ClipConfig.OpenAiMean, ClipConfig.OpenAiStd);
        // Our image pipeline is open_clip's default: bicubic resize of the shortest side, then center crop.
        preprocess.RequireIfPresent("interpolation", "bicubic");
        preprocess.RequireIfPresent("resize_mode", "shortest");
        return (preprocess.ThreeFloats("mean") ?? ClipConfig.OpenAiMean, preprocess.ThreeFloats("std") ?? ClipConfig.OpenAiStd);
    }

    private static VisionConfig Vision(Fields root, Fields vision)
    {
        var name = vision.String("timm_model_name")
            ?? throw vision.Unsupported("timm_model_name", "missing (only timm ViT image towers are supported)");
        // open_clip's defaults: timm_pool "avg", timm_proj "linear", timm_proj_bias false.
        var pool = vision.String("timm_pool") ?? "avg";
        if (pool is not ("" or "token"))
            throw vision.Unsupported("timm_pool", $"'{pool}' (supported: \"\", which keeps timm's class-token pooling)");
        var proj = vision.String("timm_proj") ?? "linear";
        if (proj != "linear") throw vision.Unsupported("timm_proj", $"'{proj}' (supported: \"linear\")");
        if (vision.Bool("timm_proj_bias") == true) throw vision.Unsupported("timm_proj_bias", "true (the linear head has no bias)");
        int imageSize = vision.PositiveInt("image_size", 224);

        var arguments = root.OptionalObject("timm_model_args");
        VisionConfig config;
        if (arguments is not null)
        {
            if (arguments.Bool("qkv_bias") == false) throw arguments.Unsupported("qkv_bias", "false");
            if (arguments.Bool("class_token") == false) throw arguments.Unsupported("class_token", "false");
            arguments.RequireIfPresent("global_pool", "token");
            int width = arguments.PositiveInt("embed_dim");
            double mlpRatio = arguments.PositiveDouble("mlp_ratio", 4.0);
            config = new VisionConfig(arguments.PositiveInt("img_size", 224), arguments.PositiveInt("patch_size"), width,
                arguments.PositiveInt("depth"), arguments.PositiveInt("num_heads"), (int)(width * mlpRatio)); // timm: int(dim * mlp_ratio)
        }
        else if (!TimmVisionModels.TryGet(name.Split('.')[0], out config))
            throw vision.Unsupported("timm_model_name",
                $"'{name}' is not a known timm ViT and no timm_model_args block gives its sizes (known: {string.Join(", ", TimmVisionModels.Names)})");

        if (config.ImageSize % config.PatchSize != 0 || config.Width % config.HeadCount != 0)
            throw vision.Unsupported("timm_model_name", $"'{name}': image {config.ImageSize} / patch {config.PatchSize} / width {config.Width} / heads {config.HeadCount} do not divide");
        // open_clip does not pass image_size to timm: the ViT's own input size must match the preprocessing size.
        if (config.ImageSize != imageSize)
            throw vision.Unsupported("image_size", $"{imageSize} differs from the {config.ImageSize}-pixel input of '{name}'");
        return config;
    }

    private static (TextConfig Text, string? ConfigPath, string? Folder) Text(Fields text, string modelRoot, string configPath)
    {
        var modelName = text.String("hf_model_name")
            ?? throw text.Unsupported("hf_model_name", "missing (only Hugging Face BERT text towers are supported)");
        // 2023 configs spell the keys "proj"/"pooler_type", open_clip ≥ 2.21 "hf_proj_type"/"hf_pooler_type".
        var projection = text.EitherString("hf_proj_type", "proj") ?? "mlp";
        if (projection != "mlp") throw text.Unsupported("hf_proj_type", $"'{projection}' (supported: \"mlp\")");
        var pooler = text.EitherString("hf_pooler_type", "pooler_type") ?? "mean_pooler";
        if (pooler != "cls_last_hidden_state_pooler")
            throw text.Unsupported("hf_pooler_type", $"'{pooler}' (supported: \"cls_last_hidden_state_pooler\")");
        int contextLength = text.PositiveInt("context_length", 77);

        var folder = FolderInside(modelRoot, modelName);
        var candidates = new List<string>();
        if (folder is not null) candidates.Add(Path.Combine(folder, "config.json"));
        candidates.Add(Path.Combine(modelRoot, "config.json"));
        var bertConfigPath = candidates.FirstOrDefault(File.Exists);

        TextConfig bert;
        if (bertConfigPath is not null) bert = Bert(bertConfigPath);
        else if (KnownBiomedBertNames.Contains(modelName)) bert = TextConfig.BiomedBertBase;
        else
            throw new InvalidDataException(
                $"{configPath}: text model '{modelName}' has no BERT config.json (looked for {string.Join(" and ", candidates)}) " +
                "and is not one of the BiomedBERT models whose sizes are built in.");
        if (contextLength > bert.MaxPositions)
            throw text.Unsupported("context_length", $"{contextLength} exceeds the text model's {bert.MaxPositions} positions");
        return (bert with { ContextLength = contextLength }, bertConfigPath, folder);
    }

    /// <summary>A Hugging Face BertConfig; absent keys take transformers' BertConfig defaults.</summary>
    private static TextConfig Bert(string path) => JsonErrors.Guard(() => BertUnguarded(path), UserText.Quote(path));

    private static TextConfig BertUnguarded(string path)
    {
        using var document = ParseJson(path);
        var bert = new Fields(document.RootElement, path, "");
        bert.RequireIfPresent("model_type", "bert");
        bert.RequireIfPresent("hidden_act", "gelu");
        bert.RequireIfPresent("position_embedding_type", "absolute");
        // The tokenizer pads with id 0 and the attention mask is (id != pad_token_id).
        if (bert.PositiveInt("pad_token_id", 0, allowZero: true) != 0) throw bert.Unsupported("pad_token_id", "not 0");
        var config = new TextConfig(
            VocabSize: bert.PositiveInt("vocab_size", 30522),
            Hidden: bert.PositiveInt("hidden_size", 768),
            LayerCount: bert.PositiveInt("num_hidden_layers", 12),
            HeadCount: bert.PositiveInt("num_attention_heads", 12),
            Intermediate: bert.PositiveInt("intermediate_size", 3072),
            MaxPositions: bert.PositiveInt("max_position_embeddings", 512),
            TypeVocabSize: bert.PositiveInt("type_vocab_size", 2),
            LayerNormEps: (float)bert.PositiveDouble("layer_norm_eps", 1e-12),
            ContextLength: 0);
        if (config.Hidden % config.HeadCount != 0)
            throw bert.Unsupported("num_attention_heads", $"{config.HeadCount} does not divide hidden_size {config.Hidden}");
        return config;
    }

    /// <summary>The folder <paramref name="relative"/> names inside <paramref name="root"/>, or null (also for names that would escape it).</summary>
    public static string? FolderInside(string root, string relative)
    {
        if (Path.IsPathRooted(relative)) return null;
        var fullRoot = Path.GetFullPath(root);
        var folder = Path.GetFullPath(Path.Combine(fullRoot, relative));
        bool inside = folder.StartsWith(fullRoot.TrimEnd(Path.DirectorySeparatorChar) + Path.DirectorySeparatorChar, StringComparison.Ordinal);
        return inside && Directory.Exists(folder) ? folder : null;
    }

    private static JsonDocument ParseJson(string path)
    {
        // Python's json.load decodes the whole file as UTF-8 first; so do we, so no string can fail to decode later.
        var bytes = GuardedFile.ReadAllBytes(path, 1 << 20, "config file");
        GuardedFile.DecodeUtf8(bytes, path, "config file");
        try
        {
            return JsonDocument.Parse(bytes, new JsonDocumentOptions { MaxDepth = 16 });
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{UserText.Quote(path)}: not valid JSON ({JsonErrors.Describe(e)}).", e);
        }
    }

    /// <summary>Typed access to one JSON object whose errors name the file and the key path.</summary>
    private sealed class Fields
    {
        private readonly JsonElement element;
        private readonly string file, prefix;

        public Fields(JsonElement element, string file, string prefix)
        {
            if (element.ValueKind != JsonValueKind.Object)
                throw new InvalidDataException($"{file}: {(prefix == "" ? "the document" : prefix.TrimEnd('.'))} must be a JSON object.");
            (this.element, this.file, this.prefix) = (element, file, prefix);
        }

        private JsonElement? Get(string key) => element.TryGetProperty(key, out var value) && value.ValueKind != JsonValueKind.Null ? value : null;

        private InvalidDataException Invalid(string key, string what) => new($"{file}: {prefix}{key} {what}.");

        public InvalidDataException Unsupported(string key, string what) => new($"{file}: unsupported {prefix}{key}: {what}.");

        public Fields Object(string key) =>
            OptionalObject(key) ?? throw Invalid(key, "is missing");

        public Fields? OptionalObject(string key) =>
            Get(key) is { } value ? new Fields(value, file, prefix + key + ".") : null;

        public string? String(string key) => Get(key) switch
        {
            null => null,
            { ValueKind: JsonValueKind.String } value => JsonErrors.Text(value, $"{UserText.Quote(file)}: {prefix}{key}"),
            _ => throw Invalid(key, "must be a string"),
        };

        /// <summary>The value under either spelling of a key; both present must agree.</summary>
        public string? EitherString(string key, string legacyKey)
        {
            string? current = String(key), legacy = String(legacyKey);
            if (current is not null && legacy is not null && current != legacy)
                throw Invalid(key, $"'{current}' contradicts {prefix}{legacyKey} '{legacy}'");
            return current ?? legacy;
        }

        public bool? Bool(string key) => Get(key) switch
        {
            null => null,
            { ValueKind: JsonValueKind.True } => true,
            { ValueKind: JsonValueKind.False } => false,
            _ => throw Invalid(key, "must be true or false"),
        };

        public void RequireIfPresent(string key, string supported)
        {
            var value = String(key);
            if (value is not null && value != supported) throw Unsupported(key, $"'{value}' (supported: \"{supported}\")");
        }

        public int PositiveInt(string key, int? fallback = null, bool allowZero = false)
        {
            var value = Get(key);
            if (value is null) return fallback ?? throw Invalid(key, "is missing");
            if (value.Value.ValueKind != JsonValueKind.Number || !value.Value.TryGetInt32(out var number) || number < (allowZero ? 0 : 1))
                throw Invalid(key, $"must be a {(allowZero ? "non-negative" : "positive")} integer, not {value.Value.GetRawText()}");
            return number;
        }

        public double PositiveDouble(string key, double fallback)
        {
            var value = Get(key);
            if (value is null) return fallback;
            if (value.Value.ValueKind != JsonValueKind.Number || !value.Value.TryGetDouble(out var number) || !(number > 0) || double.IsInfinity(number))
                throw Invalid(key, $"must be a positive number, not {value.Value.GetRawText()}");
            return number;
        }

        public float[]? ThreeFloats(string key)
        {
            var value = Get(key);
            if (value is null) return null;
            if (value.Value.ValueKind != JsonValueKind.Array || value.Value.GetArrayLength() != 3
                || value.Value.EnumerateArray().Any(v => v.ValueKind != JsonValueKind.Number))
                throw Invalid(key, "must be three numbers (one per RGB channel)");
            var result = value.Value.EnumerateArray().Select(v => (float)v.GetDouble()).ToArray();
            if (key == "std" && result.Any(s => !(s > 0))) throw Invalid(key, "must be positive");
            return result;
        }
    }
}
