using ManagedClip.Imaging;
using ManagedClip.Model;

namespace ManagedClip.Tests.Imaging;

/// <summary>
/// The model card's nine example images (no pixel reference exists for them): format, Pillow mode, and the resize
/// target and crop offset listed in testdata/model-card/README.md; the full chain must produce a finite tensor
/// inside the normalised range.
/// </summary>
public class ModelCardImageTests
{
    private static readonly ImagePreprocessor Preprocessor = ImagePreprocessor.For(ClipConfig.BiomedClip);

    [Theory]
    [InlineData("H_and_E_histopathology.jpg", 1200, 800, "RGB", 336, 224, 56, 0)]
    [InlineData("IHC_histopathology.jpg", 640, 427, "RGB", 335, 224, 56, 0)]
    [InlineData("adenocarcinoma_histopathology.jpg", 220, 166, "RGB", 296, 224, 36, 0)]
    [InlineData("bone_X-ray.jpg", 170, 228, "RGB", 224, 300, 0, 38)]
    [InlineData("brain_MRI.jpg", 1200, 1285, "L", 224, 239, 0, 8)]
    [InlineData("chest_X-ray.jpg", 1929, 2207, "RGB", 224, 256, 0, 16)]
    [InlineData("covid_line_chart.png", 298, 169, "P", 394, 224, 85, 0)]
    [InlineData("pie_chart.png", 2817, 2556, "RGB", 246, 224, 11, 0)]
    [InlineData("squamous_cell_carcinoma_histopathology.jpeg", 275, 183, "RGB", 336, 224, 56, 0)]
    public void MatchesTheModelCardTable(string file, int width, int height, string mode,
        int resizedWidth, int resizedHeight, int left, int top)
    {
        var path = Path.Combine(TestData.ModelCard, "images", file);
        var native = Preprocessor.Decode(File.ReadAllBytes(path), path);
        Assert.Equal((width, height), (native.Width, native.Height));
        Assert.Equal(mode, native.Mode.PillowName());

        var resized = TorchvisionGeometry.ResizedSize(width, height, 224);
        Assert.Equal((resizedWidth, resizedHeight), resized);
        Assert.Equal((left, top), TorchvisionGeometry.CenterCropOffset(resized.Width, resized.Height, 224));

        var tensor = Preprocessor.Preprocess(path);
        for (int c = 0; c < 3; c++)
        {
            float low = (0f - ClipConfig.OpenAiMean[c]) / ClipConfig.OpenAiStd[c];
            float high = (1f - ClipConfig.OpenAiMean[c]) / ClipConfig.OpenAiStd[c];
            var plane = tensor.AsSpan(c * 224 * 224, 224 * 224).ToArray();
            Assert.All(plane, v => Assert.InRange(v, low, high));
            Assert.True(plane.Max() - plane.Min() > 0.5f, $"{file} channel {c} is flat"); // a real picture, not a blank
        }
    }
}
