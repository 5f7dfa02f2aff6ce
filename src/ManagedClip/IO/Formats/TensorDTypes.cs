namespace ManagedClip.IO.Formats;

/// <summary>Facts about <see cref="TensorDType"/> values: element sizes and their safetensors spellings.</summary>
internal static class TensorDTypes
{
    /// <summary>Bytes per element.</summary>
    public static int ElementSize(TensorDType dtype) => dtype switch
    {
        TensorDType.F64 or TensorDType.I64 => 8,
        TensorDType.F32 or TensorDType.I32 => 4,
        TensorDType.F16 or TensorDType.BF16 or TensorDType.I16 => 2,
        TensorDType.I8 or TensorDType.U8 or TensorDType.Bool => 1,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "unknown tensor dtype"),
    };

    /// <summary>True for the floating-point types <see cref="TensorStore.GetFloat32(string)"/> accepts.</summary>
    public static bool IsFloat(TensorDType dtype) =>
        dtype is TensorDType.F32 or TensorDType.F16 or TensorDType.BF16 or TensorDType.F64;

    /// <summary>The dtype's name in a safetensors header (<c>F32</c>, <c>BOOL</c>, …).</summary>
    public static string SafeTensorsName(TensorDType dtype) => dtype == TensorDType.Bool ? "BOOL" : dtype.ToString();

    /// <summary>Dtypes that the safetensors format defines but this library does not read.</summary>
    private static readonly HashSet<string> KnownButUnsupported =
        ["U16", "U32", "U64", "F8_E5M2", "F8_E4M3", "F8_E8M0", "F6_E2M3", "F6_E3M2", "F4", "C64"];

    /// <summary>Parses a safetensors dtype name; the error says whether the name is unknown or merely unsupported.</summary>
    public static TensorDType ParseSafeTensorsName(string? name, Func<string, Exception> error)
    {
        foreach (var dtype in Enum.GetValues<TensorDType>())
            if (SafeTensorsName(dtype) == name) return dtype;
        if (name is not null && KnownButUnsupported.Contains(name))
            throw error($"dtype '{name}' is not supported (supported: F32, F16, BF16, F64, I64, I32, I16, I8, U8, BOOL)");
        throw error($"unknown dtype '{UserText.Quote(name ?? "", 40)}'");
    }

    /// <summary>
    /// Number of elements of a shape, or null if a dimension is negative or the product overflows a long
    /// (shapes come from untrusted files).
    /// </summary>
    public static long? CheckedElementCount(IReadOnlyList<long> shape)
    {
        long count = 1;
        foreach (var dim in shape)
        {
            if (dim < 0) return null;
            if (dim != 0 && count > long.MaxValue / dim) return null;
            count *= dim;
        }
        return count;
    }

    /// <summary>Shape as text, e.g. <c>[2304, 768]</c>.</summary>
    public static string ShapeText(IReadOnlyList<long> shape) => "[" + string.Join(", ", shape) + "]";
}
