using ManagedClip.IO.Formats;

namespace ManagedClip.Cli;

/// <summary>
/// <c>embed --out FILE.safetensors</c>: one tensor <c>embeddings</c> [N, E] (L2-normalised rows, input order) and
/// metadata <c>format</c>, <c>kind</c> (image|text), <c>model</c> and <c>inputs</c> (a JSON array of the inputs).
/// </summary>
internal static class EmbeddingFile
{
    public const string Format = "managedclip-embeddings/1";

    public static void Write(string path, string kind, IReadOnlyList<string> inputs, float[][] embeddings, int width, string model)
    {
        var rows = new float[embeddings.Length * width]; // [N, E]
        for (int i = 0; i < embeddings.Length; i++) embeddings[i].CopyTo(rows, i * width);
        var metadata = new Dictionary<string, string>
        {
            ["format"] = Format,
            ["kind"] = kind,
            ["model"] = model,
            ["inputs"] = CliJson.StringArray(inputs),
        };
        SafeTensorsWriter.Write(path, [SafeTensorsWriter.Float32("embeddings", [embeddings.Length, width], rows)], metadata, overwrite: true);
    }
}
