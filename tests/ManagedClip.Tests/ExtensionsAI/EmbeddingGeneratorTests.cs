using System.Diagnostics;
using System.Diagnostics.Metrics;
using ManagedClip.Extensions.AI;
using ManagedClip.Tests.Api;
using ManagedClip.Tests.EndToEnd;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;

namespace ManagedClip.Tests.ExtensionsAI;

/// <summary>
/// ManagedClip through the Microsoft.Extensions.AI abstractions, resolved from dependency injection as an app would:
/// the same vectors as <see cref="ClipModel"/>, cancellation, stream input, disposal, metadata, telemetry.
/// </summary>
public sealed class EmbeddingGeneratorTests
{
    private static string Image(string name) => TestData.PathOf("images", name);

    private static ServiceProvider Services(Action<ClipModelOptions>? more = null) => new ServiceCollection()
        .AddLogging()
        .AddMetrics()
        .AddManagedClip(options =>
        {
            options.ModelDirectory = TestModels.TinyDirectory;
            more?.Invoke(options);
        })
        .BuildServiceProvider();

    [Fact]
    public async Task BothGeneratorsResolveFromDependencyInjectionAndGiveClipModelsBits()
    {
        await using var services = Services();
        var texts = services.GetRequiredService<IEmbeddingGenerator<string, Embedding<float>>>();
        var images = services.GetRequiredService<IEmbeddingGenerator<DataContent, Embedding<float>>>();
        var model = services.GetRequiredService<ClipModel>();
        Assert.Same(model, texts.GetService<ClipModel>());
        Assert.Same(model, images.GetService<ClipModel>());

        string[] prompts = ["this is a photo of brain MRI", "chest X-ray", "Röntgen"];
        var generated = await texts.GenerateAsync(prompts);
        var direct = model.EmbedTexts(prompts);
        Assert.Equal(prompts.Length, generated.Count);
        for (int i = 0; i < prompts.Length; i++) Assert.Equal(direct[i], generated[i].Vector.ToArray());

        var png = await File.ReadAllBytesAsync(Image("ihc.png"));
        var jpeg = await File.ReadAllBytesAsync(TestData.File("model-card", "images", "brain_MRI.jpg"));
        DataContent[] contents =
        [
            new(png, "image/png") { Name = "ihc.png" },
            new("data:image/jpeg;base64," + Convert.ToBase64String(jpeg)),
            new(png, "application/octet-stream"),
        ];
        var imageVectors = await images.GenerateAsync(contents);
        var expected = model.EmbedImages([ImageInput.FromFile(Image("ihc.png")), ImageInput.FromBytes(jpeg, "brain_MRI.jpg"), ImageInput.FromFile(Image("ihc.png"))]);
        for (int i = 0; i < contents.Length; i++)
        {
            Assert.Equal(expected[i], imageVectors[i].Vector.ToArray());
            Assert.Equal("tiny", imageVectors[i].ModelId);
        }
    }

    [Fact]
    public async Task MetadataNamesTheProviderModelAndDimensions()
    {
        await using var services = Services();
        var texts = services.GetRequiredService<IEmbeddingGenerator<string, Embedding<float>>>();
        var metadata = texts.GetService<EmbeddingGeneratorMetadata>()!;
        var model = services.GetRequiredService<ClipModel>();
        Assert.Equal("ManagedClip", metadata.ProviderName);
        Assert.Equal("tiny", metadata.DefaultModelId); // the folder's name
        Assert.Equal(model.EmbeddingSize, metadata.DefaultModelDimensions);
        Assert.Equal(model.Config.EmbedDim, (await texts.GenerateVectorAsync("x")).Length);
        Assert.Same(texts, texts.GetService<ClipTextEmbeddingGenerator>());
        Assert.Null(texts.GetService<EmbeddingGeneratorMetadata>("some key"));

        var wrongSize = await Assert.ThrowsAsync<NotSupportedException>(() =>
            texts.GenerateAsync(["x"], new EmbeddingGenerationOptions { Dimensions = 1536 }));
        Assert.Equal($"this model's embeddings have {model.EmbeddingSize} dimensions; 1536 were asked for (EmbeddingGenerationOptions.Dimensions)", wrongSize.Message);
    }

    [Fact]
    public async Task ANonImageMediaTypeOrABrokenImageIsOneLineNamingTheInput()
    {
        await using var services = Services();
        var images = services.GetRequiredService<IEmbeddingGenerator<DataContent, Embedding<float>>>();
        var notImage = await Assert.ThrowsAsync<ArgumentException>(() =>
            images.GenerateAsync([new DataContent("hello"u8.ToArray(), "text/plain") { Name = "notes.txt" }]));
        Assert.Equal("notes.txt: media type 'text/plain' is not an image (expected image/*, application/dicom or application/octet-stream)", notImage.Message);

        var broken = await Assert.ThrowsAsync<InvalidDataException>(() =>
            images.GenerateAsync([new DataContent(new byte[] { 0x89, 0x50, 0x4E, 0x47, 1, 2, 3 }, "image/png")]));
        Assert.StartsWith("image 0: ", broken.Message);
        Assert.DoesNotContain("\n", broken.Message);
    }

    [Fact]
    public async Task CancellationReachesTheModel()
    {
        await using var services = Services();
        var texts = services.GetRequiredService<IEmbeddingGenerator<string, Embedding<float>>>();
        var images = services.GetRequiredService<IEmbeddingGenerator<DataContent, Embedding<float>>>();
        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => texts.GenerateAsync(["x"], cancellationToken: cancelled.Token));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() =>
            images.GenerateAsync([new DataContent(File.ReadAllBytes(Image("cell.png")), "image/png")], cancellationToken: cancelled.Token));
    }

    [Fact]
    public async Task AnImageFromAStreamThroughDataContentGivesTheFilesVector()
    {
        await using var services = Services();
        var images = services.GetRequiredService<IEmbeddingGenerator<DataContent, Embedding<float>>>();
        var bytes = File.ReadAllBytes(Image("gray.png"));
        var input = await ImageInput.FromStreamAsync(new ChunkedStream(bytes, chunk: 4096), "gray.png");
        var content = new DataContent(input.EncodedBytes!.Value, "image/png");
        var vector = await images.GenerateVectorAsync(content);
        Assert.Equal(services.GetRequiredService<ClipModel>().EmbedImage(Image("gray.png")), vector.ToArray());
    }

    [Fact]
    public async Task DisposingTheContainerDisposesTheModelButAGeneratorLeavesItAlone()
    {
        ClipModel model;
        await using (var services = Services())
        {
            model = services.GetRequiredService<ClipModel>();
            var texts = services.GetRequiredService<IEmbeddingGenerator<string, Embedding<float>>>();
            texts.Dispose();
            Assert.NotEmpty(model.EmbedText("still usable")); // the model is shared: a generator does not own it
        }
        Assert.Throws<ObjectDisposedException>(() => model.EmbedText("x"));
    }

    [Fact]
    public async Task MeterAndActivitySourceReportLoadsAndCalls()
    {
        var measurements = new List<(string Instrument, double Value, string? Input)>();
        using var meters = new MeterListener();
        meters.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == ManagedClipTelemetry.MeterName) listener.EnableMeasurementEvents(instrument);
        };
        void Record(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            string? input = null;
            foreach (var tag in tags) if (tag.Key == "managedclip.input") input = tag.Value as string;
            lock (measurements) measurements.Add((instrument.Name, value, input));
        }
        meters.SetMeasurementEventCallback<long>((i, v, t, _) => Record(i, v, t));
        meters.SetMeasurementEventCallback<double>((i, v, t, _) => Record(i, v, t));
        meters.Start();

        var spans = new List<Activity>();
        using var activities = new ActivityListener
        {
            ShouldListenTo = source => source.Name == ManagedClipTelemetry.ActivitySourceName,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = activity => { lock (spans) spans.Add(activity); },
        };
        ActivitySource.AddActivityListener(activities);

        await using (var services = Services())
        {
            var texts = services.GetRequiredService<IEmbeddingGenerator<string, Embedding<float>>>();
            var images = services.GetRequiredService<IEmbeddingGenerator<DataContent, Embedding<float>>>();
            await texts.GenerateAsync(["a", "b", "c"]);
            await images.GenerateAsync([new DataContent(File.ReadAllBytes(Image("cell.png")), "image/png"), new DataContent(File.ReadAllBytes(Image("ihc.png")), "image/png")]);
        }

        // Other tests may run generators at the same time on their own containers; each container has its own meter,
        // but the listener sees them all, so look for this test's measurements rather than exact totals.
        lock (measurements)
        {
            Assert.Contains(measurements, m => m.Instrument == "managedclip.texts.embedded" && m.Value == 3);
            Assert.Contains(measurements, m => m.Instrument == "managedclip.images.embedded" && m.Value == 2);
            Assert.Contains(measurements, m => m.Instrument == "managedclip.embedding.duration" && m.Input == "text" && m.Value > 0);
            Assert.Contains(measurements, m => m.Instrument == "managedclip.embedding.duration" && m.Input == "image" && m.Value > 0);
            Assert.Contains(measurements, m => m.Instrument == "managedclip.load.duration" && m.Value > 0);
            Assert.Contains(measurements, m => m.Instrument == "managedclip.calls.active" && m.Value == 1);
            Assert.Contains(measurements, m => m.Instrument == "managedclip.calls.active" && m.Value == -1);
        }
        lock (spans)
        {
            Assert.Contains(spans, s => s.OperationName == "ManagedClip.Load");
            Assert.Contains(spans, s => s.OperationName == "embeddings" && (string?)s.GetTagItem("managedclip.input") == "text"
                && (int?)s.GetTagItem("managedclip.count") == 3 && (string?)s.GetTagItem("gen_ai.request.model") == "tiny");
            Assert.Contains(spans, s => s.OperationName == "embeddings" && (string?)s.GetTagItem("managedclip.input") == "image");
        }
    }

    [Fact]
    public void OptionsFromDependencyInjectionReachTheModel()
    {
        using var services = Services(options => options.ImagesPerPass = 0);
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => services.GetRequiredService<ClipModel>());
        Assert.Equal("ClipModelOptions.ImagesPerPass is 0; it must be between 1 and 256", error.Message);
    }
}
