namespace ManagedClip.ColdStart;

/// <summary>The one zero-shot classification both engines perform: the model card's template and five of its labels.</summary>
internal static class ZeroShotTask
{
    public const string Template = "this is a photo of {}";

    public static readonly string[] Labels =
    [
        "adenocarcinoma histopathology", "brain MRI", "covid line chart", "squamous cell carcinoma histopathology",
        "immunohistochemistry histopathology",
    ];

    public static string[] Prompts() => Labels.Select(label => Template.Replace("{}", label)).ToArray();
}
