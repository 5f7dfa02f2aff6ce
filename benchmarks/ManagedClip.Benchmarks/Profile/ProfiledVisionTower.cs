using System.Diagnostics;
using System.Numerics.Tensors;
using ManagedClip.IO.Formats;
using ManagedClip.Kernels;
using ManagedClip.Model;

namespace ManagedClip.Benchmarks.Profile;

/// <summary>Where the image tower's time goes, one bucket per kind of work.</summary>
internal enum VisionStage
{
    PatchEmbed,    // unfold + GEMM [196, 768] → 768 per image, class token, position embedding
    LayerNorm,     // norm1 and norm2 of the full blocks, norm1 of the last
    QkvGemm,       // [B·T, 768] → 2304
    Attention,     // 12 heads of 64 over T = 197 tokens, image by image
    ProjGemm,      // [B·T, 768] → 768, residual add fused
    Fc1GeluGemm,   // [B·T, 768] → 3072, GELU fused
    Fc2Gemm,       // [B·T, 3072] → 768, residual add fused
    LastBlockTail, // the last block's proj, norm2, MLP on the B class tokens only, final norm, head
}

/// <summary>
/// The image tower's forward pass rebuilt from the library's own layers and kernels (<see cref="Linear"/>,
/// <see cref="LayerNormWeights"/>, <see cref="Attention"/>), in the same order as
/// <c>VisionTransformer.Forward</c>, with a clock around each stage. The tower itself has no timing hook, so
/// the profile compares this replica's total with the real forward pass to show nothing was left out.
/// </summary>
internal sealed class ProfiledVisionTower
{
    private readonly VisionConfig config;
    private readonly Linear patchEmbedding;   // [D, 3·P·P] + bias
    private readonly float[] classToken;      // [D]
    private readonly float[] positionEmbedding; // [T, D]
    private readonly BlockLayers[] blocks;
    private readonly LayerNormWeights finalNorm;
    private readonly Linear head;             // [E, D]

    private Buffers? buffers;

    private sealed record BlockLayers(LayerNormWeights Norm1, Linear Qkv, Linear Proj, LayerNormWeights Norm2, Linear Fc1, Linear Fc2);

    /// <summary>Loads the <c>visual.*</c> tensors as <c>VisionTransformer.Load</c> does.</summary>
    public ProfiledVisionTower(TensorStore store, VisionConfig config, int embedDim)
    {
        this.config = config;
        int d = config.Width, p = config.PatchSize, m = config.MlpHidden;
        float eps = config.LayerNormEps;
        const string trunk = "visual.trunk.";
        patchEmbedding = Linear.Load(store, trunk + "patch_embed.proj", d, 3 * p * p, hasBias: true, storedShape: [d, 3, p, p], packed: true);
        classToken = store.GetFloat32(trunk + "cls_token", 1, 1, d).ToArray();
        positionEmbedding = store.GetFloat32(trunk + "pos_embed", 1, config.TokenCount, d).ToArray();
        blocks = Enumerable.Range(0, config.Depth).Select(i =>
        {
            string prefix = $"{trunk}blocks.{i}.";
            return new BlockLayers(
                LayerNormWeights.Load(store, prefix + "norm1", d, eps),
                Linear.Load(store, prefix + "attn.qkv", 3 * d, d, hasBias: true, packed: true),
                Linear.Load(store, prefix + "attn.proj", d, d, hasBias: true, packed: true),
                LayerNormWeights.Load(store, prefix + "norm2", d, eps),
                Linear.Load(store, prefix + "mlp.fc1", m, d, hasBias: true, packed: true),
                Linear.Load(store, prefix + "mlp.fc2", d, m, hasBias: true, packed: true));
        }).ToArray();
        finalNorm = LayerNormWeights.Load(store, trunk + "norm", d, eps);
        head = Linear.Load(store, "visual.head.proj", embedDim, d, hasBias: false);
    }

    /// <summary>One forward pass; adds each stage's elapsed Stopwatch ticks to <paramref name="ticks"/>[stage].</summary>
    /// <param name="pixels">[B, 3, S, S]</param>
    /// <param name="features">[B, E]</param>
    public void Forward(ReadOnlySpan<float> pixels, int batchSize, Span<float> features, long[] ticks)
    {
        int t = config.TokenCount, d = config.Width, n = t - 1, rows = batchSize * t, side = config.ImageSize;
        int patchLength = 3 * config.PatchSize * config.PatchSize, imageFloats = 3 * side * side;
        // Allocated once per batch size, as the real pass reuses pooled arrays: no page faults inside the clock.
        if (buffers?.BatchSize != batchSize) buffers = new Buffers(config, batchSize);
        float[] x = buffers.X, normed = buffers.Normed, qkv = buffers.Qkv, attended = buffers.Attended,
            hidden = buffers.Hidden, patches = buffers.Patches, classTokens = buffers.ClassTokens, classAttended = buffers.ClassAttended;

        long start = Stopwatch.GetTimestamp();
        void Lap(VisionStage stage)
        {
            long now = Stopwatch.GetTimestamp();
            ticks[(int)stage] += now - start;
            start = now;
        }

        for (int b = 0; b < batchSize; b++)
        {
            var tokens = x.AsSpan(b * t * d, t * d);
            TensorPrimitives.Add(classToken, positionEmbedding.AsSpan(0, d), tokens.Slice(0, d));
            positionEmbedding.AsSpan(d).CopyTo(tokens.Slice(d));
            Unfold(pixels.Slice(b * imageFloats, imageFloats), patches);
            patchEmbedding.Apply(patches, n, tokens.Slice(d), GemmEpilogue.AddToOutput);
        }
        Lap(VisionStage.PatchEmbed);

        for (int i = 0; i < blocks.Length; i++)
        {
            var block = blocks[i];
            block.Norm1.Apply(x, rows, normed);
            Lap(VisionStage.LayerNorm);
            block.Qkv.Apply(normed, rows, qkv);
            Lap(VisionStage.QkvGemm);
            for (int b = 0; b < batchSize; b++)
                Attention.SelfAttention(qkv.AsSpan(b * t * 3 * d, t * 3 * d), t, config.HeadCount, config.HeadSize,
                    attended.AsSpan(b * t * d, t * d));
            Lap(VisionStage.Attention);
            if (i < blocks.Length - 1)
            {
                block.Proj.Apply(attended, rows, x, GemmEpilogue.AddToOutput);
                Lap(VisionStage.ProjGemm);
                block.Norm2.Apply(x, rows, normed);
                Lap(VisionStage.LayerNorm);
                block.Fc1.Apply(normed, rows, hidden, GemmEpilogue.StoreGelu);
                Lap(VisionStage.Fc1GeluGemm);
                block.Fc2.Apply(hidden, rows, x, GemmEpilogue.AddToOutput);
                Lap(VisionStage.Fc2Gemm);
            }
            else
            {
                for (int b = 0; b < batchSize; b++)
                {
                    x.AsSpan(b * t * d, d).CopyTo(classTokens.AsSpan(b * d, d));
                    attended.AsSpan(b * t * d, d).CopyTo(classAttended.AsSpan(b * d, d));
                }
                block.Proj.Apply(classAttended, batchSize, classTokens, GemmEpilogue.AddToOutput);
                block.Norm2.Apply(classTokens, batchSize, normed);
                block.Fc1.Apply(normed, batchSize, hidden, GemmEpilogue.StoreGelu);
                block.Fc2.Apply(hidden, batchSize, classTokens, GemmEpilogue.AddToOutput);
            }
        }
        finalNorm.Apply(classTokens, batchSize, classTokens);
        head.Apply(classTokens, batchSize, features);
        Lap(VisionStage.LastBlockTail);
    }

    /// <summary>The activations of one pass, laid out as in <c>VisionTransformer.Forward</c>.</summary>
    private sealed class Buffers(VisionConfig config, int batchSize)
    {
        public readonly int BatchSize = batchSize;
        public readonly float[] X = new float[batchSize * config.TokenCount * config.Width];           // [B·T, D] residual stream
        public readonly float[] Normed = new float[batchSize * config.TokenCount * config.Width];      // [B·T, D]
        public readonly float[] Qkv = new float[batchSize * config.TokenCount * 3 * config.Width];     // [B·T, 3D]
        public readonly float[] Attended = new float[batchSize * config.TokenCount * config.Width];    // [B·T, D]
        public readonly float[] Hidden = new float[batchSize * config.TokenCount * config.MlpHidden];  // [B·T, M]
        public readonly float[] Patches = new float[(config.TokenCount - 1) * 3 * config.PatchSize * config.PatchSize]; // [N, 3·P·P]
        public readonly float[] ClassTokens = new float[batchSize * config.Width];   // [B, D]
        public readonly float[] ClassAttended = new float[batchSize * config.Width]; // [B, D]
    }

    /// <summary>fc1 of block 0 on <paramref name="rowCount"/> rows, with or without the fused GELU.</summary>
    public void Fc1(ReadOnlySpan<float> normed, int rowCount, Span<float> hidden, GemmEpilogue epilogue) =>
        blocks[0].Fc1.Apply(normed, rowCount, hidden, epilogue);

    /// <summary>im2col for the stride-P patch convolution, (c, ky, kx) order as the conv weight [D, 3, P, P].</summary>
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
