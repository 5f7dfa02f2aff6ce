using ManagedClip.IO.Formats;
using ManagedClip.IO.Distribution;
using System.CommandLine;
using ManagedClip.Imaging;
using ManagedClip.IO;
using ManagedClip.Model;

namespace ManagedClip.Cli;

internal static partial class CliApp
{
    /// <summary>
    /// <c>managedclip preprocess IMAGE... --out DIR [--force]</c>: writes, for each input, the exact RGB image the
    /// model is given (DICOM rendered, resized, center-cropped) as <c>DIR/&lt;name&gt;.png</c>, so a user can see what
    /// the model saw. Needs no weights. Nothing is written when an output name is taken twice, would replace an
    /// input, or exists without <c>--force</c>; an input that cannot be read is reported and the others still written.
    /// </summary>
    private static Command PreprocessCommand(TextWriter output, TextWriter error)
    {
        var model = new Option<string?>("--model") { Description = "Take the image size from this model directory's config (default: BiomedCLIP's, 224)." };
        var outDir = new Option<string>("--out") { Description = "Folder for the PNG files (created if missing).", Required = true };
        var force = new Option<bool>("--force") { Description = "Replace existing PNG files." };
        var frame = new Option<int>("--frame") { Description = "Frame of multi-frame DICOM files, numbered from 0.", DefaultValueFactory = _ => 0 };
        var images = new Argument<string[]>("IMAGE") { Description = "Image files (PNG, JPEG, DICOM, …).", Arity = ArgumentArity.OneOrMore };
        var command = new Command("preprocess", "Write the exact 224x224 RGB image the model sees for each input as PNG: JSON array of {\"input\", \"output\"} (or {\"input\", \"error\"}) in input order.")
        {
            model, outDir, force, frame, images,
        };
        command.SetAction(parse =>
        {
            var inputs = parse.GetValue(images)!;
            string folder = parse.GetValue(outDir)!;
            int frameIndex = parse.GetValue(frame);
            if (frameIndex < 0) throw new UsageException("--frame must be 0 or more");
            var outputs = PreprocessOutputs(inputs, folder, parse.GetValue(force));

            string? modelDirectory = parse.GetValue(model);
            var config = modelDirectory is null ? ClipConfig.BiomedClip : ModelDirectory.Resolve(modelDirectory).Config;
            var preprocessor = ImagePreprocessor.For(config);
            int size = preprocessor.ImageSize;

            var problems = new string?[inputs.Length];
            for (int i = 0; i < inputs.Length; i++)
            {
                try
                {
                    var rgb = preprocessor.PreprocessToRgb(inputs[i], frameIndex);
                    AtomicFile.Write(outputs[i], overwrite: parse.GetValue(force), stream => PngWriter.WriteRgb(stream, rgb, size, size));
                }
                catch (Exception e) when (CliErrors.IsUserError(e))
                {
                    problems[i] = OneLine(e.Message);
                    error.WriteLine($"managedclip: {problems[i]}");
                }
            }

            WriteJson(output, writer =>
            {
                writer.WriteStartArray();
                for (int i = 0; i < inputs.Length; i++)
                {
                    writer.WriteStartObject();
                    writer.WriteString("input", inputs[i]);
                    if (problems[i] is { } problem) writer.WriteString("error", problem);
                    else writer.WriteString("output", outputs[i]);
                    writer.WriteEndObject();
                }
                writer.WriteEndArray();
            });
            return problems.Any(p => p != null) ? 1 : 0;
        });
        return command;
    }

    /// <summary>
    /// <c>DIR/&lt;input name without extension&gt;.png</c> for each input, checked before anything is written: no two
    /// inputs share an output, no output is an input, and no output exists unless <paramref name="force"/>.
    /// </summary>
    private static string[] PreprocessOutputs(string[] inputs, string folder, bool force)
    {
        if (File.Exists(folder)) throw new UsageException($"--out {folder} is a file; give a folder");
        var outputs = inputs.Select(input => Path.Combine(folder, Path.GetFileNameWithoutExtension(input) + ".png")).ToArray();
        var comparer = OperatingSystem.IsLinux() ? StringComparer.Ordinal : StringComparer.OrdinalIgnoreCase;
        var inputPaths = inputs.Select(Path.GetFullPath).ToHashSet(comparer);
        var taken = new Dictionary<string, string>(comparer);
        for (int i = 0; i < inputs.Length; i++)
        {
            string full = Path.GetFullPath(outputs[i]);
            if (taken.TryGetValue(full, out var other))
                throw new UsageException($"{other} and {inputs[i]} would both be written to {outputs[i]}; preprocess them into different folders");
            taken[full] = inputs[i];
            if (inputPaths.Contains(full)) throw new UsageException($"{outputs[i]} is one of the inputs; refusing to overwrite it");
            if (Directory.Exists(full)) throw new UsageException($"{outputs[i]} is a folder");
            if (!force && File.Exists(full)) throw new UsageException($"{outputs[i]} exists; pass --force to replace it");
        }
        return outputs;
    }
}
