using ManagedClip.IO.Formats;

namespace ManagedClip.Benchmarks.Onnx;

/// <summary>
/// The text tower as an ONNX graph: Hugging Face BERT (post-norm, no pooler) followed by open_clip's MLP
/// projection of the [CLS] hidden state — <c>input_ids</c>, <c>attention_mask</c> [batch, sequence] (int64)
/// → <c>text_features</c> [batch, E]. Any sequence length up to the position table's size works.
/// </summary>
/// <remarks>
/// Naming key: N batch, L sequence, H hidden. The mask is the caller's: open_clip uses
/// <c>input_ids != 0</c> (so a [PAD] inside a text is masked too), not the tokenizer's mask.
/// </remarks>
internal static class TextGraph
{
    public const string InputIdsName = "input_ids";
    public const string AttentionMaskName = "attention_mask";
    public const string OutputName = "text_features";

    // BertConfig.layer_norm_eps default.
    private const float LayerNormEps = 1e-12f;
    private const string Bert = "text.transformer";

    public static ProtoMessage Build(TensorStore store, int headCount)
    {
        var wordShape = OnnxLayers.ShapeOf(store, $"{Bert}.embeddings.word_embeddings.weight"); // [V, H]
        long vocab = wordShape[0], hidden = wordShape[1];
        long maxPositions = OnnxLayers.ShapeOf(store, $"{Bert}.embeddings.position_embeddings.weight")[0];
        long typeVocab = OnnxLayers.ShapeOf(store, $"{Bert}.embeddings.token_type_embeddings.weight")[0];
        long embedDim = OnnxLayers.ShapeOf(store, "text.proj.2.weight")[0];
        if (hidden % headCount != 0)
            throw new ArgumentException($"Text hidden width {hidden} is not divisible by {headCount} heads.", nameof(headCount));
        int layerCount = OnnxLayers.CountLayers(store, $"{Bert}.encoder.layer", "attention.self.query.weight");

        var graph = new OnnxGraph();
        string ids = graph.Input(InputIdsName, OnnxDataType.Int64, "batch", "sequence");
        string mask = graph.Input(AttentionMaskName, OnnxDataType.Int64, "batch", "sequence");

        graph.Scope = "embeddings";
        string x = Embeddings(graph, store, ids, vocab, hidden, maxPositions, typeVocab);

        // HF's extended mask: (1 − mask) · float32.MinValue added to every query's scores over the keys.
        graph.Scope = "mask";
        string keyMask = graph.Op("Cast", [graph.Op("Unsqueeze", mask, graph.Int64s("axes", 1, 2))],
            [OnnxWriter.IntAttribute("to", (long)OnnxDataType.Float)]);                       // [N, 1, 1, L]
        string additiveMask = graph.Op("Mul", graph.Op("Sub", graph.Scalar("one", 1f), keyMask),
            graph.Scalar("min", float.MinValue));

        for (int layer = 0; layer < layerCount; layer++)
            x = Layer(graph, store, x, additiveMask, $"{Bert}.encoder.layer.{layer}", hidden, headCount);

        // open_clip: cls_last_hidden_state_pooler, then proj = Linear → GELU → Linear, both without bias.
        graph.Scope = "proj";
        string cls = graph.Take(x, axis: 1, index: 0);                                              // [N, H]
        string projected = graph.Gelu(graph.Linear(store, cls, "text.proj.0", hasBias: false));   // [N, (H+E)/2]
        string features = graph.Linear(store, projected, "text.proj.2", hasBias: false);          // [N, E]
        graph.Op("Identity", [features], [], OutputName);
        graph.Output(OutputName, OnnxDataType.Float, "batch", embedDim);
        return graph.Build("biomedclip_text");
    }

    /// <summary>LayerNorm(word[ids] + token_type[0] + position[0..L−1]): [N, L, H].</summary>
    private static string Embeddings(OnnxGraph graph, TensorStore store, string ids,
        long vocab, long hidden, long maxPositions, long typeVocab)
    {
        string wordKey = $"{Bert}.embeddings.word_embeddings.weight";
        string positionKey = $"{Bert}.embeddings.position_embeddings.weight";
        string typeKey = $"{Bert}.embeddings.token_type_embeddings.weight";
        string words = graph.Op("Gather", graph.Weight(wordKey, [vocab, hidden], store.GetFloat32(wordKey, vocab, hidden)), ids); // [N, L, H]

        // Every token_type_id is 0, so only row 0 of the token-type table is used.
        var typeRowZero = store.GetFloat32(typeKey, typeVocab, hidden)[..(int)hidden];            // [H]
        string withType = graph.Op("Add", words, graph.Weight(typeKey + "[0]", [hidden], typeRowZero));

        string length = graph.Take(graph.Op("Shape", ids), axis: 0, index: 1);                   // scalar L
        string positionIds = graph.Op("Range", graph.Int64Scalar("start", 0), length, graph.Int64Scalar("step", 1)); // [L]
        string positionTable = graph.Weight(positionKey, [maxPositions, hidden], store.GetFloat32(positionKey, maxPositions, hidden));
        string positions = graph.Op("Gather", positionTable, positionIds);                         // [L, H]
        return graph.LayerNorm(store, graph.Op("Add", withType, positions), $"{Bert}.embeddings.LayerNorm", LayerNormEps);
    }

    /// <summary>Post-norm layer: x = LN(x + attn(x)); x = LN(x + ffn(x)).</summary>
    private static string Layer(OnnxGraph graph, TensorStore store, string x, string additiveMask, string module,
        long hidden, int headCount)
    {
        long headSize = hidden / headCount;
        graph.Scope = module[$"{Bert}.encoder.".Length..] + ".attention";
        string attention = module + ".attention";
        string q = Heads(graph, store, x, attention + ".self.query", headCount, headSize, 0, 2, 1, 3); // [N, heads, L, hs]
        string kT = Heads(graph, store, x, attention + ".self.key", headCount, headSize, 0, 2, 3, 1);  // [N, heads, hs, L]
        string v = Heads(graph, store, x, attention + ".self.value", headCount, headSize, 0, 2, 1, 3); // [N, heads, L, hs]
        // HF divides q·kᵀ by √head_size, then adds the mask.
        string scores = graph.Op("Div", graph.Op("MatMul", q, kT), graph.Scalar("sqrt_head_size", (float)Math.Sqrt(headSize)));
        scores = graph.Op("Add", scores, additiveMask);                                          // [N, heads, L, L]
        string context = graph.Op("MatMul", graph.Softmax(scores), v);                           // [N, heads, L, hs]
        context = graph.Reshape(graph.Transpose(context, 0, 2, 1, 3), 0, 0, hidden);            // [N, L, H]
        string attended = graph.Op("Add", graph.Linear(store, context, attention + ".output.dense", hasBias: true), x);
        x = graph.LayerNorm(store, attended, attention + ".output.LayerNorm", LayerNormEps);

        graph.Scope = module[$"{Bert}.encoder.".Length..] + ".ffn";
        string inner = graph.Gelu(graph.Linear(store, x, module + ".intermediate.dense", hasBias: true)); // [N, L, I]
        string output = graph.Op("Add", graph.Linear(store, inner, module + ".output.dense", hasBias: true), x);
        return graph.LayerNorm(store, output, module + ".output.LayerNorm", LayerNormEps);
    }

    /// <summary>Linear [N, L, H] → [N, L, heads, hs], then permuted (HF's transpose_for_scores; kᵀ directly).</summary>
    private static string Heads(OnnxGraph graph, TensorStore store, string x, string module, int headCount, long headSize,
        params long[] perm) =>
        graph.Transpose(graph.Reshape(graph.Linear(store, x, module, hasBias: true), 0, 0, headCount, headSize), perm);
}
