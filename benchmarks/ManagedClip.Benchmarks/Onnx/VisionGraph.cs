using ManagedClip.IO.Formats;

namespace ManagedClip.Benchmarks.Onnx;

/// <summary>
/// The image tower as an ONNX graph: timm <c>VisionTransformer</c> (vit_base_patch16_224, global_pool "token")
/// followed by open_clip's bias-free linear head — <c>pixel_values</c> [batch, 3, S, S] → <c>image_features</c>
/// [batch, E]. All sizes come from the checkpoint's tensor shapes; only the head count is not stored there.
/// </summary>
/// <remarks>Naming key: N batch, T tokens (patches + class token), D width, E embedding width.</remarks>
internal static class VisionGraph
{
    public const string InputName = "pixel_values";
    public const string OutputName = "image_features";

    // timm's ViT LayerNorm eps (nn.LayerNorm(eps=1e-6) via partial in vision_transformer.py).
    private const float LayerNormEps = 1e-6f;
    private const string Trunk = "visual.trunk";

    public static ProtoMessage Build(TensorStore store, int headCount)
    {
        var patchShape = OnnxLayers.ShapeOf(store, $"{Trunk}.patch_embed.proj.weight"); // [D, 3, P, P]
        var positionShape = OnnxLayers.ShapeOf(store, $"{Trunk}.pos_embed");           // [1, T, D]
        long width = patchShape[0], channels = patchShape[1], patch = patchShape[2];
        long tokens = positionShape[1];
        long grid = (long)Math.Round(Math.Sqrt(tokens - 1));
        if (grid * grid != tokens - 1)
            throw new InvalidDataException(
                $"{store.SourcePath}: '{Trunk}.pos_embed' has {tokens} positions, not a square grid plus the class token.");
        if (width % headCount != 0)
            throw new ArgumentException($"Vision width {width} is not divisible by {headCount} heads.", nameof(headCount));
        long imageSize = grid * patch;
        long embedDim = OnnxLayers.ShapeOf(store, "visual.head.proj.weight")[0];
        int depth = OnnxLayers.CountLayers(store, $"{Trunk}.blocks", "norm1.weight");

        var graph = new OnnxGraph();
        string pixels = graph.Input(InputName, OnnxDataType.Float, "batch", channels, imageSize, imageSize);

        graph.Scope = "patch_embed";
        string x = PatchEmbedding(graph, store, pixels, width, channels, patch, tokens);
        for (int block = 0; block < depth; block++)
            x = Block(graph, store, x, $"{Trunk}.blocks.{block}", width, headCount);

        graph.Scope = "head";
        x = graph.LayerNorm(store, x, $"{Trunk}.norm", LayerNormEps);       // [N, T, D]
        string pooled = graph.Take(x, axis: 1, index: 0);                      // [N, D] class token
        string features = graph.Linear(store, pooled, "visual.head.proj", hasBias: false); // [N, E]
        graph.Op("Identity", [features], [], OutputName);
        graph.Output(OutputName, OnnxDataType.Float, "batch", embedDim);
        return graph.Build("biomedclip_vision");
    }

    /// <summary>Conv patchify, flatten to tokens, prepend the class token, add position embeddings: [N, T, D].</summary>
    private static string PatchEmbedding(OnnxGraph graph, TensorStore store, string pixels,
        long width, long channels, long patch, long tokens)
    {
        string weightKey = $"{Trunk}.patch_embed.proj.weight", biasKey = $"{Trunk}.patch_embed.proj.bias";
        string weight = graph.Weight(weightKey, [width, channels, patch, patch], store.GetFloat32(weightKey, width, channels, patch, patch));
        string bias = graph.Weight(biasKey, [width], store.GetFloat32(biasKey, width));
        string grid = graph.Op("Conv", [pixels, weight, bias],
            [OnnxWriter.IntsAttribute("kernel_shape", patch, patch), OnnxWriter.IntsAttribute("strides", patch, patch)]); // [N, D, G, G]
        string patches = graph.Transpose(graph.Reshape(grid, 0, 0, -1), 0, 2, 1); // [N, G·G, D]

        // The class token [1, 1, D] is broadcast to the batch, as torch's cls_token.expand(N, -1, -1).
        string clsKey = $"{Trunk}.cls_token", posKey = $"{Trunk}.pos_embed";
        string cls = graph.Weight(clsKey, [1, 1, width], store.GetFloat32(clsKey, 1, 1, width));
        string batch = graph.Op("Shape", [pixels], [OnnxWriter.IntAttribute("start", 0), OnnxWriter.IntAttribute("end", 1)]); // [1] = N
        string clsShape = graph.Op("Concat", [batch, graph.Int64s("cls_shape", 1, width)], [OnnxWriter.IntAttribute("axis", 0)]);
        string clsTokens = graph.Op("Expand", cls, clsShape);                                        // [N, 1, D]
        string sequence = graph.Op("Concat", [clsTokens, patches], [OnnxWriter.IntAttribute("axis", 1)]); // [N, T, D]
        string positions = graph.Weight(posKey, [1, tokens, width], store.GetFloat32(posKey, 1, tokens, width));
        return graph.Op("Add", sequence, positions);
    }

    /// <summary>Pre-norm block: x += attn(norm1(x)); x += mlp(norm2(x)).</summary>
    private static string Block(OnnxGraph graph, TensorStore store, string x, string module, long width, int headCount)
    {
        long headSize = width / headCount;
        graph.Scope = module[(Trunk.Length + 1)..] + ".attn"; // "blocks.3.attn"
        string h = graph.LayerNorm(store, x, module + ".norm1", LayerNormEps);
        string qkv = graph.Linear(store, h, module + ".attn.qkv", hasBias: true);           // [N, T, 3D]
        qkv = graph.Transpose(graph.Reshape(qkv, 0, 0, 3, headCount, headSize), 2, 0, 3, 1, 4); // [3, N, heads, T, hs]
        string q = graph.Take(qkv, axis: 0, index: 0);                                        // [N, heads, T, hs]
        string k = graph.Take(qkv, axis: 0, index: 1);
        string v = graph.Take(qkv, axis: 0, index: 2);
        // timm scales q by head_size^-0.5 before q·kᵀ.
        string scaledQ = graph.Op("Mul", q, graph.Scalar("scale", (float)(1.0 / Math.Sqrt(headSize))));
        string scores = graph.Op("MatMul", scaledQ, graph.Transpose(k, 0, 1, 3, 2));          // [N, heads, T, T]
        string context = graph.Op("MatMul", graph.Softmax(scores), v);                        // [N, heads, T, hs]
        context = graph.Reshape(graph.Transpose(context, 0, 2, 1, 3), 0, 0, width);          // [N, T, D]
        x = graph.Op("Add", x, graph.Linear(store, context, module + ".attn.proj", hasBias: true));

        graph.Scope = module[(Trunk.Length + 1)..] + ".mlp";
        h = graph.LayerNorm(store, x, module + ".norm2", LayerNormEps);
        h = graph.Gelu(graph.Linear(store, h, module + ".mlp.fc1", hasBias: true));           // [N, T, 4D]
        return graph.Op("Add", x, graph.Linear(store, h, module + ".mlp.fc2", hasBias: true)); // [N, T, D]
    }
}
