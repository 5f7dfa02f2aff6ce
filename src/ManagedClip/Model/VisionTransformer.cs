using System.Numerics.Tensors;
using ManagedClip.IO.Formats;
using ManagedClip.Kernels;

namespace ManagedClip.Model;

// Naming key (the model's, docs/ARCHITECTURE.md): B images, C = 3 colour channels, S image side (224), P patch side (16),
// G = S/P patches per side (14), T = G² + 1 tokens per image (197, the class token first), D width (768), nh heads (12),
// hs = D/nh head size (64), F MLP width (3072), E shared embedding width (512).

/// <summary>
/// BiomedCLIP's image tower: timm <c>VisionTransformer</c> (<c>vit_base_patch16_224</c>) as open_clip's
/// <c>TimmModel</c> wraps it — class-token pooling after the final LayerNorm, then the bias-free linear head
/// <c>visual.head.proj</c> into the shared embedding space. Mirrors timm 0.9.12 <c>vision_transformer.py</c>
/// and open_clip 2.23 <c>timm_model.py</c>. Immutable after loading; <c>Forward</c> may run on several
/// threads at once.
/// </summary>
internal sealed class VisionTransformer
{
    /// <summary>The forward step after patch embedding, class token and position embedding (timm's <c>_pos_embed</c>).</summary>
    internal const string EmbeddingsStep = "visual.trunk._pos_embed";

    private readonly VisionConfig config;
    private readonly TensorStore? store;        // the checkpoint, open: the head is read in place from it

    internal readonly ViTEmbeddings Embeddings; // cls_token, pos_embed, patch_embed.proj: pixels → tokens
    internal readonly Block[] Blocks;           // blocks.0 … blocks.11
    internal readonly LayerNormWeights Norm;    // trunk.norm, over D
    internal readonly Linear Head;              // head.proj [E, D], no bias

    private VisionTransformer(VisionConfig config, TensorStore? store, ViTEmbeddings embeddings, Block[] blocks,
        LayerNormWeights norm, Linear head) =>
        (this.config, this.store, Embeddings, Blocks, Norm, Head) = (config, store, embeddings, blocks, norm, head);

    /// <summary>The tower's dimensions.</summary>
    public VisionConfig Config => config;

    /// <summary>Width E of the image features.</summary>
    public int EmbedDim => Head.OutputCount;

    /// <summary>
    /// Loads the <c>visual.*</c> tensors of an open_clip checkpoint, checking every shape against the config. The patch
    /// embedding and the block weights are read and packed here into private copies in the GEMM's panel layout (every
    /// pass multiplies them by 197 rows per image, so no pass should repack them); the small head is read in place, so
    /// <paramref name="store"/> must stay open (undisposed) for as long as the tower is used, and may not be disposed
    /// while a forward pass runs.
    /// </summary>
    public static VisionTransformer Load(TensorStore store, VisionConfig config, int embedDim) =>
        Load(new StoreWeights(store ?? throw new ArgumentNullException(nameof(store))), config, embedDim, store);

    /// <summary>
    /// The tower as open_clip names and shapes its tensors: the one statement of the <c>visual.*</c> checkpoint layout
    /// (from a <see cref="CheckpointLayout"/>, a tower of names and shapes without weights).
    /// </summary>
    internal static VisionTransformer Load(WeightSource root, VisionConfig config, int embedDim, TensorStore? store = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Check(embedDim);
        var trunk = root.At("visual").At("trunk");
        var embeddings = ViTEmbeddings.Load(trunk, config);
        var blocks = new Block[config.Depth];
        for (int i = 0; i < blocks.Length; i++) blocks[i] = Block.Load(trunk.At("blocks").At($"{i}"), config);
        var norm = LayerNormWeights.Load(trunk.At("norm"), config.Width, config.LayerNormEps);
        var head = Linear.Load(root.At("visual").At("head").At("proj"), embedDim, config.Width, hasBias: false, packed: false);
        return new(config, store, embeddings, blocks, norm, head);
    }

    /// <summary>Image features (before normalisation), as open_clip's <c>encode_image</c> returns them.</summary>
    /// <param name="pixels">[B, C, S, S] normalised pixel values, images one after another.</param>
    /// <param name="batchSize">B: images in <paramref name="pixels"/>. All are computed together in every GEMM.</param>
    /// <param name="features">[B, E] receives one feature row per image.</param>
    public void Forward(ReadOnlySpan<float> pixels, int batchSize, Span<float> features) =>
        Forward(pixels, batchSize, features, ForwardHook.Installed);

    /// <summary>As the public overload, with <paramref name="hook"/> watching every step (tests, profiling).</summary>
    internal void Forward(ReadOnlySpan<float> pixels, int batchSize, Span<float> features, ForwardHook? hook)
    {
        // The head is read in place from the checkpoint: running after it was closed would read unmapped memory.
        if (store != null) ObjectDisposedException.ThrowIf(store.IsDisposed, store);
        int side = config.ImageSize, imageFloats = 3 * side * side;
        if (batchSize < 1) throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "must be at least 1");
        if (pixels.Length != (long)batchSize * imageFloats)
            throw new ArgumentException($"pixels has {pixels.Length} values; {batchSize} image(s) of [3, {side}, {side}] need {(long)batchSize * imageFloats}", nameof(pixels));
        if (features.Length != (long)batchSize * EmbedDim)
            throw new ArgumentException($"features has {features.Length} values; {batchSize} row(s) of {EmbedDim} need {(long)batchSize * EmbedDim}", nameof(features));

        int t = config.TokenCount, d = config.Width, patchLength = 3 * config.PatchSize * config.PatchSize;
        int patchCount = t - 1, rows = batchSize * t;
        long floatCount = (long)rows * (d + d + 3 * d + d + config.MlpHidden) + (long)patchCount * patchLength + 2L * batchSize * d;
        using var arena = new ActivationArena(floatCount, "VisionTransformer.Forward");
        var x = arena.Take(rows * d);                       // [B·T, D] the residual stream
        var normed = arena.Take(rows * d);                  // [B·T, D] LayerNorm output feeding qkv and fc1
        var qkv = arena.Take(rows * 3 * d);                 // [B·T, 3D] q | k | v, each laid out (nh, hs)
        var attended = arena.Take(rows * d);                // [B·T, D] attention output, before proj
        var hidden = arena.Take(rows * config.MlpHidden);   // [B·T, F] MLP hidden, after GELU
        var patches = arena.Take(patchCount * patchLength); // [G², C·P·P] one image unfolded into patch rows
        var classTokens = arena.Take(batchSize * d);        // [B, D] the class tokens from the last block on
        var classAttended = arena.Take(batchSize * d);      // [B, D] their attention outputs
        var scratch = new BlockScratch(normed, qkv, attended, hidden, classAttended, padKeyQkv: [], padKeyOutput: []);
        var images = Batch.Images(batchSize, t);
        using var watching = ForwardHook.Install(hook);

        Embeddings.Apply(pixels, batchSize, patches, x);
        for (int i = 0; i < Blocks.Length - 1; i++)
            Blocks[i].Forward(x, images, scratch);
        Blocks[^1].ForwardClassTokens(x, images, scratch, classTokens);
        Norm.Apply(classTokens, classTokens);  // pooled: the class token after trunk.norm
        Head.Apply(classTokens, features);
    }

    /// <summary>
    /// Pixels to tokens: [class token; patch embeddings] + position embedding, image by image (timm's
    /// <c>patch_embed</c> and <c>_pos_embed</c>; Hugging Face calls the module <c>ViTEmbeddings</c>). The patch
    /// embedding is the P×P stride-P convolution written as a GEMM over unfolded patches.
    /// </summary>
    internal sealed class ViTEmbeddings(VisionConfig config, Parameter classToken, Parameter positionEmbedding, Linear projection)
    {
        public Parameter ClassToken => classToken;               // cls_token [1, 1, D]
        public Parameter PositionEmbedding => positionEmbedding; // pos_embed [1, T, D], the class token's position first
        public Linear Projection => projection;                  // patch_embed.proj: the conv [D, C, P, P] as a Linear [D, C·P·P], + bias [D]

        public static ViTEmbeddings Load(WeightSource trunk, VisionConfig config)
        {
            int d = config.Width, p = config.PatchSize;
            var classToken = new Parameter(trunk.NameOf("cls_token"), trunk.Copy("cls_token", 1, 1, d));
            var positionEmbedding = new Parameter(trunk.NameOf("pos_embed"), trunk.Copy("pos_embed", 1, config.TokenCount, d));
            // The conv weight [D, C, P, P] is, row-major, already the Linear weight [D, C·P·P].
            var projection = Linear.Load(trunk.At("patch_embed").At("proj"), d, 3 * p * p, hasBias: true, packed: true,
                storedShape: [d, 3, p, p]);
            return new(config, classToken, positionEmbedding, projection);
        }

        /// <summary>
        /// x = [class token; patches·Wᵀ + b] + position embedding. The patch embedding is added on top of the position
        /// embedding already in place (pos + (conv + bias), the same sum timm forms).
        /// </summary>
        /// <param name="pixels">[B, C, S, S]</param>
        /// <param name="batchSize">B</param>
        /// <param name="patches">[G², C·P·P] scratch</param>
        /// <param name="x">[B·T, D] receives the embedded tokens</param>
        public void Apply(ReadOnlySpan<float> pixels, int batchSize, Span<float> patches, Span<float> x)
        {
            int t = config.TokenCount, d = config.Width, imageFloats = 3 * config.ImageSize * config.ImageSize;
            for (int b = 0; b < batchSize; b++)
            {
                var tokens = x.Slice(b * t * d, t * d); // [T, D]
                TensorPrimitives.Add(classToken.Values, positionEmbedding.Values.AsSpan(0, d), tokens.Slice(0, d));
                positionEmbedding.Values.AsSpan(d).CopyTo(tokens.Slice(d));
                Unfold(pixels.Slice(b * imageFloats, imageFloats), patches);
                projection.AddTo(tokens.Slice(d), patches);
            }
            ForwardHook.After(EmbeddingsStep, x, d);
        }

        /// <summary>
        /// im2col for a stride-P convolution: patches[gy·G + gx, (c, ky, kx)] = image[c, gy·P + ky, gx·P + kx],
        /// the same (c, ky, kx) order as the flattened conv weight [D, C, P, P].
        /// </summary>
        /// <param name="image">[C, S, S]</param>
        /// <param name="patches">[G², C·P·P]</param>
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
    }

    /// <summary>timm <c>Block</c>, pre-norm; no layer scale, no drop path at inference.</summary>
    internal sealed class Block(string name, LayerNormWeights norm1, SelfAttention attn, LayerNormWeights norm2, Mlp mlp)
    {
        public string Name => name;               // blocks.i
        public LayerNormWeights Norm1 => norm1;   // over D
        public SelfAttention Attn => attn;        // qkv [3D, D] + bias, proj [D, D] + bias
        public LayerNormWeights Norm2 => norm2;   // over D
        public Mlp Mlp => mlp;                    // fc1 [F, D] + bias, fc2 [D, F] + bias

        public static Block Load(WeightSource w, VisionConfig config)
        {
            int d = config.Width, f = config.MlpHidden;
            float eps = config.LayerNormEps;
            var norm1 = LayerNormWeights.Load(w.At("norm1"), d, eps);
            var attention = w.At("attn");
            var attn = new SelfAttention(attention.Prefix,
                Linear.Load(attention.At("qkv"), 3 * d, d, hasBias: true, packed: true),
                Linear.Load(attention.At("proj"), d, d, hasBias: true, packed: true), config.HeadCount);
            var norm2 = LayerNormWeights.Load(w.At("norm2"), d, eps);
            var mlp = new Mlp(
                Linear.Load(w.At("mlp").At("fc1"), f, d, hasBias: true, packed: true),
                Linear.Load(w.At("mlp").At("fc2"), d, f, hasBias: true, packed: true));
            return new(w.Prefix, norm1, attn, norm2, mlp);
        }

        /// <summary>x = x + attn(norm1(x)); x = x + mlp(norm2(x)), on every row of x [B·T, D].</summary>
        public void Forward(Span<float> x, in Batch images, in BlockScratch s)
        {
            attn.AddTo(x, norm1.Apply(x, s.Normed), images, s);
            mlp.AddTo(x, norm2.Apply(x, s.Normed), s);
            ForwardHook.After(name, x, norm1.Width);
        }

        /// <summary>
        /// The last block, for the class tokens only: they alone reach the head. Attention still runs over every row,
        /// since each class token attends to all of its image's tokens; everything after it works row by row, so it
        /// runs on the B class rows alone. The result is exact, not an approximation.
        /// </summary>
        /// <param name="x">[B·T, D] the residual stream before this block.</param>
        /// <param name="images">B images of T rows.</param>
        /// <param name="s">Scratch.</param>
        /// <param name="classTokens">[B, D] receives the class tokens after this block.</param>
        public void ForwardClassTokens(ReadOnlySpan<float> x, in Batch images, in BlockScratch s, Span<float> classTokens)
        {
            var attended = attn.Attend(norm1.Apply(x, s.Normed), images, s); // [B·T, D]
            int d = classTokens.Length / images.Count;
            images.CopyFirstRows(x, classTokens, d);
            images.CopyFirstRows(attended, s.ClassAttended, d);
            attn.Project(classTokens, s.ClassAttended);                    // x = x + attn(norm1(x)), class rows
            mlp.AddTo(classTokens, norm2.Apply(classTokens, s.Normed), s); // x = x + mlp(norm2(x)), class rows
            ForwardHook.After(name, classTokens, d);
        }
    }
}
