using System.Numerics.Tensors;
using ManagedClip.IO.Formats;
using ManagedClip.Kernels;

namespace ManagedClip.Model;

// Naming key: B images in the batch, S image side (224), P patch side (16), G = S/P patches per side (14),
// N = G·G patches (196), T = N + 1 tokens per image (197, class token first), D token width (768),
// H attention heads (12), M MLP hidden width (3072), E shared embedding width (512).

/// <summary>
/// BiomedCLIP's image tower: timm <c>VisionTransformer</c> (<c>vit_base_patch16_224</c>) as open_clip's
/// <c>TimmModel</c> wraps it — class-token pooling after the final LayerNorm, then the bias-free linear head
/// <c>visual.head.proj</c> into the shared embedding space. Mirrors timm 0.9.12 <c>vision_transformer.py</c>
/// and open_clip 2.23 <c>timm_model.py</c>. Immutable after loading; <c>Forward</c> may run on several
/// threads at once.
/// </summary>
public sealed class VisionTransformer
{
    private readonly VisionConfig config;
    private readonly TensorStore weights; // where the GEMM weights are read in place; must stay open
    private readonly int embedDim;

    private readonly Linear patchEmbedding;      // conv weight [D, 3, P, P] read as [D, 3·P·P] (+ bias [D])
    private readonly float[] classToken;         // [D]
    private readonly float[] positionEmbedding;  // [T, D], the class token's position first
    private readonly Block[] blocks;             // [depth]
    private readonly LayerNormWeights finalNorm; // trunk.norm, over D
    private readonly Linear head;                // head.proj [E, D], no bias

    private VisionTransformer(VisionConfig config, TensorStore weights, int embedDim, Linear patchEmbedding, float[] classToken,
        float[] positionEmbedding, Block[] blocks, LayerNormWeights finalNorm, Linear head)
    {
        this.config = config;
        this.weights = weights;
        this.embedDim = embedDim;
        this.patchEmbedding = patchEmbedding;
        this.classToken = classToken;
        this.positionEmbedding = positionEmbedding;
        this.blocks = blocks;
        this.finalNorm = finalNorm;
        this.head = head;
    }

    /// <summary>The tower's dimensions.</summary>
    public VisionConfig Config => config;

    /// <summary>Width E of the image features.</summary>
    public int EmbedDim => embedDim;

    /// <summary>
    /// Loads the <c>visual.*</c> tensors of an open_clip checkpoint, checking every shape against the config.
    /// The patch embedding and every block weight are read from <paramref name="store"/> and rearranged once, here,
    /// into the GEMM's panel layout (≈ 0.25 s for the whole tower, repaid by ~8% faster image passes: every product
    /// has 197 rows per image, so packing on every pass would be wasted work); the small head is read in place.
    /// The store must stay open (undisposed) for as long as the tower is used; disposing it while a forward pass
    /// runs is not allowed.
    /// </summary>
    public static VisionTransformer Load(TensorStore store, VisionConfig config, int embedDim)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(config);
        if (config.ImageSize <= 0 || config.PatchSize <= 0 || config.ImageSize % config.PatchSize != 0)
            throw new ArgumentException($"image size {config.ImageSize} must be a positive multiple of patch size {config.PatchSize}", nameof(config));
        if (config.Width <= 0 || config.HeadCount <= 0 || config.Width % config.HeadCount != 0)
            throw new ArgumentException($"width {config.Width} must be a positive multiple of the head count {config.HeadCount}", nameof(config));
        if (config.Depth < 1 || config.MlpHidden < 1 || embedDim < 1)
            throw new ArgumentException($"depth {config.Depth}, MLP width {config.MlpHidden} and embed dim {embedDim} must be positive", nameof(config));

        int d = config.Width, p = config.PatchSize, t = config.TokenCount;
        const string trunk = "visual.trunk.";
        // The conv weight [D, 3, P, P] is, row-major, already the Linear weight [D, 3·P·P].
        var patchEmbedding = Linear.Load(store, trunk + "patch_embed.proj", d, 3 * p * p, hasBias: true, storedShape: [d, 3, p, p],
            packed: true);
        var classToken = store.GetFloat32(trunk + "cls_token", 1, 1, d).ToArray();
        var positionEmbedding = store.GetFloat32(trunk + "pos_embed", 1, t, d).ToArray();
        var blocks = Enumerable.Range(0, config.Depth).Select(i => Block.Load(store, $"{trunk}blocks.{i}.", config)).ToArray();
        var finalNorm = LayerNormWeights.Load(store, trunk + "norm", d, config.LayerNormEps);
        var head = Linear.Load(store, "visual.head.proj", embedDim, d, hasBias: false);
        return new(config, store, embedDim, patchEmbedding, classToken, positionEmbedding, blocks, finalNorm, head);
    }

    /// <summary>Image features (before normalisation), as open_clip's <c>encode_image</c> returns them.</summary>
    /// <param name="pixels">[B, 3, S, S] normalised pixel values, images one after another.</param>
    /// <param name="batchSize">B: images in <paramref name="pixels"/>. All are computed together in every GEMM.</param>
    /// <param name="features">[B, E] receives one feature row per image.</param>
    public void Forward(ReadOnlySpan<float> pixels, int batchSize, Span<float> features) =>
        Forward(pixels, batchSize, features, trace: null);

    internal void Forward(ReadOnlySpan<float> pixels, int batchSize, Span<float> features, VisionTrace? trace)
    {
        // The GEMM weights are views into the store's mapping: running after it was closed would read unmapped memory.
        ObjectDisposedException.ThrowIf(weights.IsDisposed, weights);
        int side = config.ImageSize, imageFloats = 3 * side * side;
        if (batchSize < 1) throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "must be at least 1");
        if (pixels.Length != (long)batchSize * imageFloats)
            throw new ArgumentException($"pixels has {pixels.Length} values; {batchSize} image(s) of [3, {side}, {side}] need {(long)batchSize * imageFloats}", nameof(pixels));
        if (features.Length != (long)batchSize * embedDim)
            throw new ArgumentException($"features has {features.Length} values; {batchSize} row(s) of {embedDim} need {(long)batchSize * embedDim}", nameof(features));

        int t = config.TokenCount, d = config.Width, n = t - 1, patchLength = 3 * config.PatchSize * config.PatchSize;
        int rows = batchSize * t;
        long floatCount = (long)rows * (d + d + 3 * d + d + config.MlpHidden) + (long)n * patchLength + 2L * batchSize * d;
        using var arena = new ActivationArena(floatCount, "VisionTransformer.Forward");
        var x = arena.Take(rows * d);                  // [B·T, D] residual stream
        var normed = arena.Take(rows * d);             // [B·T, D] LayerNorm output feeding qkv and fc1
        var qkv = arena.Take(rows * 3 * d);            // [B·T, 3D] q | k | v, each laid out (heads, head size)
        var attended = arena.Take(rows * d);           // [B·T, D] attention output, before proj
        var hidden = arena.Take(rows * config.MlpHidden); // [B·T, M] MLP hidden, after GELU
        var patches = arena.Take(n * patchLength);     // [N, 3·P·P] one image unfolded into patch rows
        var classTokens = arena.Take(batchSize * d);   // [B, D] the class tokens through the last block's tail
        var classAttended = arena.Take(batchSize * d); // [B, D] their attention outputs

        for (int b = 0; b < batchSize; b++)
            Embed(pixels.Slice(b * imageFloats, imageFloats), patches, x.Slice(b * t * d, t * d));
        trace?.Record(VisionStage.Embed, x);

        for (int i = 0; i < blocks.Length; i++)
        {
            var block = blocks[i];
            block.Attend(x, batchSize, normed, qkv, attended);
            if (i < blocks.Length - 1)
            {
                block.AddProjection(attended, rows, x);
                block.AddMlp(x, rows, normed, hidden);
                if (i == 0) trace?.Record(VisionStage.Block0, x);
            }
            else
            {
                // Only the class tokens reach the head, and attention has already mixed every token into them,
                // so the last block finishes (proj, MLP) on those B rows alone.
                CopyClassRows(x, batchSize, classTokens);
                CopyClassRows(attended, batchSize, classAttended);
                block.AddProjection(classAttended, batchSize, classTokens);
                block.AddMlp(classTokens, batchSize, normed, hidden);
            }
        }

        finalNorm.Apply(classTokens, batchSize, classTokens); // pooled: the class token after trunk.norm
        trace?.Record(VisionStage.Pooled, classTokens);
        head.Apply(classTokens, batchSize, features);
    }

    /// <summary>
    /// One image's tokens: [class token; patch embeddings] + position embedding. The patch embedding is the
    /// 16×16 stride-16 convolution written as a GEMM over unfolded patches; it is added on top of the position
    /// embedding already in place (pos + (conv + bias), the same sum timm forms).
    /// </summary>
    /// <param name="image">[3, S, S]</param>
    /// <param name="patches">[N, 3·P·P] scratch</param>
    /// <param name="tokens">[T, D] receives the embedded tokens</param>
    private void Embed(ReadOnlySpan<float> image, Span<float> patches, Span<float> tokens)
    {
        int d = config.Width;
        TensorPrimitives.Add(classToken, positionEmbedding.AsSpan(0, d), tokens.Slice(0, d));
        positionEmbedding.AsSpan(d).CopyTo(tokens.Slice(d));
        Unfold(image, patches);
        patchEmbedding.Apply(patches, config.GridSize * config.GridSize, tokens.Slice(d), GemmEpilogue.AddToOutput);
    }

    /// <summary>
    /// im2col for a stride-P convolution: patches[gy·G + gx, (c, ky, kx)] = image[c, gy·P + ky, gx·P + kx],
    /// the same (c, ky, kx) order as the flattened conv weight [D, 3, P, P].
    /// </summary>
    private void Unfold(ReadOnlySpan<float> image, Span<float> patches)
    {
        int s = config.ImageSize, p = config.PatchSize, g = config.GridSize, patchLength = 3 * p * p;
        for (int gy = 0; gy < g; gy++)
        for (int gx = 0; gx < g; gx++)
        {
            var patch = patches.Slice((gy * g + gx) * patchLength, patchLength);
            for (int c = 0; c < 3; c++)
            for (int ky = 0; ky < p; ky++)
                image.Slice(c * s * s + (gy * p + ky) * s + gx * p, p).CopyTo(patch.Slice((c * p + ky) * p, p));
        }
    }

    /// <summary>Row 0 (the class token) of every image: [B·T, D] → [B, D].</summary>
    private void CopyClassRows(ReadOnlySpan<float> tokens, int batchSize, Span<float> classRows)
    {
        int t = config.TokenCount, d = config.Width;
        for (int b = 0; b < batchSize; b++) tokens.Slice(b * t * d, d).CopyTo(classRows.Slice(b * d, d));
    }

    /// <summary>
    /// timm <c>Block</c> (pre-norm): x += proj(attn(norm1(x))); x += fc2(gelu(fc1(norm2(x)))).
    /// No layer scale, no drop path at inference.
    /// </summary>
    private sealed class Block(VisionConfig config, LayerNormWeights norm1, Linear qkv, Linear proj,
        LayerNormWeights norm2, Linear fc1, Linear fc2)
    {
        // norm1, norm2 over D; qkv [3D, D] + bias; proj [D, D] + bias; fc1 [M, D] + bias; fc2 [D, M] + bias.

        public static Block Load(TensorStore store, string prefix, VisionConfig config)
        {
            int d = config.Width, m = config.MlpHidden;
            float eps = config.LayerNormEps;
            return new(config,
                LayerNormWeights.Load(store, prefix + "norm1", d, eps),
                Linear.Load(store, prefix + "attn.qkv", 3 * d, d, hasBias: true, packed: true),
                Linear.Load(store, prefix + "attn.proj", d, d, hasBias: true, packed: true),
                LayerNormWeights.Load(store, prefix + "norm2", d, eps),
                Linear.Load(store, prefix + "mlp.fc1", m, d, hasBias: true, packed: true),
                Linear.Load(store, prefix + "mlp.fc2", d, m, hasBias: true, packed: true));
        }

        /// <summary>attended = attn(norm1(x)) before the output projection; attention runs image by image.</summary>
        public void Attend(ReadOnlySpan<float> x, int batchSize, Span<float> normed, Span<float> qkvRows, Span<float> attended)
        {
            int t = config.TokenCount, d = config.Width, rows = batchSize * t;
            norm1.Apply(x, rows, normed);
            qkv.Apply(normed, rows, qkvRows);
            for (int b = 0; b < batchSize; b++)
                Attention.SelfAttention(qkvRows.Slice(b * t * 3 * d, t * 3 * d), t, config.HeadCount, config.HeadSize,
                    attended.Slice(b * t * d, t * d));
        }

        /// <summary>x += proj(attended), the residual add fused into the GEMM.</summary>
        public void AddProjection(ReadOnlySpan<float> attended, int rowCount, Span<float> x) =>
            proj.Apply(attended, rowCount, x, GemmEpilogue.AddToOutput);

        /// <summary>x += fc2(gelu(fc1(norm2(x)))), GELU fused into fc1 and the residual add into fc2.</summary>
        public void AddMlp(Span<float> x, int rowCount, Span<float> normed, Span<float> hidden)
        {
            norm2.Apply(x, rowCount, normed);
            fc1.Apply(normed, rowCount, hidden, GemmEpilogue.StoreGelu);
            fc2.Apply(hidden, rowCount, x, GemmEpilogue.AddToOutput);
        }
    }
}

/// <summary>Intermediate results of the image tower that the tests compare stage by stage.</summary>
internal enum VisionStage
{
    /// <summary>[B·T, D] patch embedding + class token + position embedding (<c>vision_embed</c>).</summary>
    Embed,
    /// <summary>[B·T, D] output of block 0 (<c>vision_block0</c>); not recorded when block 0 is the last block.</summary>
    Block0,
    /// <summary>[B, D] the class token after the final LayerNorm (<c>vision_pooled</c>, row 0 of <c>vision_trunk_norm</c>).</summary>
    Pooled,
}

/// <summary>Copies of intermediate activations, taken when a trace is passed to the forward pass (tests only).</summary>
internal sealed class VisionTrace
{
    private readonly Dictionary<VisionStage, float[]> stages = new();

    public void Record(VisionStage stage, ReadOnlySpan<float> values) => stages[stage] = values.ToArray();

    public float[] this[VisionStage stage] => stages[stage];
}
