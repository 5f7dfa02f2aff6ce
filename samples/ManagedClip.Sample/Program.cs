// ManagedClip from a .NET app: the model registered with dependency injection, used through the Microsoft.Extensions.AI
// abstractions. Embeds one image and a few labels, prints the zero-shot ranking, and checks that the generators give
// exactly ClipModel's vectors (exit code 1 if not).
//
//   dotnet run --project samples/ManagedClip.Sample -- --model testdata/reference/tiny \
//       --image testdata/model-card/images/brain_MRI.jpg --labels "brain MRI, chest X-ray, bone X-ray"
using ManagedClip;
using ManagedClip.Extensions.AI;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

var builder = Host.CreateApplicationBuilder(args);
var settings = builder.Configuration;
builder.Services.AddManagedClip(options =>
{
    options.ModelDirectory = settings["model"];    // null: $MANAGEDCLIP_MODEL, the caches, then a download
    if (settings.GetValue<int?>("threads") is { } threads) options.Threads = threads;
});
using var host = builder.Build();

string imagePath = settings["image"] ?? "testdata/model-card/images/brain_MRI.jpg";
string[] labels = (settings["labels"] ?? "adenocarcinoma histopathology, brain MRI, chest X-ray, bone X-ray")
    .Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
string[] prompts = [.. labels.Select(label => ClipModel.DefaultTemplate.Replace("{}", label))];

var texts = host.Services.GetRequiredService<IEmbeddingGenerator<string, Embedding<float>>>();
var images = host.Services.GetRequiredService<IEmbeddingGenerator<DataContent, Embedding<float>>>();
var metadata = texts.GetService<EmbeddingGeneratorMetadata>()!;
Console.WriteLine($"model {metadata.DefaultModelId}, {metadata.DefaultModelDimensions} dimensions");

string mediaType = Path.GetExtension(imagePath).ToLowerInvariant() switch
{
    ".png" => "image/png",
    ".jpg" or ".jpeg" => "image/jpeg",
    ".dcm" => "application/dicom",
    _ => "application/octet-stream", // the library reads the format from the bytes
};
var image = new DataContent(await File.ReadAllBytesAsync(imagePath), mediaType) { Name = Path.GetFileName(imagePath) };
Embedding<float> imageEmbedding = (await images.GenerateAsync([image]))[0];
GeneratedEmbeddings<Embedding<float>> promptEmbeddings = await texts.GenerateAsync(prompts);

// Zero-shot: softmax over the labels of exp(logit_scale) · cosine (the vectors have unit length).
var model = host.Services.GetRequiredService<ClipModel>();
float[] logits = [.. promptEmbeddings.Select(p => model.LogitScale * System.Numerics.Tensors.TensorPrimitives.Dot(imageEmbedding.Vector.Span, p.Vector.Span))];
float[] probabilities = new float[logits.Length];
System.Numerics.Tensors.TensorPrimitives.SoftMax(logits, probabilities);
Console.WriteLine($"{image.Name}:");
foreach (int i in Enumerable.Range(0, labels.Length).OrderByDescending(i => probabilities[i]))
    Console.WriteLine($"  {probabilities[i],7:0.0000}  {labels[i]}");

// The generators must give ClipModel's own vectors, bit for bit.
bool same = model.EmbedImages([ImageInput.FromFile(imagePath)])[0].AsSpan().SequenceEqual(imageEmbedding.Vector.Span);
var direct = model.EmbedTexts(prompts);
for (int i = 0; i < prompts.Length; i++) same &= direct[i].AsSpan().SequenceEqual(promptEmbeddings[i].Vector.Span);
Console.WriteLine(same ? "vectors: identical to ClipModel's" : "vectors: DIFFERENT from ClipModel's");
return same ? 0 : 1;
