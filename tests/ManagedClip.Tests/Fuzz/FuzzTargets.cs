using ManagedClip.IO.Formats;
using ManagedClip.Retrieval;
using System.Text;
using System.Text.Json;
using ManagedClip.Cli;
using ManagedClip.Imaging;
using ManagedClip.Imaging.JpegLs;
using ManagedClip.IO;
using ManagedClip.Model;
using ManagedClip.Tests.Imaging;
using ManagedClip.Tests.IO;
using ManagedClip.Tokenization;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats;
using SixLabors.ImageSharp.Formats.Bmp;
using SixLabors.ImageSharp.Formats.Gif;
using SixLabors.ImageSharp.Formats.Pbm;
using SixLabors.ImageSharp.Formats.Png;
using SixLabors.ImageSharp.Formats.Tga;
using SixLabors.ImageSharp.Formats.Tiff;
using SixLabors.ImageSharp.Formats.Tiff.Constants;
using SixLabors.ImageSharp.Formats.Webp;
using SixLabors.ImageSharp.PixelFormats;

namespace ManagedClip.Tests.Fuzz;

/// <summary>
/// The parsers under fuzz, one <see cref="FuzzTarget"/> each, with seeds built here from the formats' own encoders
/// or by hand. To add a parser (JPEG and DICOM readers are expected), add an entry to <see cref="All"/> with its seeds
/// and its call; the campaign, contract and reporting need no change.
/// </summary>
internal static class FuzzTargets
{
    private static readonly Type[] Refusals = [typeof(InvalidDataException), typeof(FileNotFoundException)];

    /// <summary>Images are capped at 4 MP under fuzz: the contract is the same as at 100 MP, and every case stays fast.</summary>
    private static readonly ImagePreprocessor Images = new(224, ClipConfig.OpenAiMean, ClipConfig.OpenAiStd, maxPixels: 4_000_000);

    private static readonly Lazy<OpenClipBertTokenizer> Tokenizer = new(() => new OpenClipBertTokenizer(TestData.PathOf("vocab.txt")));

    public static IReadOnlyList<FuzzTarget> All { get; } =
    [
        new("safetensors", true, SafetensorsSeeds, (input, scratch) => ReadTensors(SafeTensorsFile.Open(scratch.Write("w.safetensors", input))), Refusals),
        new("torch-zip", false, TorchSeeds, (input, scratch) => ReadTensors(TorchCheckpoint.Open(scratch.Write("w.bin", input))), Refusals),
        new("pickle", false, PickleSeeds, (input, scratch) =>
            ReadTensors(TorchCheckpoint.Open(scratch.Write("p.bin", ZipBuilder.Checkpoint(input, ("0", ZipBuilder.Floats(1, 2, 3, 4, 5, 6)))))), Refusals),
        ImageTarget("png", PngSeeds),
        ImageTarget("gif", () => [Encode(Picture(37, 23), new GifEncoder()), Encode(Grey(20, 9), new GifEncoder())]),
        ImageTarget("bmp", () => [Encode(Picture(33, 17), new BmpEncoder { BitsPerPixel = BmpBitsPerPixel.Pixel24 }),
            Encode(Picture(20, 12), new BmpEncoder { BitsPerPixel = BmpBitsPerPixel.Pixel8 }),
            Encode(Picture(9, 30), new BmpEncoder { BitsPerPixel = BmpBitsPerPixel.Pixel32, SupportTransparency = true })]),
        ImageTarget("tga", () => [Encode(Picture(31, 19), new TgaEncoder { BitsPerPixel = TgaBitsPerPixel.Pixel24, Compression = TgaCompression.None }),
            Encode(Picture(25, 14), new TgaEncoder { BitsPerPixel = TgaBitsPerPixel.Pixel32, Compression = TgaCompression.RunLength })]),
        ImageTarget("pnm", () => [Encode(Picture(23, 11), new PbmEncoder { ColorType = PbmColorType.Rgb, Encoding = PbmEncoding.Binary }),
            Encode(Grey(15, 8), new PbmEncoder { ColorType = PbmColorType.Grayscale, ComponentType = PbmComponentType.Short }),
            Encode(Grey(12, 5), new PbmEncoder { ColorType = PbmColorType.BlackAndWhite, Encoding = PbmEncoding.Plain }),
            Encode(Picture(6, 4), new PbmEncoder { ColorType = PbmColorType.Rgb, Encoding = PbmEncoding.Plain })]),
        ImageTarget("tiff", TiffSeeds),
        ImageTarget("webp", () => [Encode(Picture(29, 21), new WebpEncoder { FileFormat = WebpFileFormatType.Lossless }),
            Encode(Picture(40, 26), new WebpEncoder { FileFormat = WebpFileFormatType.Lossy, Quality = 70 }),
            PillowCompatibilityTests.AnimatedWebp(30, 20, true, (Picture(10, 8), 4, 2), (Picture(6, 6), 0, 0))]),
        ImageTarget("ico", () => [PillowCompatibilityTests.Ico((16, 16, 32, Encode(Picture(16, 16), new PngEncoder())), (8, 8, 32, Encode(Picture(8, 8), new PngEncoder()))),
            PillowCompatibilityTests.Ico((4, 2, 24, IcoBitmap(4, 2)))]),
        // JPEG-LS: bare streams straight into the decoder (conformance streams with LSE presets, NEAR 3, restart markers,
        // sample interleave), and DICOM files whose frames are JPEG-LS, through the whole DICOM path.
        new("jpeg-ls", false, () => [.. new[] { "t8nde0.jls", "t8nde3.jls", "test8_ilv_sample_rm_300.jls" }.Select(JpegLsStream)],
            (input, _) => JpegLsDecoder.Decode(input, "fuzz.jls", 4_000_000), Refusals),
        ImageTarget("dicom-jpeg-ls", () => [.. new[] { "SC_rgb_jpegls_sample.dcm", "ct_small_12bit_jpegls_near5.dcm", "SC_rgb_jpegls_none.dcm" }.Select(JpegLsStream)]),
        new("request", true, RequestSeeds, (input, _) => ScoreRequest(input), [typeof(InvalidDataException), typeof(RequestException)]),
        new("tokenizer-text", false, TextSeeds, (input, _) => Tokenize(input), []),
        new("vocabulary", true, () => [VocabularyHead(), "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\ntumor\n##s\n"u8.ToArray()],
            (input, scratch) => _ = new OpenClipBertTokenizer(scratch.Write("vocab.txt", input)).Encode("tumors of the breast"), Refusals),
        new("open-clip-config", true, ConfigSeeds, (input, scratch) => ReadConfig(scratch, input, bert: false), Refusals),
        new("bert-config", true, () => [File.ReadAllBytes(Path.Combine(TestData.Tiny, "text_config", "config.json")), File.ReadAllBytes(TestData.PathOf("biomedbert_config.json"))],
            (input, scratch) => ReadConfig(scratch, input, bert: true), Refusals),
        // An index is a folder: each target damages one of its files and searches the result.
        new("index-manifest", true, () => [IndexFile(IndexManifest.FileName)], (input, scratch) => SearchIndex(scratch, IndexManifest.FileName, input), Refusals),
        new("index-npy", false, () => [IndexFile(SeedPart + ".npy")], (input, scratch) => SearchIndex(scratch, SeedPart + ".npy", input), Refusals),
        new("index-parquet", false, () => [IndexFile(SeedPart + ".parquet")], (input, scratch) => SearchIndex(scratch, SeedPart + ".parquet", input), Refusals),
        new("packed-weights-header", false, PackedWeightsHeaderSeeds, (input, _) => ParsePackedWeightsHeader(input), [typeof(PackedWeightsRejectedException)]),
    ];

    /// <summary>
    /// The metadata of a packed-weights file for the tiny model's 10 matrices, in float32 and in int8 (four arrays per
    /// block matrix). Offsets are laid out as the writer lays them; checksums are left zero (the parser does not read
    /// the arrays).
    /// </summary>
    private static IReadOnlyList<byte[]> PackedWeightsHeaderSeeds()
    {
        var directory = global::ManagedClip.IO.Distribution.ModelDirectory.Open(TestData.Tiny);
        return [.. new[] { ClipPrecision.Float32, ClipPrecision.Int8 }.Select(precision =>
        {
            var matrices = global::ManagedClip.IO.Distribution.PackedWeightsCache.PackedWeights(directory.Config, precision);
            var (entries, _) = PackedWeightsWriter.LayOut(matrices);
            return new PackedWeightsHeader
            {
                PanelWidth = 32, VectorBits = 256, PackingVersion = 1, Precision = precision == ClipPrecision.Int8 ? PackedElementType.Int8 : PackedElementType.Float32,
                FileLength = PackedFuzzFileLength, Source = new WeightsIdentity(1234, 5678, 9, 10, new byte[32]), SourceContentHash = new byte[32],
                Matrices = [.. entries.Select(e => e with { Sections = [.. e.Sections.Select(s => s with { Checksum = new byte[32] })] })],
            }.Serialize();
        })];
    }

    private const long PackedFuzzFileLength = 1L << 30;

    /// <summary>
    /// Parses fuzzed metadata with its checksum recomputed, as a file written on purpose would have it, so that the
    /// mutations reach the table parser instead of all stopping at the checksum.
    /// </summary>
    private static void ParsePackedWeightsHeader(byte[] input)
    {
        if (input.Length >= PackedWeightsHeader.FixedBytes)
        {
            input.AsSpan(136, 32).Clear();
            System.Security.Cryptography.SHA256.HashData(input).CopyTo(input, 136);
        }
        PackedWeightsHeader.Parse(input, PackedFuzzFileLength, 32);
    }

    // ----- runs -----

    private static void ReadTensors(TensorStore store)
    {
        using (store)
        {
            foreach (var name in store.Names)
            {
                var info = store.Info(name);
                if (TensorDTypes.IsFloat(info.DType)) _ = store.GetFloat32(name).Length;
                else _ = store.GetInt64(name).Length;
            }
        }
    }

    private static byte[] JpegLsStream(string file) => File.ReadAllBytes(Path.Combine(TestData.Dicom, "jpegls", file));

    private static FuzzTarget ImageTarget(string format, Func<IReadOnlyList<byte[]>> seeds) =>
        new(format, false, seeds, (input, _) => Images.Preprocess(input, "fuzz." + format), Refusals);

    /// <summary>What <c>POST /score</c> does with a body before the model (its own parser), then each image and label list.</summary>
    private static void ScoreRequest(byte[] body)
    {
        foreach (var row in ScoringSchema.ParseRequestBody(body))
        {
            Images.Preprocess(row.Image.EncodedBytes!.Value.Span, row.Image.Name);
            foreach (var label in row.Labels) Tokenizer.Value.Encode(ClipModel.DefaultTemplate.Replace("{}", label));
        }
    }

    /// <summary>Any UTF-16 string (lone surrogates included) must tokenize: the result is [CLS] … [SEP], at most 256 ids.</summary>
    private static void Tokenize(byte[] utf16)
    {
        var text = new string(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, char>(utf16.AsSpan(0, utf16.Length & ~1)));
        var ids = Tokenizer.Value.Encode(text);
        if (ids.Length is < 2 or > 256 || ids[0] != 2 || ids[^1] != 3 || ids.Any(id => id < 0 || id > Tokenizer.Value.MaxTokenId))
            throw new InvalidOperationException($"tokenizer broke its contract: {ids.Length} ids");
    }

    private static void ReadConfig(FuzzScratch scratch, byte[] input, bool bert)
    {
        var tiny = TestData.Tiny;
        var config = scratch.Write("model/open_clip_config.json", bert ? File.ReadAllBytes(Path.Combine(tiny, "open_clip_config.json")) : input);
        scratch.Write("model/text_config/config.json", bert ? input : File.ReadAllBytes(Path.Combine(tiny, "text_config", "config.json")));
        var parsed = OpenClipConfigReader.Read(config, Path.GetDirectoryName(config)!);
        _ = ClipStateDict.Expected(parsed.Config).Count; // the config must describe a model whose tensors can be listed
    }

    /// <summary>The seed index with <paramref name="file"/> replaced by <paramref name="input"/>, opened and searched.</summary>
    private static void SearchIndex(FuzzScratch scratch, string file, byte[] input)
    {
        foreach (var name in SeedIndex.Value.Keys) scratch.Write(Path.Combine("i.index", name), name == file ? input : SeedIndex.Value[name]);
        using var index = ImageIndexReader.Open(Path.Combine(scratch.Folder, "i.index"));
        foreach (var hit in index.Search(Enumerable.Repeat(1f, 4).ToArray(), 3))
            if (!float.IsFinite(hit.Score) && !float.IsNaN(hit.Score)) throw new InvalidOperationException($"search broke its contract: score {hit.Score}");
    }

    // ----- seeds -----

    private static Image<Rgb24> Picture(int width, int height)
    {
        var image = new Image<Rgb24>(width, height);
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++) image[x, y] = new Rgb24((byte)(x * 9), (byte)(y * 13), (byte)(x * y));
        return image;
    }

    private static Image<L8> Grey(int width, int height)
    {
        var image = new Image<L8>(width, height);
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++) image[x, y] = new L8((byte)((x + y) * 17));
        return image;
    }

    private static byte[] Encode(Image image, IImageEncoder encoder)
    {
        using (image)
        {
            var stream = new MemoryStream();
            image.Save(stream, encoder);
            return stream.ToArray();
        }
    }

    private static IReadOnlyList<byte[]> PngSeeds() =>
    [
        Encode(Picture(41, 27), new PngEncoder()),
        Encode(Picture(20, 33).CloneAs<Rgba32>(), new PngEncoder { ColorType = PngColorType.RgbWithAlpha }),
        Encode(Picture(19, 10), new PngEncoder { ColorType = PngColorType.Palette }),
        Encode(Grey(26, 9).CloneAs<L16>(), new PngEncoder { ColorType = PngColorType.Grayscale, BitDepth = PngBitDepth.Bit16 }),
        Encode(Grey(24, 8), new PngEncoder { ColorType = PngColorType.Grayscale, BitDepth = PngBitDepth.Bit1 }),
        Encode(Picture(30, 30), new PngEncoder { InterlaceMethod = PngInterlaceMode.Adam7 }),
    ];

    private static IReadOnlyList<byte[]> TiffSeeds() =>
    [
        Encode(Picture(21, 13), new TiffEncoder { BitsPerPixel = TiffBitsPerPixel.Bit24, Compression = TiffCompression.None }),
        Encode(Picture(24, 16), new TiffEncoder { BitsPerPixel = TiffBitsPerPixel.Bit24, Compression = TiffCompression.Lzw }),
        Encode(Picture(18, 12), new TiffEncoder { BitsPerPixel = TiffBitsPerPixel.Bit24, Compression = TiffCompression.Deflate }),
        Encode(Grey(16, 8), new TiffEncoder { BitsPerPixel = TiffBitsPerPixel.Bit8, Compression = TiffCompression.PackBits }),
        Encode(Grey(16, 8), new TiffEncoder { BitsPerPixel = TiffBitsPerPixel.Bit1 }),
        PillowCompatibilityTests.Tiff(4, 3, [8, 8], 1, [2], Enumerable.Range(0, 24).Select(i => (byte)(i * 10)).ToArray()),
    ];

    /// <summary>A 24-bit icon DIB: double-height header, bottom-up rows, then the 1-bit AND mask.</summary>
    private static byte[] IcoBitmap(int width, int height)
    {
        int stride = (width * 3 + 3) & ~3;
        var dib = new byte[40 + stride * height + 4 * height];
        BitConverter.GetBytes(40).CopyTo(dib, 0);
        BitConverter.GetBytes(width).CopyTo(dib, 4);
        BitConverter.GetBytes(2 * height).CopyTo(dib, 8);
        BitConverter.GetBytes((short)1).CopyTo(dib, 12);
        BitConverter.GetBytes((short)24).CopyTo(dib, 14);
        for (int i = 40; i < 40 + stride * height; i++) dib[i] = (byte)(i * 7);
        return dib;
    }

    private static IReadOnlyList<byte[]> SafetensorsSeeds()
    {
        using var scratch = new FuzzScratch();
        var path = Path.Combine(scratch.Folder, "s.safetensors");
        SafeTensorsWriter.Write(path,
        [
            SafeTensorsWriter.Float32("visual.w", [2, 3], new float[] { 1, 2, 3, 4, 5, 6 }),
            SafeTensorsWriter.Float16("text.b", [2], new Half[] { (Half)1, (Half)2 }),
            SafeTensorsWriter.Int64("ids", [1, 3], new long[] { 0, 1, 2 }),
        ], new Dictionary<string, string> { ["format"] = "pt" }, overwrite: false);
        return [File.ReadAllBytes(path)];
    }

    private static IReadOnlyList<byte[]> PickleSeeds() =>
    [
        new PickleBuilder().Proto().EmptyDict().Mark().Unicode("w").Tensor("FloatStorage", "0", 6, 0, [2, 3], [3, 1]).SetItems().Stop().ToArray(),
        new PickleBuilder().Proto().Global("collections", "OrderedDict").Put(0).EmptyTuple().Reduce().Mark()
            .Unicode("state_dict").EmptyDict().Mark().Unicode("module.a").Tensor("FloatStorage", "0", 6, 2, [4], [1]).SetItems()
            .Unicode("epoch").Int(3).SetItems().Stop().ToArray(),
    ];

    private static IReadOnlyList<byte[]> TorchSeeds() => [.. PickleSeeds().Select(p => ZipBuilder.Checkpoint(p, ("0", ZipBuilder.Floats(1, 2, 3, 4, 5, 6))))];

    private static IReadOnlyList<byte[]> RequestSeeds()
    {
        var png = Convert.ToBase64String(File.ReadAllBytes(TestData.PathOf("images", "tiny.png")));
        return
        [
            Encoding.UTF8.GetBytes($"{{\"input_data\": {{\"columns\": [\"image\", \"text\"], \"index\": [0, 1], \"data\": [[\"{png}\", \"brain MRI, chest X-ray\"], [\"data:image/png;base64,{png}\", \"tumor\"]]}}}}"),
            Encoding.UTF8.GetBytes($"{{\"input_data\": {{\"columns\": [\"text\", \"image\"], \"data\": [[\"a, b, c\", \"{png.TrimEnd('=')}\"]]}}}}"),
        ];
    }

    private static IReadOnlyList<byte[]> TextSeeds()
    {
        var texts = File.ReadLines(TestData.PathOf("tokenizer.jsonl")).Take(20)
            .Select(line => JsonDocument.Parse(line).RootElement.GetProperty("text").GetString()!).ToList();
        var random = new Random(5);
        for (int i = 0; i < 6; i++) texts.Add(Mutator.RandomText(random));
        return [.. texts.Select(t => System.Runtime.InteropServices.MemoryMarshal.AsBytes(t.AsSpan()).ToArray())];
    }

    /// <summary>The reference vocabulary's first 600 lines (cut at a line end, so the seed is valid UTF-8).</summary>
    private static byte[] VocabularyHead() =>
        Encoding.UTF8.GetBytes(string.Join("\n", File.ReadLines(TestData.PathOf("vocab.txt")).Take(600)) + "\n");

    private static IReadOnlyList<byte[]> ConfigSeeds() =>
    [
        File.ReadAllBytes(Path.Combine(TestData.Tiny, "open_clip_config.json")),
        File.ReadAllBytes(Path.Combine(TestData.ModelCard, "open_clip_config.2023.json")),
        File.ReadAllBytes(Path.Combine(TestData.ModelCard, "open_clip_config.current.json")),
    ];

    private const string SeedPart = "part-000001";

    /// <summary>A small index (two rows of 4-d vectors, one part), written as <c>index</c> writes one: file name → bytes.</summary>
    private static readonly Lazy<Dictionary<string, byte[]>> SeedIndex = new(() =>
    {
        using var scratch = new FuzzScratch();
        var identity = new ModelIdentity(new string('5', 64), new string('a', 64), new string('b', 64), null, 4, "fuzz");
        var manifest = new IndexManifest { Model = identity, DType = EmbeddingDType.Float32, Root = "/data/images", Shard = Shard.Whole };
        using (var builder = new PartBuilder(scratch.Folder, manifest.NewPartName(), 2, 4, EmbeddingDType.Float32, identity.Id))
        {
            var modified = new DateTime(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc);
            builder.Add(new IndexRow("a.png", 10, modified, null, null), [1, 0, 0, 0]);
            builder.Add(new IndexRow("sub/b.png", 12, modified, null, null), [0, 1, 0, 0]);
            manifest.Parts.Add(builder.Complete());
        }
        manifest.Complete = true;
        manifest.Save(scratch.Folder);
        return Directory.GetFiles(scratch.Folder).ToDictionary(f => Path.GetFileName(f), File.ReadAllBytes);
    });

    private static byte[] IndexFile(string name) =>
        SeedIndex.Value.TryGetValue(name, out var bytes) ? bytes : throw new InvalidOperationException($"the seed index has no {name}: {string.Join(", ", SeedIndex.Value.Keys)}");
}
