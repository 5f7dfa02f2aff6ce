using System.Numerics.Tensors;
using ManagedClip.IO.Formats;
using ManagedClip.Kernels;

namespace ManagedClip.Model;

// Naming key (the model's, docs/ARCHITECTURE.md): B texts, Tᵢ one text's token count (its real tokens, [CLS] … [SEP],
// no padding), ΣT the rows of a pass (every text's tokens stacked), D hidden width (768), nh heads (12), hs = D/nh head
// size (64), F feed-forward width (3072), Dp = (D + E)/2 projection hidden width (640), E shared embedding width (512),
// V vocabulary rows (30522), Tmax position rows (512).

/// <summary>
/// BiomedCLIP's text tower: a Hugging Face <c>BertModel</c> without pooler (transformers 4.35
/// <c>modeling_bert.py</c>), wrapped as open_clip 2.23's <c>HFTextEncoder</c> (<c>hf_model.py</c>) does it: the
/// [CLS] row of the last hidden state through the MLP projection <c>text.proj</c> (Linear, GELU, Linear, no biases).
/// Texts are computed on their real tokens only, several texts stacked row after row in every GEMM.
/// Immutable after loading; <c>Forward</c> may run on several threads at once.
/// </summary>
internal sealed class BertTextEncoder
{
    private readonly TextConfig config;
    private readonly TensorStore? store;         // the checkpoint, open: the word embeddings and the projection are read in place

    internal readonly BertEmbeddings Embeddings; // transformer.embeddings: ids → hidden states
    internal readonly Layer[] Layers;            // transformer.encoder.layer.0 … .11
    internal readonly Mlp Projection;            // proj.0 [Dp, D], GELU, proj.2 [E, Dp], no biases: open_clip's "mlp" head

    private BertTextEncoder(TextConfig config, TensorStore? store, BertEmbeddings embeddings, Layer[] layers, Mlp projection) =>
        (this.config, this.store, Embeddings, Layers, Projection) = (config, store, embeddings, layers, projection);

    /// <summary>The tower's dimensions.</summary>
    public TextConfig Config => config;

    /// <summary>Width E of the text features.</summary>
    public int EmbedDim => Projection.Fc2.OutputCount;

    /// <summary>
    /// Loads the <c>text.*</c> tensors of an open_clip checkpoint, checking every shape against the config; each layer's
    /// query, key and value weights are used as one [3D, D] matrix. The layers' weights are read and packed here into
    /// private copies in the GEMM's panel layout; the word embedding table (of which only the rows of the ids present
    /// are read) and the projection head are read in place, so <paramref name="store"/> must stay open (undisposed)
    /// for as long as the tower is used, and may not be disposed while a forward pass runs.
    /// </summary>
    public static BertTextEncoder Load(TensorStore store, TextConfig config, int embedDim) =>
        Load(new StoreWeights(store ?? throw new ArgumentNullException(nameof(store))), config, embedDim, store);

    /// <summary>
    /// The tower as open_clip and Hugging Face name and shape its tensors: the one statement of the <c>text.*</c>
    /// checkpoint layout (from a <see cref="CheckpointLayout"/>, a tower of names and shapes without weights).
    /// </summary>
    internal static BertTextEncoder Load(WeightSource root, TextConfig config, int embedDim, TensorStore? store = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Check(embedDim);
        int d = config.Hidden, dp = (d + embedDim) / 2; // open_clip's "mlp" projection: hidden (width + embed_dim) // 2
        var text = root.At("text");
        var bert = text.At("transformer");
        var embeddings = BertEmbeddings.Load(bert.At("embeddings"), config);
        var layers = new Layer[config.LayerCount];
        for (int i = 0; i < layers.Length; i++) layers[i] = Layer.Load(bert.At("encoder").At("layer").At($"{i}"), config);
        var projection = new Mlp(
            Linear.Load(text.At("proj").At("0"), dp, d, hasBias: false, packed: false),
            Linear.Load(text.At("proj").At("2"), embedDim, dp, hasBias: false, packed: false));
        return new(config, store, embeddings, layers, projection);
    }

    /// <summary>
    /// Text features (before normalisation), as open_clip's <c>encode_text</c> returns them for the same ids.
    /// As in open_clip, every key whose id is [PAD] (0) is masked out of attention, including a [PAD] inside a
    /// text; trailing padding need not be passed at all (see <see cref="UnpaddedLength"/>) and costs nothing if
    /// it is not.
    /// </summary>
    /// <param name="tokenIds">[ΣT] the token ids of all texts, one text after another.</param>
    /// <param name="lengths">[B] token count Tᵢ of each text (1 ≤ Tᵢ ≤ Tmax).</param>
    /// <param name="features">[B, E] receives one feature row per text.</param>
    public void Forward(ReadOnlySpan<int> tokenIds, ReadOnlySpan<int> lengths, Span<float> features) =>
        Forward(tokenIds, lengths, features, ForwardHook.Installed);

    /// <summary>
    /// The length of a padded id sequence without its trailing [PAD] (0) ids: the ids after the last non-zero one
    /// are masked padding and change nothing, so they need not be computed.
    /// </summary>
    public static int UnpaddedLength(ReadOnlySpan<int> paddedIds) => paddedIds.LastIndexOfAnyExcept(0) + 1;

    /// <summary>As the public overload, with <paramref name="hook"/> watching every step (tests, profiling).</summary>
    internal void Forward(ReadOnlySpan<int> tokenIds, ReadOnlySpan<int> lengths, Span<float> features, ForwardHook? hook)
    {
        // The word embeddings and the projection are read in place: running after the checkpoint was closed would
        // read unmapped memory.
        if (store != null) ObjectDisposedException.ThrowIf(store.IsDisposed, store);
        int batchSize = lengths.Length, rows = CheckInputs(tokenIds, lengths, features);
        int d = config.Hidden, longestWithPadKeys = 0;
        for (int i = 0, start = 0; i < batchSize; start += lengths[i++])
            if (tokenIds.Slice(start, lengths[i]).Contains(0)) longestWithPadKeys = Math.Max(longestWithPadKeys, lengths[i]);

        long floatCount = (long)rows * (d + 3 * d + d + config.Intermediate) + (long)batchSize * (2 * d + Projection.Fc1.OutputCount)
            + (long)longestWithPadKeys * (3 * d + d);
        using var arena = new ActivationArena(floatCount, "BertTextEncoder.Forward");
        var x = arena.Take(rows * d);                          // [ΣT, D] hidden states
        var qkv = arena.Take(rows * 3 * d);                    // [ΣT, 3D] q | k | v, each laid out (nh, hs)
        var attended = arena.Take(rows * d);                   // [ΣT, D] attention output, before attention.output.dense
        var hidden = arena.Take(rows * config.Intermediate);   // [ΣT, F] feed-forward hidden, after GELU
        var classRows = arena.Take(batchSize * d);             // [B, D] the [CLS] rows from the last layer on
        var classAttended = arena.Take(batchSize * d);         // [B, D] their attention outputs
        var projectionHidden = arena.Take(batchSize * Projection.Fc1.OutputCount); // [B, Dp]
        var padKeyQkv = arena.Take(longestWithPadKeys * 3 * d);   // [Tᵢ, 3D] a text's qkv rows, [PAD]-id rows moved last
        var padKeyOutput = arena.Take(longestWithPadKeys * d);    // [Tᵢ, D] their attention output
        var scratch = new BlockScratch(normed: [], qkv, attended, hidden, classAttended, padKeyQkv, padKeyOutput);
        var texts = Batch.Texts(tokenIds, lengths);
        using var watching = ForwardHook.Install(hook);

        Embeddings.Apply(tokenIds, lengths, x);
        for (int i = 0; i < Layers.Length - 1; i++)
            Layers[i].Forward(x, texts, scratch);
        Layers[^1].ForwardClassTokens(x, texts, scratch, classRows);
        Projection.Apply(classRows, projectionHidden, features);
    }

    /// <summary>Validates the batch and returns ΣT, the total token count.</summary>
    private int CheckInputs(ReadOnlySpan<int> tokenIds, ReadOnlySpan<int> lengths, Span<float> features)
    {
        if (lengths.IsEmpty) throw new ArgumentException("no texts: lengths is empty", nameof(lengths));
        if (features.Length != (long)lengths.Length * EmbedDim)
            throw new ArgumentException($"features has {features.Length} values; {lengths.Length} row(s) of {EmbedDim} need {(long)lengths.Length * EmbedDim}", nameof(features));
        long rows = 0;
        for (int i = 0; i < lengths.Length; i++)
        {
            if (lengths[i] < 1 || lengths[i] > config.MaxPositions)
                throw new ArgumentException($"text {i} has {lengths[i]} tokens; the model takes 1 to {config.MaxPositions} (its position table)", nameof(lengths));
            rows += lengths[i];
        }
        if (rows != tokenIds.Length)
            throw new ArgumentException($"tokenIds has {tokenIds.Length} ids but the lengths add up to {rows}", nameof(tokenIds));
        for (int i = 0, start = 0; i < lengths.Length; start += lengths[i++])
        {
            var ids = tokenIds.Slice(start, lengths[i]);
            int bad = ids.IndexOfAnyExceptInRange(0, config.VocabSize - 1);
            if (bad >= 0)
                throw new ArgumentException($"text {i}: token id {ids[bad]} at position {bad} is outside the vocabulary 0..{config.VocabSize - 1}", nameof(tokenIds));
            // With every key masked BERT's softmax degenerates to a plain average; such input has no meaning.
            if (!ids.ContainsAnyExcept(0))
                throw new ArgumentException($"text {i} consists only of [PAD] (0) ids, so attention has no key to attend to", nameof(tokenIds));
        }
        return (int)rows;
    }

    /// <summary>
    /// HF <c>BertEmbeddings</c>: LayerNorm(word[id] + token_type[0] + position[p]) for p = 0..Tᵢ−1 of each text, summed
    /// in that order as Hugging Face does. No token_type ids are passed in open_clip, so row 0 is used throughout.
    /// </summary>
    internal sealed class BertEmbeddings(TextConfig config, EmbeddingTable words, Parameter positions, Parameter tokenTypes,
        LayerNormWeights norm)
    {
        public EmbeddingTable Words => words;       // word_embeddings [V, D], read in place: only the rows of the ids present
        public Parameter Positions => positions;    // position_embeddings [Tmax, D]
        public Parameter TokenTypes => tokenTypes;  // token_type_embeddings [2, D]; only row 0 is used
        public LayerNormWeights Norm => norm;       // LayerNorm, over D

        public static BertEmbeddings Load(WeightSource w, TextConfig config)
        {
            int d = config.Hidden;
            var words = w.Table(w.Request("word_embeddings.weight", config.VocabSize, d));
            var positions = new Parameter(w.NameOf("position_embeddings.weight"), w.Copy("position_embeddings.weight", config.MaxPositions, d));
            var tokenTypes = new Parameter(w.NameOf("token_type_embeddings.weight"), w.Copy("token_type_embeddings.weight", config.TypeVocabSize, d));
            var norm = LayerNormWeights.Load(w.At("LayerNorm"), d, config.LayerNormEps);
            return new(config, words, positions, tokenTypes, norm);
        }

        /// <param name="tokenIds">[ΣT]</param>
        /// <param name="lengths">[B]</param>
        /// <param name="x">[ΣT, D] receives the embeddings</param>
        public void Apply(ReadOnlySpan<int> tokenIds, ReadOnlySpan<int> lengths, Span<float> x)
        {
            int d = config.Hidden, row = 0;
            var tokenType = tokenTypes.Values.AsSpan(0, d); // row 0
            foreach (int length in lengths)
                for (int position = 0; position < length; position++, row++)
                {
                    var output = x.Slice(row * d, d);
                    TensorPrimitives.Add(words.Row(tokenIds[row]), tokenType, output);
                    TensorPrimitives.Add(output, positions.Values.AsSpan(position * d, d), output);
                }
            norm.Apply(x, x);
        }
    }

    /// <summary>HF <c>BertLayer</c>, post-norm.</summary>
    internal sealed class Layer(string name, SelfAttention attention, LayerNormWeights attentionNorm, Mlp feedForward,
        LayerNormWeights outputNorm)
    {
        public string Name => name;                        // encoder.layer.i
        public SelfAttention Attention => attention;       // attention.self (query|key|value [3D, D] + bias), attention.output.dense [D, D] + bias
        public LayerNormWeights AttentionNorm => attentionNorm; // attention.output.LayerNorm, over D
        public Mlp FeedForward => feedForward;             // intermediate.dense [F, D] + bias, output.dense [D, F] + bias
        public LayerNormWeights OutputNorm => outputNorm;  // output.LayerNorm, over D

        public static Layer Load(WeightSource w, TextConfig config)
        {
            int d = config.Hidden, f = config.Intermediate;
            float eps = config.LayerNormEps;
            var self = w.At("attention").At("self");
            var attention = new SelfAttention(self.Prefix,
                Linear.LoadStacked(self, ["query", "key", "value"], d, d),
                Linear.Load(w.At("attention").At("output").At("dense"), d, d, hasBias: true, packed: true), config.HeadCount);
            var attentionNorm = LayerNormWeights.Load(w.At("attention").At("output").At("LayerNorm"), d, eps);
            var feedForward = new Mlp(
                Linear.Load(w.At("intermediate").At("dense"), f, d, hasBias: true, packed: true),
                Linear.Load(w.At("output").At("dense"), d, f, hasBias: true, packed: true));
            var outputNorm = LayerNormWeights.Load(w.At("output").At("LayerNorm"), d, eps);
            return new(w.Prefix, attention, attentionNorm, feedForward, outputNorm);
        }

        /// <summary>x = LN(x + attention(x)); x = LN(x + ffn(x)), on every row of x [ΣT, D].</summary>
        public void Forward(Span<float> x, in Batch texts, in BlockScratch s)
        {
            attention.AddTo(x, x, texts, s);
            attentionNorm.Apply(x, x);
            feedForward.AddTo(x, x, s);
            outputNorm.Apply(x, x);
            ForwardHook.After(name, x, outputNorm.Width);
        }

        /// <summary>
        /// The last layer, for the [CLS] rows only: they alone reach the projection. Attention still runs over every
        /// row, since each [CLS] attends to all of its text's tokens; everything after it works row by row, so it runs
        /// on the B [CLS] rows alone. The result is exact, not an approximation.
        /// </summary>
        /// <param name="x">[ΣT, D] the hidden states before this layer.</param>
        /// <param name="texts">The texts' lengths and ids.</param>
        /// <param name="s">Scratch.</param>
        /// <param name="classRows">[B, D] receives the [CLS] rows after this layer.</param>
        public void ForwardClassTokens(ReadOnlySpan<float> x, in Batch texts, in BlockScratch s, Span<float> classRows)
        {
            var attended = attention.Attend(x, texts, s); // [ΣT, D]
            int d = classRows.Length / texts.Count;
            texts.CopyFirstRows(x, classRows, d);
            texts.CopyFirstRows(attended, s.ClassAttended, d);
            attention.Project(classRows, s.ClassAttended); // x = LN(x + attention(x)), [CLS] rows
            attentionNorm.Apply(classRows, classRows);
            feedForward.AddTo(classRows, classRows, s);    // x = LN(x + ffn(x)), [CLS] rows
            outputNorm.Apply(classRows, classRows);
            ForwardHook.After(name, classRows, d);
        }
    }
}
