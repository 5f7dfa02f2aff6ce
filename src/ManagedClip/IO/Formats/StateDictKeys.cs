namespace ManagedClip.IO.Formats;

/// <summary>
/// open_clip's <c>load_state_dict</c> key fix-up, applied by both weight readers: a model trained under
/// <c>torch.nn.DataParallel</c> saves every key as <c>module.&lt;name&gt;</c>, so when the first key starts with
/// "module", the first 7 characters of every key are dropped (as open_clip does, whatever each key starts with).
/// </summary>
internal static class StateDictKeys
{
    private const string DataParallelPrefix = "module";

    /// <param name="tensors">The tensors as read.</param>
    /// <param name="firstKey">The key Python's loader sees first: a pickle's first entry, safetensors' smallest name.</param>
    /// <param name="source">Names the file in errors.</param>
    public static List<MappedTensor> WithoutDataParallelPrefix(List<MappedTensor> tensors, string? firstKey, string source)
    {
        if (firstKey is null || !firstKey.StartsWith(DataParallelPrefix, StringComparison.Ordinal))
            return tensors;
        var renamed = new List<MappedTensor>(tensors.Count);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var tensor in tensors)
        {
            var name = tensor.Info.Name.Length > 7 ? tensor.Info.Name[7..] : "";
            if (!seen.Add(name))
                throw new InvalidDataException(
                    $"{source}: without their 'module.' prefix two tensors are both named '{UserText.Quote(name)}'.");
            renamed.Add(tensor with { Info = tensor.Info with { Name = name } });
        }
        return renamed;
    }
}
