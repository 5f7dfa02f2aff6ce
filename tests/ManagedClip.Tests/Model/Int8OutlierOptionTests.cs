namespace ManagedClip.Tests.Model;

/// <summary><see cref="ClipModelOptions.Int8OutlierDecomposition"/>: the int8 model with and without the outlier rule.</summary>
public class Int8OutlierOptionTests
{
    [Fact]
    public void TheRuleCanBeTurnedOffAndBothStayNearFloat32()
    {
        string image = TestData.PathOf("images", "tiny.png");
        const string text = "an H&E stain of colon adenocarcinoma";
        float[][] Embed(ClipModelOptions options)
        {
            options.ModelDirectory = TestData.Tiny;
            using var model = ClipModel.Load(options);
            return [model.EmbedImage(image, normalize: true), model.EmbedText(text, normalize: true)];
        }
        var exact = Embed(new ClipModelOptions());
        var withRule = Embed(new ClipModelOptions { Precision = ClipPrecision.Int8 });
        var without = Embed(new ClipModelOptions { Precision = ClipPrecision.Int8, Int8OutlierDecomposition = false });
        var fp32Ignores = Embed(new ClipModelOptions { Int8OutlierDecomposition = false });
        Assert.Equal(exact, fp32Ignores); // float32 has no rule to turn off: the same bits
        // The tiny model's GELU rows have values beyond 4× their RMS, so the switch changes the int8 image features.
        Assert.NotEqual(withRule[0], without[0]);
        // Both int8 variants keep the project's int8 target against float32 (cosine ≥ 0.999, as PrecisionAccuracyTests).
        for (int i = 0; i < 2; i++)
        {
            Assert.True(Dot(exact[i], withRule[i]) >= 0.999, $"with the rule: cosine {Dot(exact[i], withRule[i]):F6}");
            Assert.True(Dot(exact[i], without[i]) >= 0.999, $"without the rule: cosine {Dot(exact[i], without[i]):F6}");
        }

        static double Dot(float[] a, float[] b) => a.Zip(b, (p, q) => (double)p * q).Sum(); // unit vectors: the cosine
    }
}
