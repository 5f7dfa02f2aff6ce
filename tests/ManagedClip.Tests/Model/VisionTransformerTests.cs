using ManagedClip.IO.Formats;
using ManagedClip.Kernels;
using ManagedClip.Model;
using Xunit.Abstractions;

namespace ManagedClip.Tests.Model;

/// <summary>
/// The image tower against PyTorch's outputs for the tiny model, stage by stage, from the reference pixel_values.
/// Tolerances follow testdata/reference/README.md: a float32 port with another summation order lands near the
/// float32-vs-float64 distance (5e-7 on these features); 1e-4 absolute leaves room for kernel reordering while
/// still catching any real mistake (a wrong eps, GELU form or layout moves values by 1e-3 or more).
/// </summary>
public class VisionTransformerTests(ITestOutputHelper output)
{
    private const float StageTolerance = 1e-4f;
    private const float FeatureTolerance = 1e-4f;
    private const double MinimumCosine = 0.99999;

    // Batched, padded or concurrent runs do the same arithmetic per row in the same order: the GEMM cuts k into the
    // same 256-step blocks whatever the row count or task split, and attention, softmax and LayerNorm work row by
    // row. So they give the same bits.
    private const float SameComputationTolerance = 0f;

    // Two float32 computations of the same features in different summation orders, about 10 roundings deep: measured
    // 7.2e-7 on features of magnitude ≤ 2 (a few ulps); 1e-5 leaves an order of magnitude and is still 100 times
    // smaller than the difference a wrong eps or GELU form makes.
    private const float ReferenceKernelTolerance = 1e-5f;

    private static TinyModel Model => TinyModel.Instance;

    public static IEnumerable<object[]> Images => TinyModel.ImageNameData;

    [Theory]
    [MemberData(nameof(Images))]
    public void ImageMatchesReferenceStageByStage(string image)
    {
        // Steps by module name: the tower's own step after the position embedding, block 0, trunk.norm.
        var vision = Model.Vision;
        var trace = new ForwardTrace(VisionTransformer.EmbeddingsStep, vision.Blocks[0].Name, vision.Norm.Name);
        var features = new float[TinyModel.EmbedDim];
        Model.Vision.Forward(Model.Pixels(image), 1, features, trace);

        string prefix = $"image.{image}.";
        TensorAssert.Close(prefix + "vision_embed", Model.Reference(prefix + "vision_embed"), trace[VisionTransformer.EmbeddingsStep], StageTolerance, output);
        TensorAssert.Close(prefix + "vision_block0", Model.Reference(prefix + "vision_block0"), trace[vision.Blocks[0].Name], StageTolerance, output);
        // Only the class token is carried through the final LayerNorm: row 0 of vision_trunk_norm.
        TensorAssert.Close(prefix + "vision_pooled", Model.Reference(prefix + "vision_pooled"), trace[vision.Norm.Name], StageTolerance, output);
        var expected = Model.Reference(prefix + "features");
        TensorAssert.Close(prefix + "features", expected, features, FeatureTolerance, output);
        TensorAssert.Cosine(prefix + "features", expected, features, MinimumCosine);
    }

    [Fact]
    public void ReferenceKernelsGiveTheSameFeaturesUpToRounding()
    {
        // The whole tower once more on the plain-loop reference kernels: the same sums in another order, so the two
        // may differ by float32 rounding only, and both must match PyTorch.
        var fast = Model.ImageFeatures(TinyModel.ImageNames);
        float[] reference;
        using (KernelPaths.Use(KernelPath.Reference)) reference = Model.ImageFeatures(TinyModel.ImageNames);
        TensorAssert.Close("reference kernels vs fast kernels", reference, fast, ReferenceKernelTolerance, output);
        for (int i = 0; i < TinyModel.ImageNames.Length; i++)
        {
            string name = $"image.{TinyModel.ImageNames[i]}.features";
            TensorAssert.Close(name + " (reference kernels)", Model.Reference(name), reference.AsSpan(i * TinyModel.EmbedDim, TinyModel.EmbedDim),
                FeatureTolerance, output);
        }
    }

    [Fact]
    public void BatchOfAllImagesEqualsOneAtATime()
    {
        var batched = Model.ImageFeatures(TinyModel.ImageNames);
        for (int i = 0; i < TinyModel.ImageNames.Length; i++)
        {
            var single = Model.ImageFeatures([TinyModel.ImageNames[i]]);
            TensorAssert.Close($"batch row {i} ({TinyModel.ImageNames[i]})", single,
                batched.AsSpan(i * TinyModel.EmbedDim, TinyModel.EmbedDim), SameComputationTolerance, output);
        }
    }

    [Fact]
    public void ConcurrentForwardCallsGiveTheSameFeatures()
    {
        string[] images = ["ihc", "cell", "rgba", "large"];
        var sequential = images.Select(i => Model.ImageFeatures([i])).ToArray();
        var concurrent = new float[images.Length][];
        Parallel.For(0, images.Length * 3, new ParallelOptions { MaxDegreeOfParallelism = 4 },
            k => concurrent[k % images.Length] = Model.ImageFeatures([images[k % images.Length]]));
        for (int i = 0; i < images.Length; i++)
            TensorAssert.Close($"concurrent {images[i]}", sequential[i], concurrent[i], SameComputationTolerance);
    }

    [Fact]
    public void WrongInputSizesAreRejected()
    {
        var pixels = Model.Pixels("ihc");
        var features = new float[TinyModel.EmbedDim];
        var ex = Assert.Throws<ArgumentException>(() => Model.Vision.Forward(pixels.AsSpan(1), 1, features));
        Assert.Contains("pixels", ex.Message);
        Assert.Throws<ArgumentException>(() => Model.Vision.Forward(pixels, 2, new float[2 * TinyModel.EmbedDim]));
        Assert.Throws<ArgumentException>(() => Model.Vision.Forward(pixels, 1, new float[TinyModel.EmbedDim + 1]));
        Assert.Throws<ArgumentOutOfRangeException>(() => Model.Vision.Forward([], 0, []));
    }

    [Fact]
    public void ATowerBuiltFromTheLayoutAloneNamesItsModulesAndRefusesToRun()
    {
        // The same Load code against a CheckpointLayout: names and shapes, no weights (what the ONNX export walks).
        var layout = new CheckpointLayout();
        var tower = VisionTransformer.Load(layout, TinyModel.VisionConfig, TinyModel.EmbedDim);
        Assert.Equal("visual.trunk.blocks.1.mlp.fc2", tower.Blocks[1].Mlp.Fc2.Name);
        Assert.Equal(["visual.trunk.cls_token", "visual.trunk.pos_embed", "visual.trunk.patch_embed.proj.weight"],
            layout.Requests.Take(3).Select(r => r.Name));
        var error = Assert.Throws<InvalidOperationException>(() =>
            tower.Forward(new float[3 * 224 * 224], 1, new float[TinyModel.EmbedDim]));
        Assert.Contains("no values", error.Message);
    }

    [Fact]
    public void ConfigThatDisagreesWithTheCheckpointNamesTheTensor()
    {
        using var weights = SafeTensorsFile.Open(Path.Combine(TestData.Tiny, "model.safetensors"));
        var wider = TinyModel.VisionConfig with { Width = 128 };
        var ex = Assert.Throws<InvalidDataException>(() => VisionTransformer.Load(weights, wider, TinyModel.EmbedDim));
        Assert.Contains("visual.trunk.cls_token", ex.Message); // the first tensor of the tower, in state-dict order
        var deeper = TinyModel.VisionConfig with { Depth = 3 };
        ex = Assert.Throws<InvalidDataException>(() => VisionTransformer.Load(weights, deeper, TinyModel.EmbedDim));
        Assert.Contains("visual.trunk.blocks.2.norm1.weight", ex.Message);
    }
}
