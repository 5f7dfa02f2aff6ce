using ManagedClip.IO.Formats;

namespace ManagedClip.Benchmarks.Onnx;

/// <summary>
/// The building blocks both towers share, written as the ONNX ops the PyTorch exporter emits for them, so that
/// ONNX Runtime's graph optimiser sees the patterns it fuses in an upstream export (LayerNormalization,
/// Erf-GELU, MatMul + bias Add, scaled MatMul → Softmax → MatMul attention).
/// </summary>
internal static class OnnxLayers
{
    /// <summary>Shape of a checkpoint tensor; a missing tensor is reported with the file and the key.</summary>
    public static long[] ShapeOf(TensorStore store, string key)
    {
        if (!store.Contains(key)) throw new InvalidDataException($"{store.SourcePath}: tensor '{key}' is missing.");
        return store.Info(key).Shape;
    }

    /// <summary>Number of numbered sub-modules <c>{prefix}.0.{probe}</c>, <c>{prefix}.1.{probe}</c>, … present.</summary>
    public static int CountLayers(TensorStore store, string prefix, string probe)
    {
        int count = 0;
        while (store.Contains($"{prefix}.{count}.{probe}")) count++;
        if (count == 0) throw new InvalidDataException($"{store.SourcePath}: no tensor '{prefix}.0.{probe}' (no layers found).");
        return count;
    }

    /// <summary>
    /// torch <c>nn.Linear</c> on [..., in]: <c>MatMul(x, Wᵀ)</c> (+ <c>bias</c>). The checkpoint weight is [out, in];
    /// like the torch exporter, the transposed copy [in, out] is stored so MatMul needs no Transpose at run time.
    /// </summary>
    public static string Linear(this OnnxGraph graph, TensorStore store, string x, string module, bool hasBias)
    {
        string weightKey = module + ".weight";
        var shape = ShapeOf(store, weightKey);
        if (shape.Length != 2)
            throw new InvalidDataException($"{store.SourcePath}: '{weightKey}' has shape [{string.Join(", ", shape)}], expected [out, in].");
        int outFeatures = checked((int)shape[0]), inFeatures = checked((int)shape[1]);
        var weight = store.GetFloat32(weightKey, outFeatures, inFeatures); // [out, in]
        var transposed = new float[weight.Length];                           // [in, out]
        for (int o = 0; o < outFeatures; o++)
            for (int i = 0; i < inFeatures; i++)
                transposed[i * outFeatures + o] = weight[o * inFeatures + i];
        string product = graph.Op("MatMul", x, graph.Weight(weightKey + ".T", [inFeatures, outFeatures], transposed));
        if (!hasBias) return product;
        string biasKey = module + ".bias";
        var bias = store.GetFloat32(biasKey, outFeatures); // [out]
        return graph.Op("Add", product, graph.Weight(biasKey, [outFeatures], bias));
    }

    /// <summary>LayerNormalization over the last axis with the module's weight and bias.</summary>
    public static string LayerNorm(this OnnxGraph graph, TensorStore store, string x, string module, float epsilon)
    {
        string weightKey = module + ".weight", biasKey = module + ".bias";
        long width = ShapeOf(store, weightKey)[0];
        string scale = graph.Weight(weightKey, [width], store.GetFloat32(weightKey, width));
        string bias = graph.Weight(biasKey, [width], store.GetFloat32(biasKey, width));
        return graph.Op("LayerNormalization", [x, scale, bias],
            [OnnxWriter.IntAttribute("axis", -1), OnnxWriter.FloatAttribute("epsilon", epsilon)]);
    }

    /// <summary>Exact (erf) GELU as torch exports <c>nn.GELU()</c>: <c>x · 0.5 · (1 + erf(x / √2))</c>.</summary>
    public static string Gelu(this OnnxGraph graph, string x)
    {
        string erf = graph.Op("Erf", graph.Op("Div", x, graph.Scalar("sqrt2", MathF.Sqrt(2f))));
        string onePlusErf = graph.Op("Add", erf, graph.Scalar("one", 1f));
        return graph.Op("Mul", graph.Op("Mul", x, onePlusErf), graph.Scalar("half", 0.5f));
    }

    /// <summary>Transpose with a permutation.</summary>
    public static string Transpose(this OnnxGraph graph, string x, params long[] perm) =>
        graph.Op("Transpose", [x], [OnnxWriter.IntsAttribute("perm", perm)]);

    /// <summary>Reshape to a constant target (0 copies the input's dimension, -1 is inferred).</summary>
    public static string Reshape(this OnnxGraph graph, string x, params long[] shape) =>
        graph.Op("Reshape", x, graph.Int64s("shape", shape));

    /// <summary>Row <paramref name="index"/> along <paramref name="axis"/>, dropping that axis (torch <c>x[:, 0]</c>).</summary>
    public static string Take(this OnnxGraph graph, string x, int axis, long index) =>
        graph.Op("Gather", [x, graph.Int64Scalar("index", index)], [OnnxWriter.IntAttribute("axis", axis)]);

    /// <summary>Softmax over the last axis.</summary>
    public static string Softmax(this OnnxGraph graph, string x) =>
        graph.Op("Softmax", [x], [OnnxWriter.IntAttribute("axis", -1)]);
}
