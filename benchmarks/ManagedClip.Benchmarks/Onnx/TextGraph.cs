using ManagedClip.IO.Formats;
using ManagedClip.Model;

namespace ManagedClip.Benchmarks.Onnx;

/// <summary>
/// The text tower as an ONNX graph: Hugging Face BERT (post-norm, no pooler) followed by open_clip's MLP
/// projection of the [CLS] hidden state — <c>input_ids</c>, <c>attention_mask</c> [batch, sequence] (int64)
/// → <c>text_features</c> [batch, E]. Any sequence length up to the position table's size works. Every tensor name
/// and shape comes from the tower's own declaration (a <see cref="BertTextEncoder"/> loaded from a
/// <see cref="CheckpointLayout"/>); only the ops are written here.
/// </summary>
/// <remarks>
/// Naming key as the model's: B batch, T sequence, D hidden, nh heads, hs head size. The mask is the caller's:
/// open_clip uses <c>input_ids != 0</c> (so a [PAD] inside a text is masked too), not the tokenizer's mask.
/// </remarks>
internal static class TextGraph
{
    public const string InputIdsName = "input_ids";
    public const string AttentionMaskName = "attention_mask";
    public const string OutputName = "text_features";

    /// <summary>The graph; with <paramref name="int8"/> its layers' Linears are ONNX Runtime's dynamically quantized
    /// int8 product (<see cref="OnnxGraph.QuantizeLinears"/>; the model must import the com.microsoft domain).</summary>
    public static ProtoMessage Build(TensorStore store, BertTextEncoder tower, bool int8 = false)
    {
        var graph = new OnnxGraph { QuantizeLinears = int8 };
        string ids = graph.Input(InputIdsName, OnnxDataType.Int64, "batch", "sequence");
        string mask = graph.Input(AttentionMaskName, OnnxDataType.Int64, "batch", "sequence");

        graph.Scope = "embeddings";
        string x = Embeddings(graph, store, ids, tower);

        // HF's extended mask: (1 − mask) · float32.MinValue added to every query's scores over the keys.
        graph.Scope = "mask";
        string keyMask = graph.Op("Cast", [graph.Op("Unsqueeze", mask, graph.Int64s("axes", 1, 2))],
            [OnnxWriter.IntAttribute("to", (long)OnnxDataType.Float)]);                       // [B, 1, 1, T]
        string additiveMask = graph.Op("Mul", graph.Op("Sub", graph.Scalar("one", 1f), keyMask),
            graph.Scalar("min", float.MinValue));

        foreach (var layer in tower.Layers) x = Layer(graph, store, x, additiveMask, layer);

        // open_clip: cls_last_hidden_state_pooler, then proj = Linear → GELU → Linear, both without bias.
        graph.Scope = "proj";
        string cls = graph.Take(x, axis: 1, index: 0);                                              // [B, D]
        string projected = graph.Gelu(graph.Linear(store, cls, tower.Projection.Fc1));              // [B, (D+E)/2]
        string features = graph.Linear(store, projected, tower.Projection.Fc2);                    // [B, E]
        graph.Op("Identity", [features], [], OutputName);
        graph.Output(OutputName, OnnxDataType.Float, "batch", tower.EmbedDim);
        return graph.Build(int8 ? "biomedclip_text_int8" : "biomedclip_text");
    }

    /// <summary>LayerNorm(word[ids] + token_type[0] + position[0..T−1]): [B, T, D].</summary>
    private static string Embeddings(OnnxGraph graph, TensorStore store, string ids, BertTextEncoder tower)
    {
        var config = tower.Config;
        long vocab = config.VocabSize, hidden = config.Hidden;
        string wordKey = tower.Embeddings.Words.Name;
        string words = graph.Op("Gather", graph.Weight(wordKey, [vocab, hidden], store.GetFloat32(wordKey, vocab, hidden)), ids); // [B, T, D]

        // Every token_type_id is 0, so only row 0 of the token-type table is used.
        string typeKey = tower.Embeddings.TokenTypes.Name;
        var typeRowZero = store.GetFloat32(typeKey, config.TypeVocabSize, hidden)[..(int)hidden];   // [D]
        string withType = graph.Op("Add", words, graph.Weight(typeKey + "[0]", [hidden], typeRowZero));

        string length = graph.Take(graph.Op("Shape", ids), axis: 0, index: 1);                   // scalar T
        string positionIds = graph.Op("Range", graph.Int64Scalar("start", 0), length, graph.Int64Scalar("step", 1)); // [T]
        string positionTable = graph.Weight(store, tower.Embeddings.Positions, config.MaxPositions, hidden);
        string positions = graph.Op("Gather", positionTable, positionIds);                         // [T, D]
        return graph.LayerNorm(store, graph.Op("Add", withType, positions), tower.Embeddings.Norm);
    }

    /// <summary>Post-norm layer: x = LN(x + attn(x)); x = LN(x + ffn(x)).</summary>
    private static string Layer(OnnxGraph graph, TensorStore store, string x, string additiveMask, BertTextEncoder.Layer layer)
    {
        var attention = layer.Attention;
        int headCount = attention.HeadCount, headSize = attention.HeadSize, hidden = attention.Proj.OutputCount;
        graph.Scope = OnnxLayers.ShortName(layer.Name) + ".attention";
        var parts = attention.Qkv.Parts; // query, key, value: three Linear [D, D] + bias in the checkpoint
        string q = Heads(graph, store, x, parts[0], hidden, headCount, headSize, 0, 2, 1, 3); // [B, nh, T, hs]
        string kT = Heads(graph, store, x, parts[1], hidden, headCount, headSize, 0, 2, 3, 1); // [B, nh, hs, T]
        string v = Heads(graph, store, x, parts[2], hidden, headCount, headSize, 0, 2, 1, 3); // [B, nh, T, hs]
        // HF divides q·kᵀ by √head_size, then adds the mask.
        string scores = graph.Op("Div", graph.Op("MatMul", q, kT), graph.Scalar("sqrt_head_size", (float)Math.Sqrt(headSize)));
        scores = graph.Op("Add", scores, additiveMask);                                          // [B, nh, T, T]
        string context = graph.Op("MatMul", graph.Softmax(scores), v);                           // [B, nh, T, hs]
        context = graph.Reshape(graph.Transpose(context, 0, 2, 1, 3), 0, 0, hidden);            // [B, T, D]
        string attended = graph.Op("Add", graph.Linear(store, context, attention.Proj), x);
        x = graph.LayerNorm(store, attended, layer.AttentionNorm);

        graph.Scope = OnnxLayers.ShortName(layer.Name) + ".ffn";
        string inner = graph.Gelu(graph.Linear(store, x, layer.FeedForward.Fc1));               // [B, T, F]
        string output = graph.Op("Add", graph.Linear(store, inner, layer.FeedForward.Fc2), x);
        return graph.LayerNorm(store, output, layer.OutputNorm);
    }

    /// <summary>Linear [B, T, D] → [B, T, nh, hs], then permuted (HF's transpose_for_scores; kᵀ directly).</summary>
    private static string Heads(OnnxGraph graph, TensorStore store, string x, string module, int hidden, int headCount, long headSize,
        params long[] perm) =>
        graph.Transpose(graph.Reshape(graph.Linear(store, x, module, hidden, hidden, hasBias: true), 0, 0, headCount, headSize), perm);
}
