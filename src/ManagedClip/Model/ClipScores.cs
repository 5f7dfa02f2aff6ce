using System.Numerics.Tensors;
using ManagedClip.Kernels;

namespace ManagedClip.Model;

/// <summary>
/// How CLIP compares the two towers' features: cosine similarity scaled by exp(logit_scale), and a softmax over
/// the candidate texts of each image for zero-shot classification (open_clip 2.23 <c>CustomTextCLIP.forward</c>).
/// </summary>
internal static class ClipScores
{
    /// <summary>Each row x becomes x / max(‖x‖₂, 1e-12), as torch's <c>F.normalize</c>.</summary>
    /// <param name="rows">[rowCount, width], in place.</param>
    /// <param name="width">Row width.</param>
    public static void NormalizeRows(Span<float> rows, int width)
    {
        for (int start = 0; start < rows.Length; start += width)
        {
            var row = rows.Slice(start, width);
            TensorPrimitives.Divide(row, MathF.Max(TensorPrimitives.Norm(row), 1e-12f), row);
        }
    }

    /// <summary>
    /// logits[i, j] = exp(logitScale) · cos(image i, text j); probabilities = softmax of each image's logits.
    /// </summary>
    /// <param name="imageFeatures">[images, width] normalised image features.</param>
    /// <param name="textFeatures">[texts, width] normalised text features.</param>
    /// <param name="width">Feature width E.</param>
    /// <param name="logitScale">The checkpoint's <c>logit_scale</c>, stored as a logarithm.</param>
    /// <param name="logits">[images, texts]</param>
    /// <param name="probabilities">[images, texts]</param>
    public static void ZeroShot(ReadOnlySpan<float> imageFeatures, ReadOnlySpan<float> textFeatures, int width,
        float logitScale, Span<float> logits, Span<float> probabilities)
    {
        int imageCount = imageFeatures.Length / width, textCount = textFeatures.Length / width;
        float scale = MathF.Exp(logitScale);
        for (int i = 0; i < imageCount; i++)
        {
            var image = imageFeatures.Slice(i * width, width);
            var row = logits.Slice(i * textCount, textCount);
            for (int j = 0; j < textCount; j++)
                row[j] = scale * TensorPrimitives.Dot(image, textFeatures.Slice(j * width, width));
            var probabilityRow = probabilities.Slice(i * textCount, textCount);
            row.CopyTo(probabilityRow);
            Softmax.Apply(probabilityRow);
        }
    }
}
