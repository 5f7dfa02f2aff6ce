using System.Globalization;
using System.Text;

namespace ManagedClip;

/// <summary>One image's outcome in <see cref="ClipModel.EmbedImageStream"/>: its embedding, or why it has none.</summary>
/// <param name="Input">The image, as given.</param>
/// <param name="Embedding">[E], or null when the image could not be read or decoded.</param>
/// <param name="Error">One line naming the image and what was wrong, when <paramref name="Embedding"/> is null.</param>
public sealed record ImageEmbeddingResult(ImageInput Input, float[]? Embedding, string? Error)
{
    /// <summary>The embedding [E] as read-only memory (for <c>Embedding&lt;float&gt;</c>, vector stores, spans); empty when the image failed.</summary>
    public ReadOnlyMemory<float> Vector => Embedding;

    /// <summary><c>ihc.png: [512] 0.0123, -0.0456, 0.0789, …</c>, or the error, which names the image.</summary>
    public override string ToString() => Embedding is { } embedding ? $"{Input.Name}: {ResultText.Vector(embedding)}"
        : Error is { } error && error.StartsWith(Input.Name, StringComparison.Ordinal) ? error
        : $"{Input.Name}: {Error ?? "no embedding"}";
}

/// <summary>Zero-shot classification of one image: the labels in the order given, with their probabilities.</summary>
/// <param name="Labels">Candidate labels, in the caller's order.</param>
/// <param name="Probabilities">softmax over labels of <c>exp(logit_scale) · cosine(image, prompt)</c>.</param>
/// <param name="Logits">The scaled cosines before the softmax.</param>
public sealed record ZeroShotResult(IReadOnlyList<string> Labels, float[] Probabilities, float[] Logits)
{
    /// <summary>The image classified (set by <see cref="ClipModel.Classify(IReadOnlyList{ImageInput}, IReadOnlyList{string}, string)"/>).</summary>
    public ImageInput? Image { get; init; }

    /// <summary>The most probable label (the first of equals, in the caller's order).</summary>
    public string BestLabel => Labels[Ranking()[0]];

    /// <summary>Label indices from the most probable to the least (ties keep the caller's order).</summary>
    public int[] Ranking()
    {
        var order = Enumerable.Range(0, Probabilities.Length).ToArray();
        // A stable sort: equal probabilities stay in label order.
        return [.. order.OrderByDescending(i => Probabilities[i])];
    }

    /// <summary><c>ihc.png: 'IHC' 0.910, 'H&amp;E' 0.050, …</c>: the labels from the most probable, at most five.</summary>
    public override string ToString()
    {
        const int Shown = 5;
        var text = new StringBuilder(Image?.Name ?? "image").Append(": ");
        var ranking = Ranking();
        for (int r = 0; r < Math.Min(Shown, ranking.Length); r++)
        {
            if (r > 0) text.Append(", ");
            text.Append('\'').Append(UserText.Quote(Labels[ranking[r]], 60)).Append("' ")
                .Append(Probabilities[ranking[r]].ToString("0.000", CultureInfo.InvariantCulture));
        }
        if (ranking.Length > Shown) text.Append(", … (").Append(ranking.Length).Append(" labels)");
        return text.ToString();
    }
}

/// <summary>How results print: short, culture-independent, one line.</summary>
internal static class ResultText
{
    /// <summary><c>[512] 0.0123, -0.0456, 0.0789, …</c>: the width and the first values.</summary>
    public static string Vector(ReadOnlySpan<float> values, int shown = 3)
    {
        var text = new StringBuilder().Append('[').Append(values.Length).Append(']');
        for (int i = 0; i < Math.Min(shown, values.Length); i++)
            text.Append(i == 0 ? " " : ", ").Append(values[i].ToString("0.0000", CultureInfo.InvariantCulture));
        if (values.Length > shown) text.Append(", …");
        return text.ToString();
    }
}
