using System.Numerics.Tensors;
using ManagedClip.IO.Formats;
using ManagedClip.Model;

namespace ManagedClip.Benchmarks.Onnx;

/// <summary>
/// The building blocks both towers share, written as the ONNX ops the PyTorch exporter emits for them, so that
/// ONNX Runtime's graph optimiser sees the patterns it fuses in an upstream export (LayerNormalization,
/// Erf-GELU, MatMul + bias Add, scaled MatMul → Softmax → MatMul attention).
/// </summary>
internal static class OnnxLayers
{
    /// <summary>
    /// torch <c>nn.Linear</c> on [..., in]: <c>MatMul(x, Wᵀ)</c> (+ <c>bias</c>), the module's name and shape as the
    /// tower declares them. The checkpoint weight is [out, in]; like the torch exporter, the transposed copy [in, out]
    /// is stored so MatMul needs no Transpose at run time.
    /// </summary>
    public static string Linear(this OnnxGraph graph, TensorStore store, string x, Linear layer) =>
        graph.Linear(store, x, layer.Name, layer.OutputCount, layer.InputCount, layer.HasBias);

    /// <summary>One part of a stacked layer (BERT's query, key or value), [out, in] with a bias, by its module name.</summary>
    public static string Linear(this OnnxGraph graph, TensorStore store, string x, string module, int outFeatures, int inFeatures,
        bool hasBias)
    {
        string weightKey = module + ".weight";
        var weight = store.GetFloat32(weightKey, outFeatures, inFeatures); // [out, in]
        if (graph.QuantizeLinears && (ReducedPrecisionLayers.Covers(module) || ReducedPrecisionLayers.Covers(module[..module.LastIndexOf('.')])))
            return graph.QuantizedLinear(store, x, module, weight, outFeatures, inFeatures, hasBias);
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

    /// <summary>
    /// The int8 form of a Linear, as ONNX Runtime's <c>quantize_dynamic</c> writes it with per-channel weights:
    /// com.microsoft <c>DynamicQuantizeMatMul(x, B, b_scale, , bias)</c>. B [in, out] is int8, symmetric per output
    /// channel (s = max|w|/127, q = round(w/s), ties to even; no zero point); x is quantized by ONNX Runtime at run time to
    /// uint8 over the whole tensor (DynamicQuantizeLinear: one scale and zero point per call, not per row as
    /// ManagedClip does), the product accumulated in int32 and rescaled to float32, and the float32 bias added.
    /// </summary>
    private static string QuantizedLinear(this OnnxGraph graph, TensorStore store, string x, string module, ReadOnlySpan<float> weight,
        int outFeatures, int inFeatures, bool hasBias)
    {
        var scales = new float[outFeatures];
        var quantized = new sbyte[weight.Length]; // [in, out]
        for (int o = 0; o < outFeatures; o++)
        {
            var row = weight.Slice(o * inFeatures, inFeatures);
            float largest = MathF.Abs(TensorPrimitives.MaxMagnitude(row)); // MaxMagnitude keeps the sign of the element it finds
            float scale = largest > 0 ? largest / 127f : 1f; // an all-zero channel stays zero with any scale
            scales[o] = scale;
            for (int i = 0; i < inFeatures; i++)
                quantized[i * outFeatures + o] = (sbyte)Math.Clamp(MathF.Round(row[i] / scale, MidpointRounding.ToEven), -127, 127);
        }
        string weightKey = module + ".weight";
        string b = graph.Int8Weight(weightKey + ".int8.T", [inFeatures, outFeatures], quantized);
        string bScale = graph.Weight(weightKey + ".scale", [outFeatures], scales);
        string bias = hasBias ? graph.Weight(module + ".bias", [outFeatures], store.GetFloat32(module + ".bias", outFeatures)) : "";
        return graph.MicrosoftOp("DynamicQuantizeMatMul", x, b, bScale, "", bias);
    }

    /// <summary>LayerNormalization over the last axis with the module's weight, bias and eps.</summary>
    public static string LayerNorm(this OnnxGraph graph, TensorStore store, string x, LayerNormWeights norm)
    {
        string weightKey = norm.Name + ".weight", biasKey = norm.Name + ".bias";
        string scale = graph.Weight(weightKey, [norm.Width], store.GetFloat32(weightKey, norm.Width));
        string bias = graph.Weight(biasKey, [norm.Width], store.GetFloat32(biasKey, norm.Width));
        return graph.Op("LayerNormalization", [x, scale, bias],
            [OnnxWriter.IntAttribute("axis", -1), OnnxWriter.FloatAttribute("epsilon", norm.Eps)]);
    }

    /// <summary>A checkpoint tensor as a graph weight under its own name, with the shape the tower declared.</summary>
    public static string Weight(this OnnxGraph graph, TensorStore store, Parameter parameter, params long[] shape) =>
        graph.Weight(parameter.Name, shape, store.GetFloat32(parameter.Name, shape));

    /// <summary>The last two segments of a module name, for node scopes: "visual.trunk.blocks.3" → "blocks.3".</summary>
    public static string ShortName(string module)
    {
        int last = module.LastIndexOf('.');
        return module[(module.LastIndexOf('.', last - 1) + 1)..];
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
