using ManagedClip.Model;

namespace ManagedClip.IO.Formats;

/// <summary>
/// Sizes of the plain timm ViTs (class token, pre-norm blocks, qkv bias, mlp_ratio 4, LayerNorm eps 1e-6) that an
/// open_clip config may name as <c>timm_model_name</c>, as registered in timm's <c>vision_transformer.py</c>
/// (timm 0.9.12). The trailing number of a name is its input size.
/// </summary>
internal static class TimmVisionModels
{
    private static readonly Dictionary<string, VisionConfig> Known = new(StringComparer.Ordinal)
    {
        // name                                 image  patch  width  depth  heads  mlp hidden
        ["vit_tiny_patch16_224"] = new(224, 16, 192, 12, 3, 768),
        ["vit_tiny_patch16_384"] = new(384, 16, 192, 12, 3, 768),
        ["vit_small_patch16_224"] = new(224, 16, 384, 12, 6, 1536),
        ["vit_small_patch16_384"] = new(384, 16, 384, 12, 6, 1536),
        ["vit_small_patch32_224"] = new(224, 32, 384, 12, 6, 1536),
        ["vit_base_patch16_224"] = VisionConfig.VitBasePatch16_224,
        ["vit_base_patch16_384"] = new(384, 16, 768, 12, 12, 3072),
        ["vit_base_patch32_224"] = new(224, 32, 768, 12, 12, 3072),
        ["vit_base_patch32_384"] = new(384, 32, 768, 12, 12, 3072),
        ["vit_large_patch16_224"] = new(224, 16, 1024, 24, 16, 4096),
        ["vit_large_patch16_384"] = new(384, 16, 1024, 24, 16, 4096),
        ["vit_large_patch14_224"] = new(224, 14, 1024, 24, 16, 4096),
        ["vit_huge_patch14_224"] = new(224, 14, 1280, 32, 16, 5120),
    };

    public static IEnumerable<string> Names => Known.Keys;

    public static bool TryGet(string name, out VisionConfig config) => Known.TryGetValue(name, out config!);
}
