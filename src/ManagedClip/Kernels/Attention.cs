using System.Numerics.Tensors;

namespace ManagedClip.Kernels;

/// <summary>Multi-head scaled-dot-product self-attention over one sequence.</summary>
public static class Attention
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
    {
        if (keyCount < 0) keyCount = tokenCount;
        int width = headCount * headSize, stride = 3 * width;
        float scale = 1f / MathF.Sqrt(headSize);
        var scores = new float[keyCount];
        for (int h = 0; h < headCount; h++)
        for (int t = 0; t < tokenCount; t++)
        {
            var q = qkv.Slice(t * stride + h * headSize, headSize);
            for (int s = 0; s < keyCount; s++)
                scores[s] = TensorPrimitives.Dot(q, qkv.Slice(s * stride + width + h * headSize, headSize)) * scale;
            Softmax.Apply(scores);
            var o = output.Slice(t * width + h * headSize, headSize);
            o.Clear();
            for (int s = 0; s < keyCount; s++)
                TensorPrimitives.MultiplyAdd(qkv.Slice(s * stride + 2 * width + h * headSize, headSize), scores[s], o, o);
        }
    }
}
