namespace ManagedClip.Benchmarks;

/// <summary>The full-size synthetic model the side-by-side benchmarks and the profile run on.</summary>
internal static class SyntheticModelFolder
{
    /// <summary>Names the folder; unset, <see cref="DefaultFolder"/> is used if it exists.</summary>
    public const string EnvironmentVariable = "MANAGEDCLIP_SYNTH_DIR";

    /// <summary>Where the test suite's full-size synthetic model is generated.</summary>
    public const string DefaultFolder = "/tmp/managedclip-test-synthetic-full-v1";

    /// <summary>The folder's <c>model.safetensors</c>; a clear error says how to make one when there is none.</summary>
    public static string WeightsPath
    {
        get
        {
            string? folder = Environment.GetEnvironmentVariable(EnvironmentVariable);
            if (string.IsNullOrEmpty(folder)) folder = Directory.Exists(DefaultFolder) ? DefaultFolder : null;
            string? weights = folder is null ? null : Path.Combine(folder, "model.safetensors");
            if (weights is null || !File.Exists(weights))
                throw new FileNotFoundException(
                    (weights is null ? $"{EnvironmentVariable} is not set and {DefaultFolder} does not exist" : $"'{weights}' does not exist")
                    + $". Make a full-size synthetic model with `dotnet run -c Release --project src/ManagedClip.Cli -- synth --out DIR"
                    + $" --vocab path/to/vocab.txt` and set {EnvironmentVariable}=DIR.", weights);
            return weights;
        }
    }
}
