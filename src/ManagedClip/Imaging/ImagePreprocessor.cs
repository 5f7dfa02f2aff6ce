using System.IO.MemoryMappedFiles;
using ManagedClip.IO;
using ManagedClip.Model;

namespace ManagedClip.Imaging;

/// <summary>
/// Turns an image file into the model's input, <c>float32 [3, size, size]</c>, exactly as open_clip 2.23's
/// eval transform does on top of torchvision 0.14 and Pillow 9.4:
/// <c>PIL.Image.open</c> (no EXIF rotation) → <c>Resize(size, bicubic)</c> of the shorter side →
/// <c>CenterCrop(size)</c> → <c>convert("RGB")</c> → <c>ToTensor</c> → <c>Normalize(mean, std)</c>.
/// PNG and JPEG inputs give the reference's pixels bit for bit (JPEG through a decoder exact with libjpeg-turbo
/// 2.1.5, which Pillow 9.4 uses). DICOM files are first rendered to an 8-bit L or RGB image
/// (<see cref="Dicom.DicomRendering"/>), then go the same way. Instances are immutable and thread-safe.
/// </summary>
public sealed class ImagePreprocessor
{
    /// <summary>Default pixel limit (100 megapixels): larger images are refused before decoding.</summary>
    public const long DefaultMaxPixels = 100_000_000;

    // Mode RGBA keeps 4 bytes per pixel in one array, so the limit must keep that below the array size limit.
    private const long LargestAllowedMaxPixels = 500_000_000;

    private readonly float[] normalized; // [3, 256]: ((float)v / 255 − mean[c]) / std[c] for every byte value v

    /// <summary>Creates a preprocessor.</summary>
    /// <param name="imageSize">Side of the square model input (224 for BiomedCLIP).</param>
    /// <param name="mean">Per-channel mean, R, G, B.</param>
    /// <param name="std">Per-channel standard deviation, R, G, B (positive).</param>
    /// <param name="maxPixels">Images with more pixels (width × height, read from the header) are refused.</param>
    public ImagePreprocessor(int imageSize, ReadOnlySpan<float> mean, ReadOnlySpan<float> std, long maxPixels = DefaultMaxPixels)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(imageSize, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(imageSize, 8192);
        if (mean.Length != 3) throw new ArgumentException($"mean needs 3 values (R, G, B), got {mean.Length}", nameof(mean));
        if (std.Length != 3) throw new ArgumentException($"std needs 3 values (R, G, B), got {std.Length}", nameof(std));
        foreach (float s in std)
        {
            if (!(s > 0) || !float.IsFinite(s)) throw new ArgumentException($"std values must be positive and finite, got {s}", nameof(std));
        }
        ArgumentOutOfRangeException.ThrowIfLessThan(maxPixels, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(maxPixels, LargestAllowedMaxPixels);

        ImageSize = imageSize;
        MaxPixels = maxPixels;
        normalized = new float[3 * 256];
        for (int c = 0; c < 3; c++)
        {
            for (int v = 0; v < 256; v++)
            {
                // ToTensor divides by 255, Normalize subtracts then divides: all in float32, in this order.
                normalized[c * 256 + v] = ((float)v / 255f - mean[c]) / std[c];
            }
        }
    }

    /// <summary>A preprocessor for a model configuration (its image size, mean and std).</summary>
    public static ImagePreprocessor For(ClipConfig config, long maxPixels = DefaultMaxPixels) =>
        new(config.Vision.ImageSize, config.Mean, config.Std, maxPixels);

    /// <summary>Side of the square output.</summary>
    public int ImageSize { get; }

    /// <summary>Largest accepted width × height.</summary>
    public long MaxPixels { get; }

    /// <summary>Floats per image: 3 · size · size.</summary>
    public int OutputLength => 3 * ImageSize * ImageSize;

    /// <summary>Reads and preprocesses the image file at <paramref name="path"/> (format detected from content).</summary>
    /// <returns>float32 [3, size, size], channels R, G, B.</returns>
    /// <exception cref="InvalidDataException">Empty, truncated, not an image, unsupported or over the pixel limit.</exception>
    /// <exception cref="FileNotFoundException">No such file.</exception>
    public float[] Preprocess(string path)
    {
        var output = new float[OutputLength];
        Preprocess(path, output);
        return output;
    }

    /// <summary>Preprocesses the image file at <paramref name="path"/> into <paramref name="destination"/> ([3, size, size]).</summary>
    /// <param name="path">Image file (format detected from content).</param>
    /// <param name="destination">float32 [3, size, size].</param>
    /// <param name="frame">Zero-based frame of a multi-frame DICOM file (other formats: 0).</param>
    public void Preprocess(string path, Span<float> destination, int frame = 0)
    {
        CheckDestination(destination);
        using var file = MappedImageFile.Open(path);
        Preprocess(file.Bytes, path, destination, frame);
    }

    /// <summary>Preprocesses an encoded image held in memory; <paramref name="sourceName"/> names it in errors.</summary>
    /// <returns>float32 [3, size, size], channels R, G, B.</returns>
    /// <exception cref="InvalidDataException">Empty, truncated, not an image, unsupported or over the pixel limit.</exception>
    public float[] Preprocess(ReadOnlySpan<byte> encoded, string sourceName)
    {
        var output = new float[OutputLength];
        Preprocess(encoded, sourceName, output);
        return output;
    }

    /// <summary>Preprocesses an encoded image held in memory into <paramref name="destination"/> ([3, size, size]).</summary>
    /// <param name="encoded">The file's bytes.</param>
    /// <param name="sourceName">Name for error messages.</param>
    /// <param name="destination">float32 [3, size, size].</param>
    /// <param name="frame">Zero-based frame of a multi-frame DICOM file (other formats: 0).</param>
    public void Preprocess(ReadOnlySpan<byte> encoded, string sourceName, Span<float> destination, int frame = 0)
    {
        CheckDestination(destination);
        var rgb = new byte[ImageSize * ImageSize * 3];
        using (var image = ImageDecoding.Open(encoded, sourceName, new ImageLimits(MaxPixels, ImageSize), frame))
            ResizeCropToRgb(image, rgb);
        Normalize(rgb, destination);
    }

    /// <summary>
    /// The exact RGB image the model is given, before ToTensor and Normalize: decode (DICOM rendered to 8 bits),
    /// resize, center-crop, <c>convert("RGB")</c>. Write it with <see cref="PngWriter"/> to see what the model saw.
    /// </summary>
    /// <param name="path">Image file (format detected from content).</param>
    /// <param name="frame">Zero-based frame of a multi-frame DICOM file (other formats: 0).</param>
    /// <returns>uint8 [size, size, 3], rows top to bottom, channels R, G, B.</returns>
    /// <exception cref="InvalidDataException">Empty, truncated, not an image, unsupported or over the pixel limit.</exception>
    public byte[] PreprocessToRgb(string path, int frame = 0)
    {
        using var file = MappedImageFile.Open(path);
        return PreprocessToRgb(file.Bytes, path, frame);
    }

    /// <summary>The exact RGB image the model is given, for an encoded image held in memory (see <see cref="PreprocessToRgb(string, int)"/>).</summary>
    /// <returns>uint8 [size, size, 3].</returns>
    public byte[] PreprocessToRgb(ReadOnlySpan<byte> encoded, string sourceName, int frame = 0)
    {
        var rgb = new byte[ImageSize * ImageSize * 3];
        using (var image = ImageDecoding.Open(encoded, sourceName, new ImageLimits(MaxPixels, ImageSize), frame))
            ResizeCropToRgb(image, rgb);
        return rgb;
    }

    /// <summary>Step 1: the decoded image in its Pillow mode, copied into arrays (tests).</summary>
    internal NativeImage Decode(ReadOnlySpan<byte> encoded, string sourceName, int frame = 0)
    {
        using var image = ImageDecoding.Open(encoded, sourceName, new ImageLimits(MaxPixels, ImageSize), frame);
        return NativeImage.CopyOf(image);
    }

    /// <summary>
    /// Steps 2–3: resize and center-crop, still in the image's own mode (what Pillow holds before convert). Only the
    /// crop's window of the resized image is computed (<see cref="PillowResize.Window"/>): same bytes, and the cost
    /// no longer grows with the aspect ratio.
    /// </summary>
    internal NativeImage ResizeAndCrop(PixelRows image)
    {
        var (width, height) = TorchvisionGeometry.ResizedSize(image.Width, image.Height, ImageSize);
        var (left, top) = TorchvisionGeometry.CenterCropOffset(width, height, ImageSize);
        return PillowResize.Window(image, width, height, left, top, ImageSize, ImageSize);
    }

    /// <summary>Steps 2–4: resize, crop and convert to RGB. <paramref name="rgb"/>: uint8 [size, size, 3].</summary>
    internal void ResizeCropToRgb(PixelRows image, Span<byte> rgb) => PillowConvert.ToRgb(ResizeAndCrop(image), rgb);

    /// <summary>Step 5: ToTensor + Normalize, HWC bytes → CHW floats. <paramref name="rgb"/>: [size, size, 3]; <paramref name="destination"/>: [3, size, size].</summary>
    internal void Normalize(ReadOnlySpan<byte> rgb, Span<float> destination)
    {
        int pixels = ImageSize * ImageSize;
        var red = destination[..pixels];
        var green = destination.Slice(pixels, pixels);
        var blue = destination.Slice(2 * pixels, pixels);
        var table = normalized.AsSpan();
        for (int i = 0; i < pixels; i++)
        {
            red[i] = table[rgb[3 * i]];
            green[i] = table[256 + rgb[3 * i + 1]];
            blue[i] = table[512 + rgb[3 * i + 2]];
        }
    }

    private void CheckDestination(Span<float> destination)
    {
        if (destination.Length != OutputLength)
            throw new ArgumentException($"destination must hold 3 x {ImageSize} x {ImageSize} = {OutputLength} floats, got {destination.Length}", nameof(destination));
    }

    /// <summary>
    /// An image file mapped read-only: decoding works on the file in place, without a second copy of it in memory.
    /// </summary>
    internal sealed unsafe class MappedImageFile : IDisposable
    {
        private readonly FileStream file;
        private readonly MemoryMappedFile map;
        private readonly MemoryMappedViewAccessor view;
        private readonly byte* start;
        private readonly int length;

        private MappedImageFile(FileStream file, MemoryMappedFile map, MemoryMappedViewAccessor view, int length)
        {
            this.file = file;
            this.map = map;
            this.view = view;
            this.length = length;
            byte* pointer = null;
            view.SafeMemoryMappedViewHandle.AcquirePointer(ref pointer);
            start = pointer + view.PointerOffset;
        }

        public ReadOnlySpan<byte> Bytes => new(start, length);

        public static MappedImageFile Open(string path)
        {
            // Regular files only: a pipe or device is refused without being opened for reading.
            var file = GuardedFile.OpenRead(path, "image");
            MemoryMappedFile? map = null;
            try
            {
                long length = file.Length;
                if (length == 0) throw InvalidImage.Error(path, "the file is empty (0 bytes)");
                if (length > int.MaxValue) throw InvalidImage.Error(path, $"the file is {length:N0} bytes; files over 2 GiB are not supported");
                map = MemoryMappedFile.CreateFromFile(file, null, 0, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: true);
                var view = map.CreateViewAccessor(0, length, MemoryMappedFileAccess.Read);
                return new MappedImageFile(file, map, view, (int)length);
            }
            catch
            {
                map?.Dispose();
                file.Dispose();
                throw;
            }
        }

        public void Dispose()
        {
            view.SafeMemoryMappedViewHandle.ReleasePointer();
            view.Dispose();
            map.Dispose();
            file.Dispose();
        }
    }
}
