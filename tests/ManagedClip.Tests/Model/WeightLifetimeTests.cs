using ManagedClip.IO.Formats;
using ManagedClip.Model;

namespace ManagedClip.Tests.Model;

/// <summary>
/// The towers read their heads (and BERT its word embeddings) in place: once the store is closed they refuse to run
/// instead of reading unmapped memory.
/// </summary>
public sealed class WeightLifetimeTests
{
    [Fact]
    public void TowersRefuseToRunAfterTheirWeightsAreClosed()
    {
        var store = SafeTensorsFile.Open(Path.Combine(TestData.Tiny, "model.safetensors"));
        var vision = VisionTransformer.Load(store, TinyModel.VisionConfig, TinyModel.EmbedDim);
        var text = BertTextEncoder.Load(store, TinyModel.TextConfig, TinyModel.EmbedDim);
        var features = new float[TinyModel.EmbedDim];
        text.Forward([2, 1805, 3], [3], features); // runs while open
        store.Dispose();
        Assert.Throws<ObjectDisposedException>(() => vision.Forward(new float[3 * 224 * 224], 1, features));
        Assert.Throws<ObjectDisposedException>(() => text.Forward([2, 1805, 3], [3], features));
    }
}
