using System.Reflection.Metadata;
using System.Reflection.PortableExecutable;

namespace ManagedClip.Benchmarks.RealWeights;

/// <summary>
/// Reads a .NET assembly's embedded (manifest) resources from the file, without loading the assembly: the packages
/// that ship a model inside a DLL are read as data, and none of their code runs.
/// </summary>
/// <remarks>
/// ECMA-335 §II.24.2.6 and §II.6.2.2: the CLI header's <c>Resources</c> directory holds the embedded resources one
/// after another, each a 4-byte little-endian length and the bytes; a <c>ManifestResource</c> row gives a resource's
/// name and its offset in that directory.
/// </remarks>
internal static class ManagedResources
{
    /// <summary>The bytes of the resource named <paramref name="name"/> in the assembly at <paramref name="path"/>.</summary>
    public static byte[] Read(string path, string name)
    {
        using var file = File.OpenRead(path);
        using var pe = new PEReader(file);
        if (!pe.HasMetadata || pe.PEHeaders.CorHeader is not { } cor)
            throw new InvalidDataException($"'{path}' is not a .NET assembly");
        var metadata = pe.GetMetadataReader();
        foreach (var handle in metadata.ManifestResources)
        {
            var resource = metadata.GetManifestResource(handle);
            if (!metadata.StringComparer.Equals(resource.Name, name)) continue;
            if (!resource.Implementation.IsNil)
                throw new InvalidDataException($"'{path}': resource '{name}' lives in another file");
            var directory = pe.GetSectionData(cor.ResourcesDirectory.RelativeVirtualAddress).GetReader(0, cor.ResourcesDirectory.Size);
            directory.Offset = checked((int)resource.Offset);
            int length = directory.ReadInt32();
            if (length < 0 || length > directory.RemainingBytes)
                throw new InvalidDataException($"'{path}': resource '{name}' claims {length} bytes, past the resources directory");
            return directory.ReadBytes(length);
        }
        throw new InvalidDataException($"'{path}' has no embedded resource '{name}'");
    }
}
