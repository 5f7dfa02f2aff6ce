using System.Security.Cryptography;
using ManagedClip.IO;
using ManagedClip.IO.Distribution;
using ManagedClip.IO.Formats;

namespace ManagedClip.Tests.EndToEnd;

/// <summary>
/// Runs only when MANAGEDCLIP_REAL_MODEL names the real 784 MB BiomedCLIP checkpoint (the .bin file, or a model
/// folder holding it), which cannot be downloaded on the build machines. Otherwise every test here is reported as
/// skipped with that reason.
/// </summary>
public sealed class RealCheckpointFactAttribute : FactAttribute
{
    public const string Variable = "MANAGEDCLIP_REAL_MODEL";

    public RealCheckpointFactAttribute()
    {
        if (RealCheckpoint.WeightsPath is null)
            Skip = $"{Variable} is not set: point it at open_clip_pytorch_model.bin (or its folder) from `managedclip download` to run the real-checkpoint parity tests";
    }
}

internal static class RealCheckpoint
{
    public static string? WeightsPath
    {
        get
        {
            var value = Environment.GetEnvironmentVariable(RealCheckpointFactAttribute.Variable);
            if (string.IsNullOrEmpty(value)) return null;
            return Directory.Exists(value) ? Path.Combine(value, ModelDirectory.TorchWeightsFileName) : value;
        }
    }

    /// <summary>The real weights with the reference copies of the real config and vocabulary.</summary>
    public static ClipModel Load() => ClipModel.Load(TestData.Reference, WeightsPath);
}

public sealed class RealCheckpointTests
{
    [RealCheckpointFact]
    public void FileIsAKnownReleaseOfTheCheckpoint()
    {
        using var stream = File.OpenRead(RealCheckpoint.WeightsPath!);
        var hash = Convert.ToHexStringLower(SHA256.HashData(stream));
        const string Release2023 = "8792dba76fc3a96544a87bb0f76c82167b4ba509d57c08b98b9c9266f764598b";
        var manifest = ModelManifest.Default.Files.Single(f => f.Name == ModelDirectory.TorchWeightsFileName).Sha256;
        Assert.True(hash == manifest || hash == Release2023, $"unknown checkpoint, SHA-256 {hash}");
    }

    [RealCheckpointFact]
    public void ReadsIdenticallyAsTorchZipAndAsConvertedSafetensors()
    {
        using var folder = new IO.TempFolder();
        var converted = folder.File("model.safetensors");
        int count = CheckpointConverter.Convert(RealCheckpoint.WeightsPath!, converted);
        Assert.Equal(352, count);
        using var torch = TensorFiles.OpenWeights(RealCheckpoint.WeightsPath!);
        using var safetensors = SafeTensorsFile.Open(converted);
        ClipStateDict.Validate(torch, ManagedClip.Model.ClipConfig.BiomedClip);
        foreach (var name in torch.Names)
        {
            if (torch.Info(name).DType == TensorDType.I64) Assert.Equal(torch.GetInt64(name), safetensors.GetInt64(name));
            else Assert.True(torch.GetFloat32(name).SequenceEqual(safetensors.GetFloat32(name)), name);
        }
    }

    /// <summary>
    /// The model card's own example: nine images, nine labels, "this is a photo of {label}". The model card states
    /// each image's own label wins with the real weights; that is the only published output we can check offline.
    /// </summary>
    [RealCheckpointFact]
    public void ModelCardExampleRanksEachImagesOwnLabelFirst()
    {
        string[] labels = ["adenocarcinoma histopathology", "brain MRI", "covid line chart", "squamous cell carcinoma histopathology",
            "immunohistochemistry histopathology", "bone X-ray", "chest X-ray", "pie chart", "hematoxylin and eosin histopathology"];
        var images = new Dictionary<string, string>
        {
            ["squamous_cell_carcinoma_histopathology.jpeg"] = "squamous cell carcinoma histopathology",
            ["H_and_E_histopathology.jpg"] = "hematoxylin and eosin histopathology",
            ["bone_X-ray.jpg"] = "bone X-ray",
            ["adenocarcinoma_histopathology.jpg"] = "adenocarcinoma histopathology",
            ["covid_line_chart.png"] = "covid line chart",
            ["IHC_histopathology.jpg"] = "immunohistochemistry histopathology",
            ["chest_X-ray.jpg"] = "chest X-ray",
            ["brain_MRI.jpg"] = "brain MRI",
            ["pie_chart.png"] = "pie chart",
        };
        using var model = RealCheckpoint.Load();
        var inputs = images.Keys.Select(f => ImageInput.FromFile(Path.Combine(TestData.ModelCard, "images", f))).ToList();
        var results = model.Classify(inputs, labels);
        int i = 0;
        foreach (var (file, own) in images)
        {
            var probs = results[i++].Probabilities;
            Assert.True(labels[Array.IndexOf(probs, probs.Max())] == own,
                $"{file}: top label '{labels[Array.IndexOf(probs, probs.Max())]}' ({probs.Max():F3}), expected '{own}' ({probs[Array.IndexOf(labels, own)]:F3})");
        }
    }
}
