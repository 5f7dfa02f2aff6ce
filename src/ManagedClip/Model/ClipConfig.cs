namespace ManagedClip.Model;

/// <summary>Dimensions of the timm ViT image tower (open_clip <c>TimmModel</c>).</summary>
/// <param name="ImageSize">Input side in pixels (224).</param>
/// <param name="PatchSize">Patch side in pixels (16).</param>
/// <param name="Width">Token width D (768).</param>
/// <param name="Depth">Number of transformer blocks (12).</param>
/// <param name="HeadCount">Attention heads (12).</param>
/// <param name="MlpHidden">MLP hidden width (3072 = 4·D).</param>
/// <param name="LayerNormEps">timm's LayerNorm eps (1e-6).</param>
public sealed record VisionConfig(int ImageSize, int PatchSize, int Width, int Depth, int HeadCount, int MlpHidden,
    float LayerNormEps = 1e-6f)
{
    /// <summary>Patches per side (14).</summary>
    public int GridSize => ImageSize / PatchSize;

    /// <summary>Tokens per image: patches plus the class token (197).</summary>
    public int TokenCount => GridSize * GridSize + 1;

    /// <summary>Width of one head (64).</summary>
    public int HeadSize => Width / HeadCount;

    /// <summary>timm <c>vit_base_patch16_224</c>.</summary>
    public static VisionConfig VitBasePatch16_224 { get; } = new(224, 16, 768, 12, 12, 3072);

    /// <summary>Throws unless these sizes, with an embedding width E, describe a tower that can be built.</summary>
    internal void Check(int embedDim)
    {
        if (ImageSize <= 0 || PatchSize <= 0 || ImageSize % PatchSize != 0)
            throw new ArgumentException($"image size {ImageSize} must be a positive multiple of patch size {PatchSize}", "config");
        if (Width <= 0 || HeadCount <= 0 || Width % HeadCount != 0)
            throw new ArgumentException($"width {Width} must be a positive multiple of the head count {HeadCount}", "config");
        if (Depth < 1 || MlpHidden < 1 || embedDim < 1)
            throw new ArgumentException($"depth {Depth}, MLP width {MlpHidden} and embed dim {embedDim} must be positive", "config");
    }
}

/// <summary>Dimensions of the Hugging Face BERT text tower.</summary>
/// <param name="VocabSize">Rows of the word-embedding table (30522).</param>
/// <param name="Hidden">Hidden width H (768).</param>
/// <param name="LayerCount">Encoder layers (12).</param>
/// <param name="HeadCount">Attention heads (12).</param>
/// <param name="Intermediate">Feed-forward width (3072).</param>
/// <param name="MaxPositions">Rows of the position-embedding table (512).</param>
/// <param name="TypeVocabSize">Rows of the token-type table (2).</param>
/// <param name="LayerNormEps">BERT's LayerNorm eps (1e-12).</param>
/// <param name="ContextLength">open_clip's context length: tokens kept including [CLS]/[SEP] (256).</param>
public sealed record TextConfig(int VocabSize, int Hidden, int LayerCount, int HeadCount, int Intermediate,
    int MaxPositions, int TypeVocabSize, float LayerNormEps, int ContextLength)
{
    /// <summary>Width of one head (64).</summary>
    public int HeadSize => Hidden / HeadCount;

    /// <summary>BiomedBERT-base (uncased, abstract) with BiomedCLIP's context length.</summary>
    public static TextConfig BiomedBertBase { get; } = new(30522, 768, 12, 12, 3072, 512, 2, 1e-12f, 256);

    /// <summary>Throws unless these sizes, with an embedding width E, describe a tower that can be built.</summary>
    internal void Check(int embedDim)
    {
        if (Hidden <= 0 || HeadCount <= 0 || Hidden % HeadCount != 0)
            throw new ArgumentException($"hidden size {Hidden} must be a positive multiple of the head count {HeadCount}", "config");
        if (LayerCount < 1 || Intermediate < 1 || VocabSize < 1 || MaxPositions < 1 || TypeVocabSize < 1 || embedDim < 1)
            throw new ArgumentException("layer count, intermediate size, vocabulary, positions, token types and embed dim must all be positive", "config");
    }
}

/// <summary>The whole BiomedCLIP configuration: both towers, the shared embedding width and preprocessing.</summary>
/// <param name="EmbedDim">Shared image–text space width E (512).</param>
/// <param name="Vision">Image tower.</param>
/// <param name="Text">Text tower.</param>
/// <param name="Mean">Per-channel normalisation mean (OpenAI CLIP's).</param>
/// <param name="Std">Per-channel normalisation standard deviation.</param>
public sealed record ClipConfig(int EmbedDim, VisionConfig Vision, TextConfig Text, float[] Mean, float[] Std)
{
    /// <summary>
    /// Hidden width of open_clip's "mlp" text projection (Linear H→this, GELU, Linear this→E):
    /// <c>(H + E) / 2</c> rounded down, as <c>hf_model.py</c> computes it (640 for BiomedCLIP).
    /// </summary>
    public int TextProjectionHidden => (Text.Hidden + EmbedDim) / 2;

    /// <summary>OpenAI CLIP mean, as open_clip_config.json gives it.</summary>
    public static float[] OpenAiMean => [0.48145466f, 0.4578275f, 0.40821073f];

    /// <summary>OpenAI CLIP standard deviation.</summary>
    public static float[] OpenAiStd => [0.26862954f, 0.26130258f, 0.27577711f];

    /// <summary>The real BiomedCLIP-PubMedBERT_256-vit_base_patch16_224.</summary>
    public static ClipConfig BiomedClip { get; } =
        new(512, VisionConfig.VitBasePatch16_224, TextConfig.BiomedBertBase, OpenAiMean, OpenAiStd);
}
