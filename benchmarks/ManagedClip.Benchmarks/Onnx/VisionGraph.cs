using ManagedClip.IO.Formats;
using ManagedClip.Model;

namespace ManagedClip.Benchmarks.Onnx;

/// <summary>
/// The image tower as an ONNX graph: timm <c>VisionTransformer</c> (vit_base_patch16_224, global_pool "token")
/// followed by open_clip's bias-free linear head — <c>pixel_values</c> [batch, C, S, S] → <c>image_features</c>
/// [batch, E]. Every tensor name and shape comes from the tower's own declaration (a <see cref="VisionTransformer"/>
/// loaded from a <see cref="CheckpointLayout"/>); only the ops are written here.
/// </summary>
/// <remarks>Naming key as the model's: B batch, C channels, S side, P patch, G = S/P, T = G² + 1 tokens, D width, E embedding.</remarks>
internal static class VisionGraph
{
    public const string InputName = "pixel_values";
    public const string OutputName = "image_features";

    /// <summary>The graph; with <paramref name="int8"/> its blocks' Linears are ONNX Runtime's dynamically quantized
    /// int8 product (<see cref="OnnxGraph.QuantizeLinears"/>; the model must import the com.microsoft domain).</summary>
    public static ProtoMessage Build(TensorStore store, VisionTransformer tower, bool int8 = false)
    {
        var config = tower.Config;
        var graph = new OnnxGraph { QuantizeLinears = int8 };
        string pixels = graph.Input(InputName, OnnxDataType.Float, "batch", 3, config.ImageSize, config.ImageSize);

        graph.Scope = "patch_embed";
        string x = PatchEmbedding(graph, store, pixels, tower);
        foreach (var block in tower.Blocks) x = Block(graph, store, x, block);

        graph.Scope = "head";
        x = graph.LayerNorm(store, x, tower.Norm);                           // [B, T, D]
        string pooled = graph.Take(x, axis: 1, index: 0);                      // [B, D] class token
        string features = graph.Linear(store, pooled, tower.Head);            // [B, E]
        graph.Op("Identity", [features], [], OutputName);
        graph.Output(OutputName, OnnxDataType.Float, "batch", tower.EmbedDim);
        return graph.Build(int8 ? "biomedclip_vision_int8" : "biomedclip_vision");
    }

    /// <summary>Conv patchify, flatten to tokens, prepend the class token, add position embeddings: [B, T, D].</summary>
    private static string PatchEmbedding(OnnxGraph graph, TensorStore store, string pixels, VisionTransformer tower)
    {
        long width = tower.Config.Width, patch = tower.Config.PatchSize, tokens = tower.Config.TokenCount;
        var conv = tower.Embeddings.Projection; // stored as the conv it is: [D, C, P, P]
        string weight = graph.Weight(conv.Name + ".weight", [width, 3, patch, patch], store.GetFloat32(conv.Name + ".weight", width, 3, patch, patch));
        string bias = graph.Weight(conv.Name + ".bias", [width], store.GetFloat32(conv.Name + ".bias", width));
        string grid = graph.Op("Conv", [pixels, weight, bias],
            [OnnxWriter.IntsAttribute("kernel_shape", patch, patch), OnnxWriter.IntsAttribute("strides", patch, patch)]); // [B, D, G, G]
        string patches = graph.Transpose(graph.Reshape(grid, 0, 0, -1), 0, 2, 1); // [B, G·G, D]

        // The class token [1, 1, D] is broadcast to the batch, as torch's cls_token.expand(B, -1, -1).
        string cls = graph.Weight(store, tower.Embeddings.ClassToken, 1, 1, width);
        string batch = graph.Op("Shape", [pixels], [OnnxWriter.IntAttribute("start", 0), OnnxWriter.IntAttribute("end", 1)]); // [1] = B
        string clsShape = graph.Op("Concat", [batch, graph.Int64s("cls_shape", 1, width)], [OnnxWriter.IntAttribute("axis", 0)]);
        string clsTokens = graph.Op("Expand", cls, clsShape);                                        // [B, 1, D]
        string sequence = graph.Op("Concat", [clsTokens, patches], [OnnxWriter.IntAttribute("axis", 1)]); // [B, T, D]
        string positions = graph.Weight(store, tower.Embeddings.PositionEmbedding, 1, tokens, width);
        return graph.Op("Add", sequence, positions);
    }

    /// <summary>Pre-norm block: x += attn(norm1(x)); x += mlp(norm2(x)).</summary>
    private static string Block(OnnxGraph graph, TensorStore store, string x, VisionTransformer.Block block)
    {
        var attn = block.Attn;
        long width = attn.Proj.OutputCount, headSize = attn.HeadSize;
        int headCount = attn.HeadCount;
        graph.Scope = OnnxLayers.ShortName(block.Name) + ".attn"; // "blocks.3.attn"
        string h = graph.LayerNorm(store, x, block.Norm1);
        string qkv = graph.Linear(store, h, attn.Qkv);                                        // [B, T, 3D]
        qkv = graph.Transpose(graph.Reshape(qkv, 0, 0, 3, headCount, headSize), 2, 0, 3, 1, 4); // [3, B, nh, T, hs]
        string q = graph.Take(qkv, axis: 0, index: 0);                                        // [B, nh, T, hs]
        string k = graph.Take(qkv, axis: 0, index: 1);
        string v = graph.Take(qkv, axis: 0, index: 2);
        // timm scales q by head_size^-0.5 before q·kᵀ.
        string scaledQ = graph.Op("Mul", q, graph.Scalar("scale", (float)(1.0 / Math.Sqrt(headSize))));
        string scores = graph.Op("MatMul", scaledQ, graph.Transpose(k, 0, 1, 3, 2));          // [B, nh, T, T]
        string context = graph.Op("MatMul", graph.Softmax(scores), v);                        // [B, nh, T, hs]
        context = graph.Reshape(graph.Transpose(context, 0, 2, 1, 3), 0, 0, width);          // [B, T, D]
        x = graph.Op("Add", x, graph.Linear(store, context, attn.Proj));

        graph.Scope = OnnxLayers.ShortName(block.Name) + ".mlp";
        h = graph.LayerNorm(store, x, block.Norm2);
        h = graph.Gelu(graph.Linear(store, h, block.Mlp.Fc1));                               // [B, T, F]
        return graph.Op("Add", x, graph.Linear(store, h, block.Mlp.Fc2));                    // [B, T, D]
    }
}
