namespace ManagedClip.Tests.EndToEnd;

/// <summary>
/// <see cref="ClipModel.Classify(IReadOnlyList{ImageInput}, IReadOnlyList{string}, string)"/> embeds the prompts while
/// the images are being decoded on a worker; these check that the overlap changes nothing a caller can see.
/// </summary>
public class ClassifyTests
{
    private static ImageInput Image(string name) => ImageInput.FromFile(TestData.PathOf("images", name + ".png"));

    [Fact]
    public void ProbabilitiesAreTheSoftmaxOfScaledCosinesOfTheSeparateEmbeddings()
    {
        var model = TestModels.Tiny;
        string[] labels = ["brain MRI", "chest X-ray", "adenocarcinoma histopathology"];
        var results = model.Classify([Image("cell"), Image("ihc")], labels);

        var prompts = model.EmbedTexts(labels.Select(l => ClipModel.DefaultTemplate.Replace("{}", l)).ToList());
        var images = model.EmbedImages([Image("cell"), Image("ihc")]);
        Assert.Equal(2, results.Length);
        for (int i = 0; i < images.Length; i++)
        {
            var cosines = ClipModel.CosineSimilarity([images[i]], prompts)[0];
            var logits = cosines.Select(c => (double)model.LogitScale * c).ToArray();
            double max = logits.Max(), sum = logits.Sum(l => Math.Exp(l - max));
            Assert.Equal(labels, results[i].Labels);
            for (int j = 0; j < labels.Length; j++)
            {
                // Same features (same towers, same inputs); Classify computes cosines and logits in float, here in
                // double: the logits (scale ≈ 100 × cosine) agree within 1e-4, and a softmax moves each probability
                // by at most half the largest change of a logit.
                Assert.Equal(logits[j], results[i].Logits[j], 1e-4);
                Assert.Equal(Math.Exp(logits[j] - max) / sum, results[i].Probabilities[j], 5e-5);
            }
        }
    }

    [Fact]
    public void NoImagesGiveNoResults()
    {
        Assert.Empty(TestModels.Tiny.Classify([], ["brain MRI", "chest X-ray"]));
    }

    [Fact]
    public void ACorruptImageIsReportedByName()
    {
        var corrupt = ImageInput.FromBytes(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G', 1, 2, 3 }, "upload.png");
        var error = Assert.Throws<InvalidDataException>(() => TestModels.Tiny.Classify([Image("cell"), corrupt], ["brain MRI"]));
        Assert.Contains("upload.png", error.Message);
    }
}
