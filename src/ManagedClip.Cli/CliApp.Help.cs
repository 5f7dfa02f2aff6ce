namespace ManagedClip.Cli;

/// <summary>The examples <c>--help</c> shows under each command (runnable in a checkout, with the tiny model).</summary>
internal static partial class CliApp
{
    private const string Tiny = "--model testdata/reference/tiny";

    private static readonly string[] RootExamples =
    [
        $"managedclip classify {Tiny} --labels \"brain MRI, chest X-ray\" testdata/model-card/images/brain_MRI.jpg",
        "managedclip download                      # the real model (784 MB) into the cache",
        "managedclip classify --help               # each command's options and examples",
    ];

    private static readonly Dictionary<string, string[]> Examples = new()
    {
        ["classify"] =
        [
            $"managedclip classify {Tiny} --labels \"brain MRI, chest X-ray, bone X-ray\" testdata/model-card/images/brain_MRI.jpg",
            $"managedclip classify {Tiny} --labels-file labels.txt --top-k 3 --format csv scans/ > results.csv",
            "managedclip classify --labels 'adenocarcinoma, \"carcinoma, squamous cell\", normal' slide.png   # quote a label with a comma",
            "managedclip classify --labels \"brain MRI, chest X-ray\" --format jsonl -- -scan.png          # after --, a path may start with -",
        ],
        ["score"] =
        [
            $"managedclip score {Tiny} --request request.json",
            $"managedclip score {Tiny} --request - < request.json",
        ],
        ["embed"] =
        [
            $"managedclip embed {Tiny} --image testdata/reference/images/ihc.png testdata/reference/images/cell.png",
            $"managedclip embed {Tiny} --text \"chest X-ray\" \"brain MRI\" --out prompts.safetensors",
        ],
        ["preprocess"] =
        [
            "managedclip preprocess testdata/model-card/images/brain_MRI.jpg testdata/reference/dicom/CT_small.dcm --out seen/",
            "managedclip preprocess cine.dcm --frame 3 --out seen/ --force          # a later frame of a multi-frame file",
        ],
        ["tokenize"] =
        [
            $"managedclip tokenize {Tiny} \"this is a photo of adenocarcinoma histopathology\"",
            $"managedclip tokenize {Tiny} --tokens \"Röntgen imaging of the thorax\"",
        ],
        ["index"] =
        [
            $"managedclip index {Tiny} testdata/reference/images --out images.index",
            $"managedclip index {Tiny} scans/ --out scans.index --dtype f16                  # half the size",
            $"managedclip index {Tiny} scans/ --out shards/2 --shard 2/4                     # one of four shards",
        ],
        ["merge"] =
        [
            "managedclip merge shards/0 shards/1 shards/2 shards/3 --out scans.index",
        ],
        ["search"] =
        [
            $"managedclip search {Tiny} --index images.index --text \"immunohistochemistry\" -k 5",
            $"managedclip search {Tiny} --index images.index --image testdata/reference/images/ihc.png",
            $"managedclip search {Tiny} --index images.index --row ihc.png                   # images like an indexed one",
        ],
        ["serve"] =
        [
            $"managedclip serve {Tiny} --port 8080 --index images.index      # then open http://127.0.0.1:8080/",
            "curl -s -F image=@brain_MRI.jpg -F labels='brain MRI, chest X-ray' http://127.0.0.1:8080/classify",
            "curl -s -F image=@a.png -F text='brain MRI' http://127.0.0.1:8080/embed",
            "curl -s -H 'Content-Type: application/json' -d '{\"text\": \"brain MRI\", \"k\": 5}' http://127.0.0.1:8080/search",
            $"ASPNETCORE_URLS=http://0.0.0.0:8080 managedclip serve {Tiny}            # every interface (a container)",
        ],
        ["download"] =
        [
            "managedclip download",
            "HF_ENDPOINT=https://hf-mirror.example HF_TOKEN=hf_xxx managedclip download --out models/biomedclip",
        ],
        ["convert"] =
        [
            "managedclip convert open_clip_pytorch_model.bin open_clip_model.safetensors",
        ],
        ["prepare"] =
        [
            "managedclip prepare --model models/biomedclip",
            "managedclip prepare --model models/biomedclip --precision all   # fp32, bf16 and int8 files",
            "managedclip prepare --model /opt/biomedclip --packed-dir /opt/biomedclip-packed   # then MANAGEDCLIP_PACKED_DIR=/opt/biomedclip-packed",
        ],
        ["synth"] =
        [
            "managedclip synth --out /tmp/biomedclip-synthetic --vocab testdata/reference/vocab.txt",
        ],
    };
}
