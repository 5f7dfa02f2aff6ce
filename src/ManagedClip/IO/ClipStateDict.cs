using ManagedClip.IO.Formats;
using ManagedClip.Model;

namespace ManagedClip.IO;

/// <summary>One entry of a BiomedCLIP state dict.</summary>
/// <param name="Name">State-dict key.</param>
/// <param name="DType">Element type as open_clip saves it (float32, or int64 for <c>position_ids</c>).</param>
/// <param name="Shape">Shape the config implies.</param>
/// <param name="UsedInForward">False only for <c>position_ids</c>, a buffer the forward pass never reads.</param>
public sealed record ExpectedTensor(string Name, TensorDType DType, long[] Shape, bool UsedInForward);

/// <summary>
/// The tensors a BiomedCLIP-style open_clip <c>CustomTextCLIP</c> (timm ViT image tower, HF BERT text tower, "mlp" text
/// projection) holds, derived from a <see cref="ClipConfig"/>, in the order <c>model.state_dict()</c> lists them; and the
/// check that a weights file supplies exactly them.
/// Naming key: D vision width, T vision tokens, P patch side, M vision MLP width, E shared embedding width,
/// H text width, I text feed-forward width, V vocabulary rows, L position rows.
/// </summary>
public static class ClipStateDict
{
    /// <summary>The one key the forward pass does not use (an int64 buffer 0..L−1 older transformers saved).</summary>
    public const string PositionIdsName = "text.transformer.embeddings.position_ids";

    /// <summary>Every state-dict entry for <paramref name="config"/>, in state-dict order.</summary>
    public static IReadOnlyList<ExpectedTensor> Expected(ClipConfig config)
    {
        var list = new List<ExpectedTensor>();
        void Add(string name, params long[] shape) => list.Add(new(name, TensorDType.F32, shape, true));

        Add("logit_scale"); // 0-D: the log of the logit scale

        var v = config.Vision;
        long d = v.Width, m = v.MlpHidden;
        Add("visual.trunk.cls_token", 1, 1, d);
        Add("visual.trunk.pos_embed", 1, v.TokenCount, d);
        Add("visual.trunk.patch_embed.proj.weight", d, 3, v.PatchSize, v.PatchSize);
        Add("visual.trunk.patch_embed.proj.bias", d);
        for (int i = 0; i < v.Depth; i++)
        {
            var block = $"visual.trunk.blocks.{i}.";
            Add(block + "norm1.weight", d);
            Add(block + "norm1.bias", d);
            Add(block + "attn.qkv.weight", 3 * d, d);
            Add(block + "attn.qkv.bias", 3 * d);
            Add(block + "attn.proj.weight", d, d);
            Add(block + "attn.proj.bias", d);
            Add(block + "norm2.weight", d);
            Add(block + "norm2.bias", d);
            Add(block + "mlp.fc1.weight", m, d);
            Add(block + "mlp.fc1.bias", m);
            Add(block + "mlp.fc2.weight", d, m);
            Add(block + "mlp.fc2.bias", d);
        }
        Add("visual.trunk.norm.weight", d);
        Add("visual.trunk.norm.bias", d);
        Add("visual.head.proj.weight", config.EmbedDim, d);

        var t = config.Text;
        long h = t.Hidden, ff = t.Intermediate;
        const string embeddings = "text.transformer.embeddings.";
        Add(embeddings + "word_embeddings.weight", t.VocabSize, h);
        Add(embeddings + "position_embeddings.weight", t.MaxPositions, h);
        Add(embeddings + "token_type_embeddings.weight", t.TypeVocabSize, h);
        Add(embeddings + "LayerNorm.weight", h);
        Add(embeddings + "LayerNorm.bias", h);
        for (int i = 0; i < t.LayerCount; i++)
        {
            var layer = $"text.transformer.encoder.layer.{i}.";
            foreach (var projection in new[] { "query", "key", "value" })
            {
                Add(layer + $"attention.self.{projection}.weight", h, h);
                Add(layer + $"attention.self.{projection}.bias", h);
            }
            Add(layer + "attention.output.dense.weight", h, h);
            Add(layer + "attention.output.dense.bias", h);
            Add(layer + "attention.output.LayerNorm.weight", h);
            Add(layer + "attention.output.LayerNorm.bias", h);
            Add(layer + "intermediate.dense.weight", ff, h);
            Add(layer + "intermediate.dense.bias", ff);
            Add(layer + "output.dense.weight", h, ff);
            Add(layer + "output.dense.bias", h);
            Add(layer + "output.LayerNorm.weight", h);
            Add(layer + "output.LayerNorm.bias", h);
        }
        Add("text.proj.0.weight", config.TextProjectionHidden, h);
        Add("text.proj.2.weight", config.EmbedDim, config.TextProjectionHidden);

        list.Add(new(PositionIdsName, TensorDType.I64, [1, t.MaxPositions], false));
        return list;
    }

    /// <summary>
    /// Checks that <paramref name="store"/> holds every tensor the forward pass needs, with the shape the config implies
    /// and a floating-point dtype, and nothing else (<c>position_ids</c> is optional). All problems are reported together.
    /// </summary>
    /// <exception cref="InvalidDataException">Names the weights file and each offending tensor with both shapes.</exception>
    public static void Validate(TensorStore store, ClipConfig config)
    {
        var problems = new List<string>();
        var expected = Expected(config);
        foreach (var tensor in expected)
        {
            if (!store.Contains(tensor.Name))
            {
                if (tensor.UsedInForward) problems.Add($"tensor '{tensor.Name}' is missing (config expects {TensorDTypes.ShapeText(tensor.Shape)})");
                continue;
            }
            var info = store.Info(tensor.Name);
            bool dtypeOk = tensor.UsedInForward ? TensorDTypes.IsFloat(info.DType) : !TensorDTypes.IsFloat(info.DType);
            if (!dtypeOk)
                problems.Add($"tensor '{tensor.Name}' has dtype {info.DType}, config expects {(tensor.UsedInForward ? "a floating-point type" : "an integer type")}");
            // A 0-D scalar is sometimes saved as [1] (e.g. by converters); both hold one value.
            bool shapeOk = info.Shape.SequenceEqual(tensor.Shape) || (tensor.Shape.Length == 0 && info.Shape is [1]);
            if (!shapeOk)
                problems.Add($"tensor '{tensor.Name}' has shape {info.ShapeText}, config expects {TensorDTypes.ShapeText(tensor.Shape)}");
        }
        var known = expected.Select(e => e.Name).ToHashSet(StringComparer.Ordinal);
        foreach (var name in store.Names.Where(n => !known.Contains(n)))
            problems.Add($"unexpected tensor '{name}' {store.Info(name).ShapeText} (not part of this architecture; is the config right for these weights?)");

        if (problems.Count == 0) return;
        const int shown = 12;
        var text = string.Join("; ", problems.Take(shown)) + (problems.Count > shown ? $"; and {problems.Count - shown} more problems" : "");
        throw new InvalidDataException($"weights {store.SourcePath}: {text}.");
    }
}
