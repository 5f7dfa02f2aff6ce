namespace ManagedClip.Kernels;

/// <summary>Multi-head scaled-dot-product self-attention over one sequence.</summary>
/// <remarks>
/// Naming key (the model's): T query tokens, Tk keys attended (≤ T), nh heads, hs head size. Per head, both products
/// run on the GEMM micro-kernel: scores[T, Tk] = Q·Kᵀ with K packed as the weight, then softmax per row, then
/// out[T, hs] = P·V with Vᵀ packed as the weight. Heads run in parallel; each worker keeps its scratch buffers
/// between calls, so steady-state calls allocate nothing.
/// </remarks>
internal static class Attention
{
    /// <summary>
    /// output = concat over heads of softmax(q·kᵀ/√headSize)·v, for one sequence.
    /// </summary>
    /// <param name="qkv">[tokenCount, 3·headCount·headSize]: each row is q (all heads) | k | v, head-major inside each.</param>
    /// <param name="tokenCount">T: query rows.</param>
    /// <param name="headCount">Heads.</param>
    /// <param name="headSize">Width of one head.</param>
    /// <param name="output">[tokenCount, headCount·headSize]</param>
    /// <param name="keyCount">Only the first keyCount keys are attended to (the rest act as masked padding); -1 = all.</param>
    public static void SelfAttention(ReadOnlySpan<float> qkv, int tokenCount, int headCount, int headSize,
        Span<float> output, int keyCount = -1)
        => SelfAttention(qkv, tokenCount, headCount, headSize, output, keyCount, KernelPaths.Current);

    internal static unsafe void SelfAttention(ReadOnlySpan<float> qkv, int tokenCount, int headCount, int headSize,
        Span<float> output, int keyCount, KernelPath path)
    {
        if (tokenCount < 0) throw new ArgumentOutOfRangeException(nameof(tokenCount), tokenCount, "must not be negative");
        if (headCount < 1) throw new ArgumentOutOfRangeException(nameof(headCount), headCount, "must be at least 1");
        if (headSize < 1) throw new ArgumentOutOfRangeException(nameof(headSize), headSize, "must be at least 1");
        if (keyCount == -1) keyCount = tokenCount;
        if (tokenCount > 0 && (keyCount < 1 || keyCount > tokenCount))
            throw new ArgumentOutOfRangeException(nameof(keyCount), keyCount, $"must be -1 or in [1, {tokenCount}]");
        long width = (long)headCount * headSize;
        if (qkv.Length < tokenCount * 3 * width)
            throw new ArgumentException($"qkv has {qkv.Length} elements, expected at least {tokenCount}×3×{width}", nameof(qkv));
        if (output.Length < tokenCount * width)
            throw new ArgumentException($"output has {output.Length} elements, expected at least {tokenCount}×{width}", nameof(output));
        if (qkv.Overlaps(output)) throw new ArgumentException("output must not overlap qkv", nameof(output));
        if (tokenCount == 0) return;
        if (path == KernelPath.Reference)
        {
            ReferenceKernels.Attention(qkv, tokenCount, headCount, headSize, output, keyCount);
            return;
        }

        fixed (float* q = qkv, o = output)
        {
            Parallelism.For(headCount, new AttentionHeads(q, o, tokenCount, keyCount, headCount, headSize, path));
        }
    }

    /// <summary>One call's operands; <see cref="Run"/> computes one head.</summary>
    private readonly unsafe struct AttentionHeads(float* qkv, float* output, int tokenCount, int keyCount, int headCount,
        int headSize, KernelPath path) : Parallelism.IParallelBody
    {
        public void Run(int head)
        {
            int width = headCount * headSize, stride = 3 * width;
            int keyPanels = (keyCount + PanelPacking.PanelWidth - 1) / PanelPacking.PanelWidth;
            int valuePanels = (headSize + PanelPacking.PanelWidth - 1) / PanelPacking.PanelWidth;
            // Score rows are padded to whole key panels: the product with the zero-padded keys then writes whole
            // tiles, and every row starts on a cache line (with the aligned scratch, measurably faster:
            // docs/benchmarks/design-measurements-2026-12-01.md).
            int scoreStride = keyPanels * PanelPacking.PanelWidth;
            var scratch = AttentionScratch.ForThisThread(
                keyPanels * PanelPacking.PanelWidth * headSize, valuePanels * PanelPacking.PanelWidth * keyCount,
                tokenCount * scoreStride);
            float* packedKeys = scratch.PackedKeys.Start, packedValues = scratch.PackedValues.Start, scores = scratch.Scores.Start;

            float* queries = qkv + head * headSize;             // Q_h [T, hs], row stride 3·width
            float* keys = qkv + width + head * headSize;        // K_h [Tk, hs], row stride 3·width
            float* values = qkv + 2 * width + head * headSize;  // V_h [Tk, hs], row stride 3·width

            // K_h as a GEMM weight [N = Tk, K = hs], packed as the GEMM packs any weight: key s goes to panel
            // s / 32, lane s % 32 of every row d; the last panel's unused lanes are zero.
            float** keyRows = stackalloc float*[PanelPacking.PanelWidth];
            for (int p = 0; p < keyPanels; p++)
            {
                int count = Math.Min(PanelPacking.PanelWidth, keyCount - p * PanelPacking.PanelWidth);
                for (int j = 0; j < count; j++) keyRows[j] = keys + (p * PanelPacking.PanelWidth + j) * stride; // K_h[s, :]
                float* panel = packedKeys + p * headSize * PanelPacking.PanelWidth;
                for (int k0 = 0; k0 < headSize; k0 += GemmPlan.DepthBlock)
                    PanelPacking.Pack(keyRows, count, k0, Math.Min(GemmPlan.DepthBlock, headSize - k0), panel + k0 * PanelPacking.PanelWidth, path);
            }
            // V_hᵀ as a GEMM weight [N = hs, K = Tk]: panel p, row s holds V_h[s, 32p .. 32p + 32), zero-padded.
            for (int s = 0; s < keyCount; s++)
            for (int p = 0; p < valuePanels; p++)
            {
                int used = Math.Min(PanelPacking.PanelWidth, headSize - p * PanelPacking.PanelWidth);
                var row = new Span<float>(packedValues + (p * keyCount + s) * PanelPacking.PanelWidth, PanelPacking.PanelWidth);
                new ReadOnlySpan<float>(values + s * stride + p * PanelPacking.PanelWidth, used).CopyTo(row);
                row.Slice(used).Clear();
            }

            // scores [T, Tk] = Q_h · K_hᵀ (the padding columns hold zeros and are never read)
            Gemm.Run(new GemmProduct(queries, stride, tokenCount, packedKeys, scoreStride, headSize, null,
                scores, scoreStride, GemmEpilogue.Store, path, degree: 1), maxDegree: 1);
            float scale = 1f / MathF.Sqrt(headSize);
            for (int t = 0; t < tokenCount; t++)
                Softmax.Apply(new Span<float>(scores + t * scoreStride, keyCount), scale, path);
            // out_h [T, hs] = P · V_h, written into this head's columns of the output
            Gemm.Run(new GemmProduct(scores, scoreStride, tokenCount, packedValues, headSize, keyCount, null,
                output + head * headSize, width, GemmEpilogue.Store, path, degree: 1), maxDegree: 1);
        }
    }

    /// <summary>Per-thread buffers that only ever grow.</summary>
    private sealed class AttentionScratch
    {
        [ThreadStatic] private static AttentionScratch? current;

        public AlignedBuffer PackedKeys;   // [⌈Tk/32⌉, hs, 32]
        public AlignedBuffer PackedValues; // [⌈hs/32⌉, Tk, 32]
        public AlignedBuffer Scores;       // [T, ⌈Tk/32⌉·32]

        public static AttentionScratch ForThisThread(int packedKeys, int packedValues, int scores)
        {
            var scratch = current ??= new AttentionScratch();
            scratch.PackedKeys.EnsureLength(packedKeys);
            scratch.PackedValues.EnsureLength(packedValues);
            scratch.Scores.EnsureLength(scores);
            return scratch;
        }
    }
}
