using System.Text.Json;

namespace ManagedClip.Cli;

/// <summary>The JSON shape of one classified image: <c>{"image": PATH, "labels": [...], "probs": [...]}</c>.</summary>
internal static class ClassifyOutput
{
    public static void WriteOne(Utf8JsonWriter writer, string image, ZeroShotResult result)
    {
        writer.WriteStartObject();
        writer.WriteString("image", image);
        writer.WriteStartArray("labels");
        foreach (var label in result.Labels) writer.WriteStringValue(label);
        writer.WriteEndArray();
        writer.WriteStartArray("probs");
        foreach (var p in result.Probabilities) writer.WriteNumberValue(p);
        writer.WriteEndArray();
        writer.WriteEndObject();
    }
}
