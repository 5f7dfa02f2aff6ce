using System.Text.Json;
using ManagedClip.Model;
using Xunit.Abstractions;

namespace ManagedClip.Tests.Model;

/// <summary>
/// Both towers and the CLIP scores together: the tiny model's zero-shot tables for all 15 images and both label
/// sets, images and prompts each encoded as one batch. Tolerances from testdata/reference/README.md: normalized
/// features 2e-5, logits (scale 100) 2e-3, probabilities 1e-4.
/// </summary>
public class ZeroShotTests(ITestOutputHelper output)
{
    private const float NormalizedFeatureTolerance = 2e-5f;
    private const float LogitTolerance = 2e-3f;
    private const float ProbabilityTolerance = 1e-4f;

    private static TinyModel Model => TinyModel.Instance;

    public static IEnumerable<object[]> LabelSets => new[] { "histopathology", "radiology" }.Select(s => new object[] { s });

    [Theory]
    [MemberData(nameof(LabelSets))]
    public void ZeroShotTableMatchesReference(string labelSet)
    {
        var rows = JsonDocument.Parse(File.ReadAllText(Path.Combine(TestData.Tiny, "zeroshot.json"))).RootElement
            .GetProperty("label_sets").GetProperty(labelSet).GetProperty("rows").EnumerateArray()
            .Select(e => e.GetString()!).ToArray();
        int width = TinyModel.EmbedDim;

        var images = Model.ImageFeatures(rows);
        ClipScores.NormalizeRows(images, width);
        for (int i = 0; i < rows.Length; i++)
            TensorAssert.Close($"image.{rows[i]}.features_normalized", Model.Reference($"image.{rows[i]}.features_normalized"),
                images.AsSpan(i * width, width), NormalizedFeatureTolerance);

        var paddedIds = TinyModel.ToInt(Model.Outputs.GetInt64($"zeroshot.{labelSet}.input_ids")); // [labels, 256]
        int labelCount = paddedIds.Length / 256;
        var prompts = Enumerable.Range(0, labelCount).Select(j => paddedIds.AsSpan(j * 256, 256).ToArray())
            .Select(ids => ids[..BertTextEncoder.UnpaddedLength(ids)]).ToArray();
        var texts = Model.TextFeatures(prompts);
        ClipScores.NormalizeRows(texts, width);

        var logits = new float[rows.Length * labelCount];
        var probabilities = new float[rows.Length * labelCount];
        float logitScale = Model.Outputs.GetFloat32("logit_scale")[0];
        ClipScores.ZeroShot(images, texts, width, logitScale, logits, probabilities);

        TensorAssert.Close($"zeroshot.{labelSet}.logits", Model.Reference($"zeroshot.{labelSet}.logits"), logits, LogitTolerance, output);
        TensorAssert.Close($"zeroshot.{labelSet}.probs", Model.Reference($"zeroshot.{labelSet}.probs"), probabilities, ProbabilityTolerance, output);
    }
}
