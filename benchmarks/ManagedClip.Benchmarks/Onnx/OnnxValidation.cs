namespace ManagedClip.Benchmarks.Onnx;

/// <summary>
/// Checks the exporter end to end: exports a reference checkpoint, runs it in ONNX Runtime (all optimisations on,
/// as benchmarked) and compares the features with the PyTorch reference outputs, per input.
/// </summary>
internal static class OnnxValidation
{
    // The reference README's feature tolerance for another float32 implementation; a faithful graph lands near
    // the float32-vs-float64 distance (~1e-6), so anything above this is a wrong graph, not rounding.
    public const float Tolerance = 1e-4f;

    /// <summary>
    /// Validates the tiny model, and the full-size synthetic model too when <paramref name="fullWeightsPath"/> is
    /// given. Prints one line per input; returns the largest difference seen.
    /// </summary>
    public static float Run(string sharedDirectory, string? fullWeightsPath, TextWriter log)
    {
        string reference = Path.Combine(sharedDirectory, "reference");
        var preprocess = new ReferenceFile(Path.Combine(reference, "preprocess.safetensors"));
        var tinyOutputs = new ReferenceFile(Path.Combine(reference, "tiny", "outputs.safetensors"));
        float worst = Validate("tiny", Path.Combine(reference, "tiny", "model.safetensors"), tinyOutputs,
            image => preprocess.Float32($"{image}.pixel_values"), log);
        if (fullWeightsPath is not null)
        {
            var fullOutputs = new ReferenceFile(Path.Combine(reference, "full", "outputs.safetensors"));
            worst = Math.Max(worst, Validate("full", fullWeightsPath, fullOutputs,
                image => fullOutputs.Float32($"image.{image}.pixel_values"), log));
        }
        return worst;
    }

    private static float Validate(string model, string weightsPath, ReferenceFile outputs,
        Func<string, float[]> pixelValues, TextWriter log)
    {
        var exportDirectory = Directory.CreateTempSubdirectory($"managedclip-onnx-{model}-");
        try
        {
            OnnxExport.Export(weightsPath, exportDirectory.FullName);
            using var towers = new OrtTowers(exportDirectory.FullName);
            return Math.Max(CheckImages(model, towers, outputs, pixelValues, log), CheckTexts(model, towers, outputs, log));
        }
        finally
        {
            exportDirectory.Delete(recursive: true);
        }
    }

    private static float CheckImages(string model, OrtTowers towers, ReferenceFile outputs,
        Func<string, float[]> pixelValues, TextWriter log)
    {
        var names = NamesBetween(outputs, "image.", ".features");
        var pixels = names.Select(pixelValues).ToArray();          // each [3, S, S]
        var expected = names.Select(n => outputs.Float32($"image.{n}.features")).ToArray(); // each [E]
        float worst = 0;
        for (int i = 0; i < names.Length; i++)
        {
            float diff = MaxAbsDiff(towers.EmbedImages(pixels[i], 1), expected[i]);
            log.WriteLine($"{model,-5} image {names[i],-22} batch 1        maxdiff {diff:E2}");
            worst = Math.Max(worst, diff);
        }
        float batched = MaxAbsDiff(towers.EmbedImages(pixels.SelectMany(p => p).ToArray(), names.Length),
            expected.SelectMany(e => e).ToArray());
        log.WriteLine($"{model,-5} all {names.Length} images in one batch               maxdiff {batched:E2}");
        return Math.Max(worst, batched);
    }

    private static float CheckTexts(string model, OrtTowers towers, ReferenceFile outputs, TextWriter log)
    {
        var keys = NamesBetween(outputs, "text.", ".input_ids");
        float worst = 0;
        var paddedIds = new List<long>();
        var expectedAll = new List<float>();
        int paddedLength = 0;
        foreach (var key in keys)
        {
            long[] ids = outputs.Int64($"text.{key}.input_ids"); // [256], [PAD]=0 after [SEP]
            float[] expected = outputs.Float32($"text.{key}.features");
            // Unpadded: up to the last real token; a [PAD] written inside the text stays, and stays masked.
            int length = Array.FindLastIndex(ids, id => id != 0) + 1;
            float padded = MaxAbsDiff(towers.EmbedTexts(ids, MaskOf(ids), 1, ids.Length), expected);
            float unpadded = MaxAbsDiff(towers.EmbedTexts(ids[..length], MaskOf(ids[..length]), 1, length), expected);
            log.WriteLine($"{model,-5} text {key} padded {ids.Length,3}    maxdiff {padded:E2}   unpadded {length,3}  maxdiff {unpadded:E2}");
            worst = Math.Max(worst, Math.Max(padded, unpadded));
            paddedIds.AddRange(ids);
            expectedAll.AddRange(expected);
            paddedLength = ids.Length;
        }
        var allIds = paddedIds.ToArray();
        float batched = MaxAbsDiff(towers.EmbedTexts(allIds, MaskOf(allIds), keys.Length, paddedLength), expectedAll.ToArray());
        log.WriteLine($"{model,-5} all {keys.Length} texts in one batch, padded {paddedLength}     maxdiff {batched:E2}");
        return Math.Max(worst, batched);
    }

    // open_clip's HFTextEncoder masks exactly the [PAD] ids (id 0), wherever they are.
    private static long[] MaskOf(long[] ids) => ids.Select(id => id != 0 ? 1L : 0L).ToArray();

    // "image.ihc.features" → "ihc", in sorted order.
    private static string[] NamesBetween(ReferenceFile file, string prefix, string suffix) =>
        file.Names.Where(n => n.StartsWith(prefix, StringComparison.Ordinal) && n.EndsWith(suffix, StringComparison.Ordinal))
            .Select(n => n[prefix.Length..^suffix.Length]).Order(StringComparer.Ordinal).ToArray();

    private static float MaxAbsDiff(float[] actual, float[] expected)
    {
        if (actual.Length != expected.Length)
            throw new InvalidDataException($"ONNX Runtime returned {actual.Length} values, the reference has {expected.Length}.");
        float worst = 0;
        for (int i = 0; i < actual.Length; i++)
        {
            float diff = MathF.Abs(actual[i] - expected[i]);
            if (float.IsNaN(diff)) return float.PositiveInfinity;
            worst = Math.Max(worst, diff);
        }
        return worst;
    }
}
