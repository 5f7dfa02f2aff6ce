using ManagedClip.IO.Formats;
using ManagedClip.Model;

namespace ManagedClip.IO;

/// <summary>One entry of a BiomedCLIP state dict.</summary>
/// <param name="Name">State-dict key.</param>
/// <param name="DType">Element type as open_clip saves it (float32, or int64 for <c>position_ids</c>).</param>
/// <param name="Shape">Shape the config implies.</param>
/// <param name="UsedInForward">False only for <c>position_ids</c>, a buffer the forward pass never reads.</param>
internal sealed record ExpectedTensor(string Name, TensorDType DType, long[] Shape, bool UsedInForward);

/// <summary>
/// The tensors a BiomedCLIP-style open_clip <c>CustomTextCLIP</c> (timm ViT image tower, HF BERT text tower, "mlp" text
/// projection) holds for a <see cref="ClipConfig"/>, in the order <c>model.state_dict()</c> lists them, and the check
/// that a weights file supplies exactly them. The list is what the towers' <c>Load</c> methods ask for, recorded
/// rather than read (<see cref="CheckpointLayout"/>): the names and shapes are written down only there.
/// </summary>
internal static class ClipStateDict
{
    /// <summary>The one key the forward pass does not use (an int64 buffer 0..Tmax−1 older transformers saved).</summary>
    public const string PositionIdsName = "text.transformer.embeddings.position_ids";

    /// <summary>Every state-dict entry for <paramref name="config"/>, in state-dict order.</summary>
    public static IReadOnlyList<ExpectedTensor> Expected(ClipConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        var layout = new CheckpointLayout();
        ClipModel.LoadLogitScale(layout);
        VisionTransformer.Load(layout, config.Vision, config.EmbedDim);
        BertTextEncoder.Load(layout, config.Text, config.EmbedDim);
        var list = layout.Requests.Select(r => new ExpectedTensor(r.Name, TensorDType.F32, r.Shape, UsedInForward: true)).ToList();
        list.Add(new(PositionIdsName, TensorDType.I64, [1, config.Text.MaxPositions], UsedInForward: false));
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
            problems.Add($"unexpected tensor '{UserText.Quote(name, 80)}' {store.Info(name).ShapeText} (not part of this architecture; is the config right for these weights?)");

        if (problems.Count == 0) return;
        const int shown = 12;
        var text = string.Join("; ", problems.Take(shown)) + (problems.Count > shown ? $"; and {problems.Count - shown} more problems" : "");
        throw new InvalidDataException($"weights {store.SourcePath}: {text}.");
    }
}
