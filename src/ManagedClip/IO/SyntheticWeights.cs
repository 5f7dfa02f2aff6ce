using System.Buffers;
using System.Runtime.InteropServices;
using System.Text;
using ManagedClip.IO.Distribution;
using ManagedClip.IO.Formats;
using ManagedClip.Model;

namespace ManagedClip.IO;

/// <summary>
/// Reproducible stand-in weights for the full-size BiomedCLIP architecture (shared/reference/SYNTHETIC_WEIGHTS.md):
/// every tensor is filled from a SplitMix64 stream seeded with the FNV-1a-64 hash of its name, by a rule chosen from
/// its name and shape. With them the real architecture can be run and checked without the 784 MB checkpoint.
/// </summary>
internal static class SyntheticWeights
{
    /// <summary>The weights file <see cref="WriteModelDirectory"/> writes.</summary>
    public const string WeightsFileName = "model.safetensors";

    /// <summary>How a tensor's values are made from the uniform numbers r in [-1, 1).</summary>
    internal enum Rule { NormWeight, Bias, Embedding, FanIn, LogitScale, IntBuffer }

    /// <summary>
    /// The real BiomedCLIP <c>open_clip_config.json</c> (the model card's current file, byte for byte), so a synthetic
    /// folder resolves to exactly the real architecture.
    /// </summary>
    internal const string BiomedClipConfigJson = """
{
  "model_cfg": {
    "embed_dim": 512,
    "vision_cfg": {
      "timm_model_name": "vit_base_patch16_224",
      "timm_model_pretrained": false,
      "timm_pool": "",
      "timm_proj": "linear",
      "image_size": 224
    },
    "text_cfg": {
      "hf_model_name": "microsoft/BiomedNLP-BiomedBERT-base-uncased-abstract",
      "hf_tokenizer_name": "microsoft/BiomedNLP-BiomedBERT-base-uncased-abstract",
      "hf_proj_type": "mlp",
      "hf_pooler_type": "cls_last_hidden_state_pooler",
      "context_length": 256
    }
  },
  "preprocess_cfg": {
    "mean": [
      0.48145466,
      0.4578275,
      0.40821073
    ],
    "std": [
      0.26862954,
      0.26130258,
      0.27577711
    ]
  }
}
""";

    /// <summary>
    /// Writes a complete model folder: <c>open_clip_config.json</c>, <c>model.safetensors</c> (all 352 state-dict
    /// tensors, including the int64 <c>position_ids</c>) and, when <paramref name="vocabularySource"/> is given, a copy of
    /// that <c>vocab.txt</c> (the vocabulary is not part of this library).
    /// </summary>
    /// <param name="outDir">Folder to create or fill.</param>
    /// <param name="vocabularySource">A BiomedCLIP vocab.txt to copy, or null to write none.</param>
    /// <param name="force">Replace files that already exist; otherwise an existing file is an error and nothing is written.</param>
    /// <exception cref="IOException">A target file exists and <paramref name="force"/> is false.</exception>
    /// <exception cref="FileNotFoundException"><paramref name="vocabularySource"/> does not exist.</exception>
    public static void WriteModelDirectory(string outDir, string? vocabularySource, bool force = false)
    {
        var targets = new List<string> { ModelDirectory.ConfigFileName, WeightsFileName };
        if (vocabularySource is not null)
        {
            if (!File.Exists(vocabularySource)) throw new FileNotFoundException($"Vocabulary not found: {vocabularySource}", vocabularySource);
            targets.Add(ModelDirectory.VocabularyFileName);
        }
        // Check every target first so a refusal leaves the folder untouched.
        var existing = targets.Select(t => Path.Combine(outDir, t)).Where(p => File.Exists(p) || Directory.Exists(p)).ToList();
        if (!force && existing.Count > 0)
            throw new IOException($"{string.Join(", ", existing)} already exist(s); refusing to overwrite (use --force to replace).");

        Directory.CreateDirectory(outDir);
        AtomicFile.Write(Path.Combine(outDir, ModelDirectory.ConfigFileName), force,
            stream => stream.Write(Encoding.UTF8.GetBytes(BiomedClipConfigJson)));
        var entries = Tensors().Select(t => new SafeTensorsWriter.Entry(new TensorInfo(t.Name, t.DType, t.Shape), s => Write(t, s)));
        SafeTensorsWriter.Write(Path.Combine(outDir, WeightsFileName), entries, new Dictionary<string, string> { ["format"] = "pt" }, force);
        if (vocabularySource is not null)
            AtomicFile.Copy(vocabularySource, Path.Combine(outDir, ModelDirectory.VocabularyFileName), force);
    }

    /// <summary>All tensors of the full-size model in state-dict order (derived from the config, not from a list).</summary>
    internal static IReadOnlyList<ExpectedTensor> Tensors() => ClipStateDict.Expected(ClipConfig.BiomedClip);

    /// <summary>Streams the tensor's little-endian bytes to <paramref name="destination"/> in bounded chunks.</summary>
    internal static void Write(ExpectedTensor tensor, Stream destination)
    {
        var rule = RuleFor(tensor);
        long count = TensorDTypes.CheckedElementCount(tensor.Shape)!.Value;
        if (rule == Rule.IntBuffer)
        {
            var ids = new long[count]; // 512 values
            for (long i = 0; i < count; i++) ids[i] = i;
            destination.Write(MemoryMarshal.AsBytes(ids.AsSpan()));
            return;
        }
        var generator = new Generator(tensor.Name, rule, FanIn(tensor.Shape));
        var buffer = ArrayPool<float>.Shared.Rent(1 << 16);
        // Chunk by chunk, the stream carrying on: the same values as Fill gives the whole tensor at once.
        try
        {
            for (long done = 0; done < count;)
            {
                int chunk = (int)Math.Min(buffer.Length, count - done);
                generator.Fill(buffer.AsSpan(0, chunk));
                destination.Write(MemoryMarshal.AsBytes(buffer.AsSpan(0, chunk)));
                done += chunk;
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(buffer);
        }
    }

    /// <summary>The float tensor's values, all at once (the benchmarks' in-memory checkpoint).</summary>
    internal static void Fill(ExpectedTensor tensor, Span<float> values)
    {
        if (values.Length != TensorDTypes.CheckedElementCount(tensor.Shape))
            throw new ArgumentException($"'{tensor.Name}' has {TensorDTypes.CheckedElementCount(tensor.Shape)} values, not {values.Length}", nameof(values));
        new Generator(tensor.Name, RuleFor(tensor), FanIn(tensor.Shape)).Fill(values);
    }

    /// <summary>The rule table of SYNTHETIC_WEIGHTS.md, decided from name and shape.</summary>
    internal static Rule RuleFor(ExpectedTensor tensor)
    {
        var name = tensor.Name;
        var segments = name.Split('.');
        if (name == "logit_scale") return Rule.LogitScale;
        if (tensor.DType == TensorDType.I64) return Rule.IntBuffer;
        if (name is "visual.trunk.cls_token" or "visual.trunk.pos_embed" || name.EndsWith("_embeddings.weight", StringComparison.Ordinal))
            return Rule.Embedding;
        if (tensor.Shape.Length == 1 && segments[^1] == "bias") return Rule.Bias;
        if (tensor.Shape.Length == 1 && segments[^1] == "weight" && segments.Length >= 2
            && segments[^2].Contains("norm", StringComparison.OrdinalIgnoreCase))
            return Rule.NormWeight;
        if (tensor.Shape.Length >= 2) return Rule.FanIn;
        throw new InvalidOperationException($"no synthetic-weight rule for tensor '{name}' {TensorDTypes.ShapeText(tensor.Shape)}");
    }

    /// <summary>Inputs per output of a weight: all elements divided by the first dimension (768 for the 16×16×3 patch conv).</summary>
    private static double FanIn(long[] shape) =>
        shape.Length >= 2 ? (double)(TensorDTypes.CheckedElementCount(shape)!.Value / shape[0]) : 1;

    /// <summary>FNV-1a, 64-bit, over the UTF-8 bytes of <paramref name="text"/>.</summary>
    internal static ulong Fnv1a64(string text)
    {
        ulong hash = 0xCBF29CE484222325;
        foreach (var b in Encoding.UTF8.GetBytes(text))
        {
            hash ^= b;
            hash *= 0x100000001B3;
        }
        return hash;
    }

    /// <summary>One tensor's value stream: SplitMix64 steps turned into r in [-1, 1), then the rule.</summary>
    internal struct Generator(string name, Rule rule, double fanIn)
    {
        private ulong state = Fnv1a64(name);

        /// <summary>The next uniform number r = 2u − 1 with u a 24-bit fraction (exact in double).</summary>
        public double NextR()
        {
            state += 0x9E3779B97F4A7C15;
            ulong z = state;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EB;
            z ^= z >> 31;
            double u = (z >> 40) * (1.0 / (1 << 24));
            return 2 * u - 1;
        }

        public void Fill(Span<float> values)
        {
            // Computed in double and rounded once to float32; the literals are doubles, as the spec requires.
            double root = Math.Sqrt(fanIn); // r / sqrt(fan_in) must stay a division to match the reference bits
            switch (rule)
            {
                case Rule.NormWeight:
                    for (int i = 0; i < values.Length; i++) values[i] = (float)(1 + 0.1 * NextR());
                    break;
                case Rule.Bias or Rule.Embedding:
                    for (int i = 0; i < values.Length; i++) values[i] = (float)(0.02 * NextR());
                    break;
                case Rule.FanIn:
                    for (int i = 0; i < values.Length; i++) values[i] = (float)(NextR() / root);
                    break;
                case Rule.LogitScale:
                    values.Fill((float)Math.Log(100)); // no random numbers drawn
                    break;
                default:
                    throw new InvalidOperationException($"rule {rule} does not make float values");
            }
        }
    }
}
