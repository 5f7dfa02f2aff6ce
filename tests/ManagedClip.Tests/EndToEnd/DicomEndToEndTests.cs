using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using ManagedClip.Cli;
using ManagedClip.Imaging;
using ManagedClip.Tests.Imaging;

namespace ManagedClip.Tests.EndToEnd;

/// <summary>
/// DICOM files wherever images are accepted (library, classify, embed, score, the server, index), with the tiny
/// model. The expectation for a DICOM file is the result for a PNG of its reference <c>rgb224</c>: a 224×224 RGB
/// image goes through resize and crop unchanged, so both must give the same floats bit for bit (tolerance 0).
/// </summary>
public sealed class DicomEndToEndTests : IDisposable
{
    private static readonly string Tiny = TestModels.TinyDirectory;
    private readonly IO.TempFolder folder = new();

    public void Dispose() => folder.Dispose();

    private static string Dicom(string file) => TestData.PathOf("dicom", file);

    /// <summary>The reference model input of a DICOM file, written as PNG.</summary>
    private string ReferencePng(string tensorStem) =>
        folder.Write(tensorStem + ".reference.png", PngWriter.EncodeRgb(ReferenceTensors.Dicom.U8(tensorStem + ".rgb224"), 224, 224));

    [Fact]
    public void LibraryEmbedsDicomFilesAsTheirModelInput()
    {
        string[] files = ["MR_small.dcm", "CT_small_raw_dataset_implicit.dcm", "he_ybr_full_422_baseline_420.dcm", "ct_small_12bit_lossless_sv1.dcm"];
        string[] stems = ["MR_small", "CT_small", "he_ybr_full_422_baseline_420", "ct_small_12bit_lossless_sv1"];
        var model = TestModels.Tiny;
        var fromDicom = model.EmbedImages(files.Select(f => ImageInput.FromFile(Dicom(f))).ToList());
        var fromBytes = model.EmbedImages(files.Select(f => ImageInput.FromBytes(File.ReadAllBytes(Dicom(f)), f)).ToList());
        var fromPng = model.EmbedImages(stems.Select(s => ImageInput.FromFile(ReferencePng(s))).ToList());
        for (int i = 0; i < files.Length; i++)
        {
            Assert.Equal(fromPng[i], fromDicom[i]);
            Assert.Equal(fromPng[i], fromBytes[i]);
        }
    }

    [Fact]
    public void ClassifyAndEmbedCommandsTakeDicom()
    {
        string dicom = Dicom("cr_mono1_15bit_window.dcm"), png = ReferencePng("cr_mono1_15bit_window");
        var classify = CliRunner.Run("classify", "--model", Tiny, "--labels", "chest X-ray, brain MRI, histopathology", dicom, png);
        Assert.True(classify.ExitCode == 0, classify.Error);
        var rows = classify.Json.EnumerateArray().ToList();
        Assert.Equal(Probabilities(rows[1]), Probabilities(rows[0]));

        var embed = CliRunner.Run("embed", "--model", Tiny, "--image", dicom, png);
        Assert.True(embed.ExitCode == 0, embed.Error);
        var embeddings = embed.Json.EnumerateArray().Select(e => e.GetProperty("embedding").EnumerateArray().Select(v => v.GetSingle()).ToArray()).ToList();
        Assert.Equal(embeddings[1], embeddings[0]);
    }

    [Fact]
    public void ScoreRequestsTakeDicomPathsAndBase64()
    {
        string dicom = Dicom("SC_rgb_dcmtk_ebcys2.dcm"), png = ReferencePng("SC_rgb_dcmtk_ebcys2");
        var request = folder.Write("request.json", Encoding.UTF8.GetBytes(JsonSerializer.Serialize(new
        {
            input_data = new
            {
                columns = new[] { "image", "text" },
                data = new[]
                {
                    new[] { dicom, "red, green, blue" },
                    new[] { Convert.ToBase64String(File.ReadAllBytes(dicom)), "red, green, blue" },
                    new[] { png, "red, green, blue" },
                },
            },
        })));
        var result = CliRunner.Run("score", "--model", Tiny, "--request", request);
        Assert.True(result.ExitCode == 0, result.Error);
        var rows = result.Json.EnumerateArray().ToList();
        Assert.Equal(Probabilities(rows[2]), Probabilities(rows[0]));
        Assert.Equal(Probabilities(rows[2]), Probabilities(rows[1]));
    }

    [Fact]
    public async Task ServerScoresAndClassifiesDicom()
    {
        string dicom = Dicom("mr_brain_8bit_baseline.dcm"), png = ReferencePng("mr_brain_8bit_baseline");
        await using var app = ScoringServer.Build(TestModels.Tiny, "http://127.0.0.1:0", ScoringServer.DefaultMaxRequestBytes);
        await app.StartAsync();
        using var client = new HttpClient { BaseAddress = new Uri(app.Urls.First()), Timeout = TimeSpan.FromSeconds(60) };

        string body = JsonSerializer.Serialize(new
        {
            input_data = new
            {
                columns = new[] { "image", "text" },
                data = new[]
                {
                    new[] { Convert.ToBase64String(File.ReadAllBytes(dicom)), "brain MRI, chest X-ray" },
                    new[] { Convert.ToBase64String(File.ReadAllBytes(png)), "brain MRI, chest X-ray" },
                },
            },
        });
        var score = await client.PostAsync("/score", new StringContent(body, Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.OK, score.StatusCode);
        var rows = JsonDocument.Parse(await score.Content.ReadAsStringAsync()).RootElement.EnumerateArray().ToList();
        Assert.Equal(Probabilities(rows[1]), Probabilities(rows[0]));

        using var form = new MultipartFormDataContent();
        var file = new ByteArrayContent(File.ReadAllBytes(dicom));
        file.Headers.ContentType = new MediaTypeHeaderValue("application/dicom");
        form.Add(file, "image", "scan.dcm");
        form.Add(new StringContent("brain MRI, chest X-ray"), "labels");
        var classify = await client.PostAsync("/classify", form);
        Assert.Equal(HttpStatusCode.OK, classify.StatusCode);
        var result = JsonDocument.Parse(await classify.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal(Probabilities(rows[1]), Probabilities(result.ValueKind == JsonValueKind.Array ? result[0] : result));
    }

    /// <summary><c>index</c> takes <c>.dcm</c> files and DICOM files without an extension; DICOMDIR and other files are left out.</summary>
    [Fact]
    public void IndexTakesDicomFilesByExtensionAndByContent()
    {
        var images = Path.Combine(folder.Path, "study");
        folder.Write(Path.Combine("study", "IM000001"), File.ReadAllBytes(Dicom("MR_small.dcm")));
        folder.Write(Path.Combine("study", "series", "IM000002"), File.ReadAllBytes(Dicom("CT_small_raw_dataset_implicit.dcm")));
        folder.Write(Path.Combine("study", "scan.dcm"), File.ReadAllBytes(Dicom("color-pl.dcm")));
        folder.Write(Path.Combine("study", "DICOMDIR"), File.ReadAllBytes(Dicom("MR_small.dcm")));
        folder.Write(Path.Combine("study", "README"), "a study folder"u8.ToArray());
        var index = folder.File("study.index");

        var result = CliRunner.Run("index", "--model", Tiny, images, "--out", index);
        Assert.True(result.ExitCode == 0, result.Error);
        Assert.Equal(3, result.Json.GetProperty("embedded").GetInt32());
        Assert.Equal(0, result.Json.GetProperty("errors").GetInt32());

        var hits = CliRunner.Run("search", "--model", Tiny, "--index", index, "--image", Dicom("MR_small_RLE.dcm"), "-k", "3");
        Assert.True(hits.ExitCode == 0, hits.Error);
        var ranked = hits.Json.EnumerateArray().Select(h => Path.GetFileName(h.GetProperty("path").GetString()!)).ToList();
        Assert.Equal(["IM000001", "IM000002", "scan.dcm"], ranked.Order(StringComparer.Ordinal));
        Assert.Equal("IM000001", ranked[0]); // the same pixels as MR_small, in RLE
    }

    private static float[] Probabilities(JsonElement row) => row.GetProperty("probs").EnumerateArray().Select(v => v.GetSingle()).ToArray();
}
