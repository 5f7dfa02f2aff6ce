using ManagedClip.Imaging;

namespace ManagedClip;

/// <summary>
/// An image to embed: a file on disk or encoded bytes (PNG, JPEG, DICOM, …) with a name for error messages, and for
/// a multi-frame DICOM file the frame to use.
/// </summary>
public sealed class ImageInput
{
    /// <summary>
    /// Most bytes <see cref="FromStream"/> and <see cref="FromStreamAsync"/> read unless told otherwise (256 MiB): more
    /// than any image within the 100-megapixel limit needs in a compressed format, and a bound on what a caller's
    /// stream (an upload, a pipe) can make the library hold in memory.
    /// </summary>
    public const int DefaultMaxStreamBytes = 256 << 20;

    /// <summary>Path or caller-chosen name, used in error messages and results.</summary>
    public string Name { get; }

    /// <summary>Encoded bytes, or null when the image is read from <see cref="Name"/> as a file.</summary>
    public ReadOnlyMemory<byte>? EncodedBytes { get; }

    /// <summary>Zero-based frame of a multi-frame DICOM file (0, the first, by default; other formats have only 0).</summary>
    public int Frame { get; }

    private ImageInput(string name, ReadOnlyMemory<byte>? bytes, int frame)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentOutOfRangeException.ThrowIfNegative(frame);
        Name = name;
        EncodedBytes = bytes;
        Frame = frame;
    }

    /// <summary>An image file on disk.</summary>
    public static ImageInput FromFile(string path) => new(path, null, 0);

    /// <summary>An encoded image held in memory (the bytes are used as they are, not copied).</summary>
    public static ImageInput FromBytes(ReadOnlyMemory<byte> encoded, string name) => new(name, encoded, 0);

    /// <summary>
    /// An encoded image read from <paramref name="stream"/> (from its current position to its end) into memory now;
    /// the stream is not disposed.
    /// </summary>
    /// <param name="stream">An upload, a blob, a pipe: anything readable.</param>
    /// <param name="name">Used in error messages and results (a file name, an upload's name).</param>
    /// <param name="maxBytes">More bytes than this is an error, found without reading past it.</param>
    /// <exception cref="InvalidDataException">The stream is empty or longer than <paramref name="maxBytes"/>.</exception>
    public static ImageInput FromStream(Stream stream, string name, int maxBytes = DefaultMaxStreamBytes)
    {
        var reader = new BoundedRead(stream, name, maxBytes);
        while (reader.Next() is { } chunk) reader.Advance(stream.Read(chunk.Span));
        return FromBytes(reader.Finish(), name);
    }

    /// <summary>As <see cref="FromStream"/>, reading asynchronously.</summary>
    /// <param name="stream">An upload, a blob, a pipe: anything readable.</param>
    /// <param name="name">Used in error messages and results (a file name, an upload's name).</param>
    /// <param name="maxBytes">More bytes than this is an error, found without reading past it.</param>
    /// <param name="cancellationToken">Stops the read between chunks.</param>
    /// <exception cref="InvalidDataException">The stream is empty or longer than <paramref name="maxBytes"/>.</exception>
    public static async Task<ImageInput> FromStreamAsync(Stream stream, string name, int maxBytes = DefaultMaxStreamBytes,
        CancellationToken cancellationToken = default)
    {
        var reader = new BoundedRead(stream, name, maxBytes);
        while (reader.Next() is { } chunk) reader.Advance(await stream.ReadAsync(chunk, cancellationToken).ConfigureAwait(false));
        return FromBytes(reader.Finish(), name);
    }

    /// <summary>The same image, but frame <paramref name="frame"/> (zero-based) of a multi-frame DICOM file.</summary>
    /// <example><c>ImageInput.FromFile("cine.dcm").WithFrame(3)</c></example>
    public ImageInput WithFrame(int frame) => new(Name, EncodedBytes, frame);

    /// <inheritdoc/>
    public override string ToString() => Name;

    /// <summary>
    /// Reads a stream into one array that grows as needed, never to more than the cap plus one byte (the byte that
    /// proves the stream is too long). A seekable stream's length sizes the array at once, or refuses it unread.
    /// </summary>
    private sealed class BoundedRead
    {
        private const int FirstCapacity = 64 << 10;

        private readonly string name;
        private readonly int maxBytes;
        private byte[] buffer;
        private int length;
        private bool ended;

        public BoundedRead(Stream stream, string name, int maxBytes)
        {
            ArgumentNullException.ThrowIfNull(stream);
            ArgumentNullException.ThrowIfNull(name);
            if (maxBytes < 1 || maxBytes == int.MaxValue)
                throw new ArgumentOutOfRangeException(null, $"maxBytes is {maxBytes}; it must be between 1 and {int.MaxValue - 1:N0}");
            if (!stream.CanRead) throw new ArgumentException($"{UserText.Quote(name)}: the stream cannot be read");
            this.name = name;
            this.maxBytes = maxBytes;
            long? remaining = stream.CanSeek ? Math.Max(0, stream.Length - stream.Position) : null;
            if (remaining > maxBytes) throw TooLong($"is {remaining:N0} bytes");
            // One byte more than a known length, so the read that finds the end needs no second array.
            buffer = new byte[remaining is { } known ? (int)known + 1 : Math.Min(FirstCapacity, maxBytes + 1)];
        }

        /// <summary>Where the next read goes, or null once the stream has ended.</summary>
        public Memory<byte>? Next()
        {
            if (ended) return null;
            if (length == buffer.Length) Array.Resize(ref buffer, (int)Math.Min((long)buffer.Length * 2, maxBytes + 1L));
            return buffer.AsMemory(length);
        }

        public void Advance(int read)
        {
            if (read == 0) ended = true;
            length += read;
            if (length > maxBytes) throw TooLong("goes on past that");
        }

        public ReadOnlyMemory<byte> Finish()
        {
            if (length == 0) throw InvalidImage.Error(name, "the stream is empty (0 bytes)");
            return buffer.AsMemory(0, length);
        }

        private InvalidDataException TooLong(string actual) =>
            new($"{UserText.Quote(name)}: the image stream {actual}, more than the {maxBytes:N0}-byte limit for an image read from a stream");
    }
}
