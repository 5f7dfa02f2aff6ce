using System.Text.Json;

namespace ManagedClip.IO.Formats;

/// <summary>
/// Reads and validates the header of a safetensors file
/// (https://github.com/huggingface/safetensors, "Format"): 8-byte little-endian header length N, N bytes of UTF-8
/// JSON that begin with <c>{</c> (trailing spaces allowed), then the data section. Everything is checked before use:
/// the header length against a cap and the file, the JSON shape, dtypes, shapes, byte counts against dtype × shape
/// (overflow-checked), and the ranges against each other. The format requires the data section to be "entirely
/// indexed" with no holes, so overlaps, gaps and bytes after the last tensor are all refused.
/// </summary>
internal static class SafeTensorsHeader
{
    /// <summary>Largest header accepted; the reference (Rust) implementation uses the same limit.</summary>
    public const long MaxHeaderBytes = 100_000_000;

    /// <summary>The key reserved for free-form string-to-string metadata.</summary>
    public const string MetadataKey = "__metadata__";

    /// <summary>Validated tensors (file offsets absolute, in header order) and the metadata map.</summary>
    public static (List<MappedTensor> Tensors, Dictionary<string, string> Metadata) Read(MappedFile file) =>
        JsonErrors.Guard(() => ReadUnguarded(file), $"{UserText.Quote(file.Path)}: the safetensors header");

    private static (List<MappedTensor> Tensors, Dictionary<string, string> Metadata) ReadUnguarded(MappedFile file)
    {
        var path = UserText.Quote(file.Path);
        if (file.Length < 8)
            throw new InvalidDataException($"{path}: {file.Length} bytes is too short for a safetensors file (the 8-byte header length is missing).");
        ulong headerLength = file.UInt64(0);
        if (headerLength > MaxHeaderBytes)
            throw new InvalidDataException($"{path}: safetensors header length {headerLength} exceeds the {MaxHeaderBytes}-byte limit.");
        if ((long)headerLength > file.Length - 8)
            throw new InvalidDataException($"{path}: safetensors header length {headerLength} is larger than the rest of the {file.Length}-byte file.");
        long dataStart = 8 + (long)headerLength;
        long dataLength = file.Length - dataStart;

        var headerBytes = file.Bytes(8, (long)headerLength);
        if (headerBytes.IsEmpty || headerBytes[0] != (byte)'{')
            throw new InvalidDataException($"{path}: the safetensors header must begin with '{{'.");
        // The reference reader decodes the header as UTF-8 before parsing it; so no name can fail to decode later.
        if (!System.Text.Unicode.Utf8.IsValid(headerBytes))
            throw new InvalidDataException($"{path}: the safetensors header is not valid UTF-8 text.");

        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(headerBytes.ToArray(), new JsonDocumentOptions { MaxDepth = 16 });
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: the safetensors header is not valid JSON ({JsonErrors.Describe(e)}).", e);
        }

        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw new InvalidDataException($"{path}: the safetensors header must be a JSON object.");
            var tensors = new List<MappedTensor>();
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var property in root.EnumerateObject())
            {
                var name = JsonErrors.Name(property, $"{path}: the safetensors header");
                if (!seen.Add(name))
                    throw new InvalidDataException($"{path}: the safetensors header lists '{UserText.Quote(name)}' twice.");
                if (name == MetadataKey)
                    ReadMetadata(path, property.Value, metadata);
                else
                    tensors.Add(ReadTensor(path, name, property.Value, dataStart, dataLength));
            }
            CheckCoverage(path, tensors, dataStart, dataLength);
            return (tensors, metadata);
        }
    }

    private static void ReadMetadata(string path, JsonElement value, Dictionary<string, string> metadata)
    {
        if (value.ValueKind != JsonValueKind.Object)
            throw new InvalidDataException($"{path}: '{MetadataKey}' must be an object of strings.");
        foreach (var entry in value.EnumerateObject())
        {
            var key = JsonErrors.Name(entry, $"{path}: '{MetadataKey}'");
            if (entry.Value.ValueKind != JsonValueKind.String)
                throw new InvalidDataException($"{path}: '{MetadataKey}' entry '{UserText.Quote(key)}' must be a string, not {JsonKinds.Describe(entry.Value.ValueKind)}.");
            if (!metadata.TryAdd(key, JsonErrors.Text(entry.Value, $"{path}: '{MetadataKey}' entry '{UserText.Quote(key)}'")))
                throw new InvalidDataException($"{path}: '{MetadataKey}' lists '{UserText.Quote(key)}' twice.");
        }
    }

    private static MappedTensor ReadTensor(string path, string name, JsonElement value, long dataStart, long dataLength)
    {
        InvalidDataException Error(string what) => new($"{path}: tensor '{UserText.Quote(name)}': {what}.");

        if (value.ValueKind != JsonValueKind.Object)
            throw Error($"header entry must be an object, not {JsonKinds.Describe(value.ValueKind)}");
        JsonElement? dtypeElement = null, shapeElement = null, offsetsElement = null;
        foreach (var field in value.EnumerateObject())
        {
            switch (JsonErrors.Name(field, $"{path}: tensor '{UserText.Quote(name)}'"))
            {
                case "dtype" when dtypeElement is null: dtypeElement = field.Value; break;
                case "shape" when shapeElement is null: shapeElement = field.Value; break;
                case "data_offsets" when offsetsElement is null: offsetsElement = field.Value; break;
                case "dtype" or "shape" or "data_offsets": throw Error($"field '{field.Name}' appears twice");
                default: throw Error($"unexpected field '{UserText.Quote(field.Name)}' (allowed: dtype, shape, data_offsets)");
            }
        }
        if (dtypeElement is not { ValueKind: JsonValueKind.String } dtypeValue) throw Error("'dtype' must be a string");
        if (shapeElement is null) throw Error("'shape' is missing");
        if (offsetsElement is null) throw Error("'data_offsets' is missing");

        var dtype = TensorDTypes.ParseSafeTensorsName(JsonErrors.Text(dtypeValue, $"{path}: tensor '{UserText.Quote(name)}' dtype"), Error);
        var shape = ReadNonNegativeIntegers(shapeElement.Value, "shape", Error);
        var offsets = ReadNonNegativeIntegers(offsetsElement.Value, "data_offsets", Error);
        if (offsets.Length != 2) throw Error($"'data_offsets' must hold two numbers [begin, end], not {offsets.Length}");
        long begin = offsets[0], end = offsets[1];
        if (begin > end) throw Error($"data_offsets [{begin}, {end}] end before they begin");
        if (end > dataLength)
            throw Error($"data_offsets [{begin}, {end}] reach past the {dataLength}-byte data section");

        long? count = TensorDTypes.CheckedElementCount(shape);
        long elementSize = TensorDTypes.ElementSize(dtype);
        if (count is null || count > long.MaxValue / elementSize)
            throw Error($"shape {TensorDTypes.ShapeText(shape)} has too many elements");
        long byteCount = count.Value * elementSize;
        if (byteCount != end - begin)
            throw Error($"{dtype} {TensorDTypes.ShapeText(shape)} needs {byteCount} bytes but data_offsets [{begin}, {end}] span {end - begin}");
        return new MappedTensor(new TensorInfo(name, dtype, shape), dataStart + begin, byteCount);
    }

    private static long[] ReadNonNegativeIntegers(JsonElement element, string field, Func<string, Exception> error)
    {
        if (element.ValueKind != JsonValueKind.Array) throw error($"'{field}' must be an array of integers");
        var values = new long[element.GetArrayLength()];
        int i = 0;
        foreach (var item in element.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.Number || !item.TryGetInt64(out var value) || value < 0)
                throw error($"'{field}' must hold non-negative integers, found {UserText.Quote(item.GetRawText(), 40)}");
            values[i++] = value;
        }
        return values;
    }

    /// <summary>Sorted by position, each tensor must start where the previous one ended, and the last must end the file.</summary>
    private static void CheckCoverage(string path, List<MappedTensor> tensors, long dataStart, long dataLength)
    {
        var ordered = tensors.OrderBy(t => t.Offset).ThenBy(t => t.ByteCount).ToList();
        long expected = dataStart;
        string previous = "the start of the data section";
        foreach (var tensor in ordered)
        {
            if (tensor.Offset < expected)
                throw new InvalidDataException(
                    $"{path}: tensor '{UserText.Quote(tensor.Info.Name)}' overlaps {previous} (bytes {tensor.Offset - dataStart}..{expected - dataStart} are claimed twice).");
            if (tensor.Offset > expected)
                throw new InvalidDataException(
                    $"{path}: {tensor.Offset - expected} unindexed bytes between {previous} and tensor '{UserText.Quote(tensor.Info.Name)}' (safetensors forbids holes in the data section).");
            expected = tensor.Offset + tensor.ByteCount;
            previous = $"tensor '{UserText.Quote(tensor.Info.Name)}'";
        }
        long trailing = dataStart + dataLength - expected;
        if (trailing > 0)
            throw new InvalidDataException(
                $"{path}: {trailing} bytes after {previous} belong to no tensor (safetensors forbids unindexed data).");
    }
}
