namespace ManagedClip;

/// <summary>
/// The number format of the towers' block weights (attention qkv and output, MLP fc1 and fc2), chosen at load.
/// Embeddings, LayerNorm, softmax, the attention products and the heads always run in float32; docs/PRECISION.md has
/// the table of quantized layers and the measured accuracy of each mode.
/// </summary>
public enum ClipPrecision
{
    /// <summary>float32 throughout: the same bits as the upstream PyTorch model's arithmetic allows (the default).</summary>
    Float32,

    /// <summary>
    /// Block weights stored as bfloat16 (rounded to nearest even from the checkpoint), widened to float32 inside the
    /// GEMM and accumulated in float32: half the weight memory and bandwidth.
    /// </summary>
    BFloat16,

    /// <summary>
    /// Block weights as int8, symmetric per output channel; each input row quantized on the fly to uint8 with its own
    /// scale and zero point; int32 accumulation; bias, GELU and the residual add in float32. A quarter of the weight
    /// memory.
    /// </summary>
    Int8,
}
