using ManagedClip.Model;

namespace ManagedClip.Benchmarks;

/// <summary>
/// The score step of zero-shot classification, shared by both sides of <see cref="OrtBaselineBenchmarks"/> so
/// they differ only in the towers: normalise the features, scale the cosines by exp(logit_scale), softmax.
/// </summary>
internal static class ZeroShotScores
{
    /// <summary>Label probabilities [labels] of one image.</summary>
    /// <param name="imageFeatures">[1, E] unnormalised; normalised in place.</param>
    /// <param name="textFeatures">[labels, E] unnormalised; normalised in place.</param>
    /// <param name="logitScaleLog">The checkpoint's <c>logit_scale</c>.</param>
    public static float[] Probabilities(float[] imageFeatures, float[] textFeatures, float logitScaleLog)
    {
        int width = imageFeatures.Length, labels = textFeatures.Length / width;
        ClipScores.NormalizeRows(imageFeatures, width);
        ClipScores.NormalizeRows(textFeatures, width);
        var logits = new float[labels];
        var probabilities = new float[labels];
        ClipScores.ZeroShot(imageFeatures, textFeatures, width, logitScaleLog, logits, probabilities);
        return probabilities;
    }
}
