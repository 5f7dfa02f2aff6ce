using ManagedClip.IO.Formats;
using ManagedClip.Model;

namespace ManagedClip.Benchmarks;

/// <summary>
/// ManagedClip's two towers and logit scale loaded from a full-size safetensors file: the ManagedClip side of
/// <see cref="OrtBaselineBenchmarks"/>, called at the same level as ONNX Runtime's sessions (pixels and token ids
/// in, features out), so preprocessing and tokenization are left out on both sides.
/// </summary>
internal sealed class ManagedTowers
{
    /// <summary>Loads both towers (BiomedCLIP shapes, checked tensor by tensor) from <paramref name="weightsPath"/>.</summary>
    /// <param name="weightsPath">The checkpoint.</param>
    /// <param name="precision">The block weights' number format (see <see cref="ClipPrecision"/>).</param>
    public ManagedTowers(string weightsPath, ClipPrecision precision = ClipPrecision.Float32)
    {
        var config = ClipConfig.BiomedClip;
        // The heads and the word embeddings are read in place from the mapping, so the file stays open for the towers' lifetime.
        var store = SafeTensorsFile.Open(weightsPath);
        var source = new StoreWeights(store, precision: precision);
        Vision = VisionTransformer.Load(source, config.Vision, config.EmbedDim, store);
        Text = BertTextEncoder.Load(source, config.Text, config.EmbedDim, store);
        LogitScaleLog = ClipModel.LoadLogitScale(new StoreWeights(store));
    }

    public VisionTransformer Vision { get; }

    public BertTextEncoder Text { get; }

    /// <summary>The checkpoint's <c>logit_scale</c> (a logarithm; exp gives the factor on cosines).</summary>
    public float LogitScaleLog { get; }

    /// <summary>Width E of the shared embedding space (512).</summary>
    public int EmbedDim => Vision.EmbedDim;

    /// <summary>Image features [count, E] (unnormalised) of normalised pixels [count, 3, 224, 224].</summary>
    public void EmbedImages(float[] pixels, int count, float[] features) => Vision.Forward(pixels, count, features);

    /// <summary>
    /// Text features [Count, E] (unnormalised) of a padded batch: the trailing [PAD] ids are dropped first, as
    /// the library always does (it never pads), so only the real tokens are computed.
    /// </summary>
    public void EmbedTexts(TextBatch batch, float[] features)
    {
        var (tokenIds, lengths) = batch.RealTokens();
        Text.Forward(tokenIds, lengths, features);
    }
}
