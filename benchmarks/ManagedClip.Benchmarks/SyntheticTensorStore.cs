using ManagedClip.IO.Formats;
using ManagedClip.Model;

namespace ManagedClip.Benchmarks;

/// <summary>
/// An in-memory checkpoint with BiomedCLIP's tensor names, shaped by a <see cref="ClipConfig"/> and filled with
/// small reproducible pseudo-random values: enough to time the towers at full size without the real weights.
/// (Values are not the reference's synthetic formula; use shared/reference/full for correctness.)
/// </summary>
internal sealed class SyntheticTensorStore : TensorStore
{
    private readonly Dictionary<string, (TensorInfo Info, float[] Values)> tensors = new();
    private readonly List<string> names = new();

    public SyntheticTensorStore(ClipConfig config)
    {
        var random = new Random(20240611);
        void Add(string name, params long[] shape)
        {
            var info = new TensorInfo(name, TensorDType.F32, shape);
            var values = GC.AllocateArray<float>((int)info.ElementCount, pinned: true); // towers keep pointers into it
            bool isNormWeight = name.EndsWith("norm1.weight") || name.EndsWith("norm2.weight")
                || name.EndsWith("norm.weight") || name.EndsWith("LayerNorm.weight");
            for (int i = 0; i < values.Length; i++)
                values[i] = isNormWeight ? 1f : (float)(random.NextDouble() - 0.5) * 0.04f;
            tensors[name] = (info, values);
            names.Add(name);
        }

        var v = config.Vision;
        int d = v.Width, e = config.EmbedDim;
        Add("visual.trunk.cls_token", 1, 1, d);
        Add("visual.trunk.pos_embed", 1, v.TokenCount, d);
        Add("visual.trunk.patch_embed.proj.weight", d, 3, v.PatchSize, v.PatchSize);
        Add("visual.trunk.patch_embed.proj.bias", d);
        for (int i = 0; i < v.Depth; i++)
        {
            string p = $"visual.trunk.blocks.{i}.";
            Add(p + "norm1.weight", d); Add(p + "norm1.bias", d);
            Add(p + "attn.qkv.weight", 3 * d, d); Add(p + "attn.qkv.bias", 3 * d);
            Add(p + "attn.proj.weight", d, d); Add(p + "attn.proj.bias", d);
            Add(p + "norm2.weight", d); Add(p + "norm2.bias", d);
            Add(p + "mlp.fc1.weight", v.MlpHidden, d); Add(p + "mlp.fc1.bias", v.MlpHidden);
            Add(p + "mlp.fc2.weight", d, v.MlpHidden); Add(p + "mlp.fc2.bias", d);
        }
        Add("visual.trunk.norm.weight", d); Add("visual.trunk.norm.bias", d);
        Add("visual.head.proj.weight", e, d);

        var t = config.Text;
        int h = t.Hidden;
        const string bert = "text.transformer.";
        Add(bert + "embeddings.word_embeddings.weight", t.VocabSize, h);
        Add(bert + "embeddings.position_embeddings.weight", t.MaxPositions, h);
        Add(bert + "embeddings.token_type_embeddings.weight", t.TypeVocabSize, h);
        Add(bert + "embeddings.LayerNorm.weight", h); Add(bert + "embeddings.LayerNorm.bias", h);
        for (int i = 0; i < t.LayerCount; i++)
        {
            string p = $"{bert}encoder.layer.{i}.";
            foreach (var part in new[] { "attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense" })
            {
                Add(p + part + ".weight", h, h); Add(p + part + ".bias", h);
            }
            Add(p + "attention.output.LayerNorm.weight", h); Add(p + "attention.output.LayerNorm.bias", h);
            Add(p + "intermediate.dense.weight", t.Intermediate, h); Add(p + "intermediate.dense.bias", t.Intermediate);
            Add(p + "output.dense.weight", h, t.Intermediate); Add(p + "output.dense.bias", h);
            Add(p + "output.LayerNorm.weight", h); Add(p + "output.LayerNorm.bias", h);
        }
        Add("text.proj.0.weight", (h + e) / 2, h);
        Add("text.proj.2.weight", e, (h + e) / 2);
    }

    public override string SourcePath => "(synthetic)";
    public override IReadOnlyList<string> Names => names;
    public override TensorInfo Info(string name) => tensors[name].Info;
    public override bool Contains(string name) => tensors.ContainsKey(name);
    public override ReadOnlySpan<float> GetFloat32(string name) => tensors[name].Values;
    public override long[] GetInt64(string name) => throw new InvalidDataException($"{name} is not an integer tensor");
    protected override void Dispose(bool disposing) { }
}
