using ManagedClip.Kernels;

namespace ManagedClip.Model;

// The modules both towers are built from. Shapes use the model's naming key (docs/ARCHITECTURE.md): R rows in a pass
// (B·T for images, ΣT for texts), D width, F feed-forward width, nh heads, hs = D/nh head size.

/// <summary>A PyTorch <c>nn.Linear</c>: y = x·Wᵀ + b. The kernels do the arithmetic.</summary>
internal sealed class Linear
{
    private readonly WeightMatrix weight; // W [outputs, inputs]: packed at load, or read in place (see WeightMatrix)
    private readonly float[] bias;        // b [outputs], or empty when the layer has none

    private Linear(string name, string[] parts, WeightMatrix weight, float[] bias)
    {
        Name = name;
        Parts = parts;
        this.weight = weight;
        this.bias = bias;
    }

    /// <summary>The module's state-dict name, e.g. <c>visual.trunk.blocks.0.attn.qkv</c>.</summary>
    public string Name { get; }

    /// <summary>The state-dict modules whose weights this one holds: itself, or the stacked parts (BERT's query, key, value).</summary>
    public IReadOnlyList<string> Parts { get; }

    public int OutputCount => weight.RowCount;

    public int InputCount => weight.ColumnCount;

    public bool HasBias => bias.Length > 0;

    /// <summary>True when the weight is held in the GEMM's panel layout (see <see cref="Load"/>).</summary>
    public bool IsPacked => weight.IsPacked;

    /// <summary>
    /// <c>weight</c> [outputs, inputs] and, if <paramref name="hasBias"/>, <c>bias</c> [outputs] under <paramref name="w"/>.
    /// <paramref name="packed"/>: the weight is read now into a private copy in the GEMM's panel layout, right for layers
    /// used on every pass on many rows (the towers' blocks); otherwise it is read in place, and the checkpoint must stay
    /// open while the layer is used (the small heads). <paramref name="storedShape"/> is the weight's shape in the file
    /// when it is not [outputs, inputs] but holds the same values row-major (a convolution kernel [D, C, P, P] is the
    /// Linear weight [D, C·P·P]).
    /// </summary>
    public static Linear Load(WeightSource w, int outputs, int inputs, bool hasBias, bool packed, long[]? storedShape = null)
    {
        var request = w.Request("weight", storedShape ?? [outputs, inputs]);
        var bias = hasBias ? w.Copy("bias", outputs) : [];
        var weight = !packed ? w.InPlace(request)
            : ReducedPrecisionLayers.Covers(w.Prefix) ? w.PackedAtModelPrecision(inputs, request)
            : w.Packed(inputs, request);
        return new(w.Prefix, [w.Prefix], weight, bias);
    }

    /// <summary>
    /// Several Linear layers with the same input as one, their weights stacked row after row into one packed
    /// [parts·outputs, inputs] matrix, so that one GEMM computes all their outputs side by side in each row: BERT's
    /// query, key and value become one [3D, D] product, as timm's <c>attn.qkv</c> is stored.
    /// </summary>
    public static Linear LoadStacked(WeightSource w, string[] parts, int outputs, int inputs)
    {
        var weights = new TensorRequest[parts.Length];
        var biases = new float[parts.Length * outputs]; // [parts·outputs]
        for (int i = 0; i < parts.Length; i++)
        {
            var part = w.At(parts[i]);
            weights[i] = part.Request("weight", outputs, inputs);
            part.Copy("bias", outputs).CopyTo(biases, i * outputs);
        }
        var weight = ReducedPrecisionLayers.Covers(w.Prefix) ? w.PackedAtModelPrecision(inputs, weights) : w.Packed(inputs, weights);
        return new(w.Prefix, parts.Select(w.NameOf).ToArray(), weight, biases);
    }

    /// <summary>output = input·Wᵀ + b (then the epilogue) for every row: [rows, inputs] → [rows, outputs].</summary>
    /// <returns>The rows written: the first rows·outputs values of <paramref name="output"/>.</returns>
    public Span<float> Apply(ReadOnlySpan<float> input, Span<float> output, GemmEpilogue epilogue = GemmEpilogue.Store)
    {
        if (input.Length % InputCount != 0)
            throw new ArgumentException($"{Name}: input has {input.Length} values, not a whole number of rows of {InputCount}", nameof(input));
        int rows = input.Length / InputCount;
        var result = output.Slice(0, rows * OutputCount);
        Gemm.Multiply(input, rows, weight, bias, result, epilogue);
        ForwardHook.After(Name, result, OutputCount, (long)rows * OutputCount * InputCount);
        return result;
    }

    /// <summary>x += input·Wᵀ + b: a residual connection, the add fused into the GEMM.</summary>
    public void AddTo(Span<float> x, ReadOnlySpan<float> input) => Apply(input, x, GemmEpilogue.AddToOutput);
}

/// <summary>A PyTorch <c>nn.LayerNorm</c> over the last dimension.</summary>
internal sealed class LayerNormWeights
{
    private readonly float[] gamma; // γ [width]
    private readonly float[] beta;  // β [width]
    private readonly float eps;

    private LayerNormWeights(string name, float[] gamma, float[] beta, float eps)
    {
        Name = name;
        this.gamma = gamma;
        this.beta = beta;
        this.eps = eps;
    }

    /// <summary>The module's state-dict name, e.g. <c>visual.trunk.blocks.0.norm1</c>.</summary>
    public string Name { get; }

    public int Width => gamma.Length;

    public float Eps => eps;

    /// <summary><c>weight</c> and <c>bias</c> under <paramref name="w"/>, both [width].</summary>
    public static LayerNormWeights Load(WeightSource w, int width, float eps) =>
        new(w.Prefix, w.Copy("weight", width), w.Copy("bias", width), eps);

    /// <summary>Normalises every row of <paramref name="input"/> [rows, width] into <paramref name="output"/>, which may be the input itself.</summary>
    /// <returns>The rows written: the first input.Length values of <paramref name="output"/>.</returns>
    public Span<float> Apply(ReadOnlySpan<float> input, Span<float> output)
    {
        var result = output.Slice(0, input.Length);
        LayerNorm.Apply(input, gamma, beta, eps, result, gamma.Length);
        ForwardHook.After(Name, result, gamma.Length);
        return result;
    }
}

/// <summary>
/// Multi-head self-attention with its input and output projections: timm's <c>Attention</c> (<c>qkv</c>, then
/// <c>proj</c>), and Hugging Face's <c>BertSelfAttention</c> (query, key and value stacked into one) with the
/// <c>dense</c> of <c>BertSelfOutput</c>. Each sequence of the batch attends over its own rows only.
/// </summary>
internal sealed class SelfAttention(string name, Linear qkv, Linear proj, int headCount)
{
    /// <summary>The module that computes the attention itself (<c>…attn</c>, <c>…attention.self</c>).</summary>
    public string Name => name;

    /// <summary>[3D, D]: q | k | v, each laid out (nh, hs).</summary>
    public Linear Qkv => qkv;

    /// <summary>[D, D]: the output projection.</summary>
    public Linear Proj => proj;

    public int HeadCount => headCount;

    public int HeadSize => proj.InputCount / headCount;

    /// <summary>x += proj(attention(qkv(input))), the residual add fused into proj's GEMM.</summary>
    public void AddTo(Span<float> x, ReadOnlySpan<float> input, in Batch batch, in BlockScratch s) =>
        proj.AddTo(x, Attend(input, batch, s));

    /// <summary>x += proj(attended): the output projection alone (the last block runs it on the class rows only).</summary>
    public void Project(Span<float> x, ReadOnlySpan<float> attended) => proj.AddTo(x, attended);

    /// <summary>attention(qkv(input)), before the output projection: [R, D] → [R, D] in <c>s.Attended</c>.</summary>
    public Span<float> Attend(ReadOnlySpan<float> input, in Batch batch, in BlockScratch s)
    {
        int d = proj.InputCount;
        var qkvRows = qkv.Apply(input, s.Qkv);                   // [R, 3D]
        var attended = s.Attended.Slice(0, input.Length);         // [R, D]
        long multiplyAdds = 0;
        for (int i = 0, start = 0; i < batch.Count; start += batch.Length(i++))
        {
            int t = batch.Length(i);
            var sequenceQkv = qkvRows.Slice(start * 3 * d, t * 3 * d);  // [T, 3D]
            var sequenceOutput = attended.Slice(start * d, t * d);      // [T, D]
            var ids = batch.Ids(start, t);
            if (ids.Contains(0)) AttendWithPadKeys(sequenceQkv, ids, sequenceOutput, s);
            else Attention.SelfAttention(sequenceQkv, t, headCount, HeadSize, sequenceOutput);
            multiplyAdds += 2L * t * t * d; // q·kᵀ and p·v
        }
        ForwardHook.After(name + ".scaled_dot_product_attention", attended, d, multiplyAdds);
        return attended;
    }

    /// <summary>
    /// BERT adds float.MinValue to the score of every key whose id is 0 ([PAD]). That makes the key's softmax weight
    /// exactly 0 (exp(−3.4e38 − max) underflows to 0) as long as one key is unmasked, which is the same as leaving the
    /// key out. The kernel attends to the first keyCount keys, so the text's rows are reordered — unmasked keys first,
    /// in order, then the [PAD]-id rows — attended, and the outputs put back in place. Every row, [PAD] or not, is
    /// still a query, as in BERT.
    /// </summary>
    private void AttendWithPadKeys(ReadOnlySpan<float> textQkv, ReadOnlySpan<int> ids, Span<float> textAttended, in BlockScratch s)
    {
        int d = proj.InputCount, t = ids.Length, keyCount = t - ids.Count(0);
        var movedQkv = s.PadKeyQkv.Slice(0, t * 3 * d);      // [T, 3D]
        var movedOutput = s.PadKeyOutput.Slice(0, t * d);    // [T, D]
        for (int row = 0, kept = 0, masked = 0; row < t; row++)
        {
            int slot = ids[row] != 0 ? kept++ : keyCount + masked++;
            textQkv.Slice(row * 3 * d, 3 * d).CopyTo(movedQkv.Slice(slot * 3 * d, 3 * d));
        }
        Attention.SelfAttention(movedQkv, t, headCount, HeadSize, movedOutput, keyCount);
        for (int row = 0, kept = 0, masked = 0; row < t; row++)
        {
            int slot = ids[row] != 0 ? kept++ : keyCount + masked++;
            movedOutput.Slice(slot * d, d).CopyTo(textAttended.Slice(row * d, d));
        }
    }
}

/// <summary>
/// Linear → GELU → Linear: timm's <c>Mlp</c> (<c>fc1</c>, <c>fc2</c>), BERT's intermediate and output dense layers, and
/// open_clip's "mlp" text projection (<c>proj.0</c>, GELU, <c>proj.2</c>).
/// </summary>
internal sealed class Mlp(Linear fc1, Linear fc2)
{
    /// <summary>[F, D]</summary>
    public Linear Fc1 => fc1;

    /// <summary>[D, F]</summary>
    public Linear Fc2 => fc2;

    /// <summary>output = fc2(gelu(fc1(input))), GELU fused into fc1's GEMM; <paramref name="hidden"/> holds fc1's output.</summary>
    public void Apply(ReadOnlySpan<float> input, Span<float> hidden, Span<float> output) =>
        fc2.Apply(fc1.Apply(input, hidden, GemmEpilogue.StoreGelu), output);

    /// <summary>x += fc2(gelu(fc1(input))): GELU fused into fc1's GEMM, the residual add into fc2's.</summary>
    public void AddTo(Span<float> x, ReadOnlySpan<float> input, in BlockScratch s) =>
        fc2.AddTo(x, fc1.Apply(input, s.Hidden, GemmEpilogue.StoreGelu));
}

/// <summary>
/// How the R rows of a pass divide into sequences, each attending only over its own rows: B images of T tokens each
/// (R = B·T), or B texts of their own lengths Tᵢ (R = ΣTᵢ), stacked without padding, whose [PAD]-id keys are masked.
/// </summary>
internal readonly ref struct Batch
{
    private readonly int tokensEach;             // T, for images
    private readonly ReadOnlySpan<int> lengths;  // [B] Tᵢ, for texts
    private readonly ReadOnlySpan<int> tokenIds; // [R] the texts' ids; empty for images

    private Batch(int count, int tokensEach, ReadOnlySpan<int> lengths, ReadOnlySpan<int> tokenIds)
    {
        Count = count;
        this.tokensEach = tokensEach;
        this.lengths = lengths;
        this.tokenIds = tokenIds;
    }

    /// <summary>B images of T tokens each.</summary>
    public static Batch Images(int count, int tokens) => new(count, tokens, [], []);

    /// <summary>Texts of the given lengths, their ids one text after another.</summary>
    public static Batch Texts(ReadOnlySpan<int> tokenIds, ReadOnlySpan<int> lengths) => new(lengths.Length, 0, lengths, tokenIds);

    /// <summary>B, the number of sequences.</summary>
    public int Count { get; }

    /// <summary>Rows (tokens) of sequence <paramref name="index"/>.</summary>
    public int Length(int index) => lengths.IsEmpty ? tokensEach : lengths[index];

    /// <summary>The token ids of the sequence starting at row <paramref name="start"/>; empty for an image.</summary>
    public ReadOnlySpan<int> Ids(int start, int length) => tokenIds.IsEmpty ? [] : tokenIds.Slice(start, length);

    /// <summary>Row 0 of every sequence (its class token): [R, width] → [B, width].</summary>
    public void CopyFirstRows(ReadOnlySpan<float> rows, Span<float> firstRows, int width)
    {
        for (int i = 0, start = 0; i < Count; start += Length(i++))
            rows.Slice(start * width, width).CopyTo(firstRows.Slice(i * width, width));
    }
}

/// <summary>The activations a block needs besides the residual stream x, taken from the pass's arena.</summary>
internal readonly ref struct BlockScratch(Span<float> normed, Span<float> qkv, Span<float> attended, Span<float> hidden,
    Span<float> classAttended, Span<float> padKeyQkv, Span<float> padKeyOutput)
{
    public readonly Span<float> Normed = normed;               // [R, D] LayerNorm output (pre-norm blocks only)
    public readonly Span<float> Qkv = qkv;                     // [R, 3D] q | k | v, each laid out (nh, hs)
    public readonly Span<float> Attended = attended;           // [R, D] attention output, before the output projection
    public readonly Span<float> Hidden = hidden;               // [R, F] feed-forward hidden, after GELU
    public readonly Span<float> ClassAttended = classAttended; // [B, D] the class tokens' attention outputs (last block)
    public readonly Span<float> PadKeyQkv = padKeyQkv;         // [Tᵢ, 3D] a text's qkv rows, [PAD]-id rows moved last (texts only)
    public readonly Span<float> PadKeyOutput = padKeyOutput;   // [Tᵢ, D] their attention output (texts only)
}
