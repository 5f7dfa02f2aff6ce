namespace ManagedClip.Model;

/// <summary>
/// Which layers a reduced <see cref="ClipPrecision"/> (bf16, int8) applies to. Everything not listed stays float32
/// in every mode.
/// </summary>
/// <remarks>
/// <code>
///   tower    module (under …blocks.i / …encoder.layer.i)   GEMM [N, K]       bf16 / int8
///   vision   attn.qkv                                      [3D, D]           yes
///   vision   attn.proj                                     [D, D]            yes
///   vision   mlp.fc1                                       [F, D]            yes
///   vision   mlp.fc2                                       [D, F]            yes
///   text     attention.self (query, key, value stacked)   [3D, D]           yes
///   text     attention.output.dense                        [D, D]            yes
///   text     intermediate.dense                            [F, D]            yes
///   text     output.dense                                  [D, F]            yes
///   vision   patch_embed.proj (the 16×16 convolution)      [D, 3·16·16]      no: the first layer sees raw pixels
///   both     LayerNorm, softmax, Q·Kᵀ and P·V, GELU         —                 no: float32 (cheap, and sensitive)
///   both     heads (head.proj, proj.0, proj.2), embeddings  —                 no: run once per pass, read in place
/// </code>
/// These eight GEMMs are over 99% of both towers' multiply-adds and weight bytes.
/// </remarks>
internal static class ReducedPrecisionLayers
{
    /// <summary>The module names' endings, in state-dict spelling.</summary>
    public static readonly IReadOnlyList<string> ModuleSuffixes =
    [
        ".attn.qkv", ".attn.proj", ".mlp.fc1", ".mlp.fc2",
        ".attention.self", ".attention.output.dense", ".intermediate.dense", ".output.dense",
    ];

    /// <summary>True if the module <paramref name="prefix"/> (e.g. "visual.trunk.blocks.3.mlp.fc1") is in the table.</summary>
    public static bool Covers(string prefix) =>
        (prefix.Contains(".blocks.", StringComparison.Ordinal) || prefix.Contains(".encoder.layer.", StringComparison.Ordinal))
        && ModuleSuffixes.Any(suffix => prefix.EndsWith(suffix, StringComparison.Ordinal));
}
