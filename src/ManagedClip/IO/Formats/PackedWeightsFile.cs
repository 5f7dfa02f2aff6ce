using System.Security.Cryptography;
using ManagedClip.Kernels;
using ManagedClip.Model;

namespace ManagedClip.IO.Formats;

/// <summary>
/// A packed-weights file mapped read-only: the block weights of both towers already in the GEMM's panel layout
/// [⌈N/32⌉, K, 32], so loading a model is a map plus the small tensors, and every process using the same file shares
/// one copy of its pages through the page cache. The format is <see cref="PackedWeightsHeader"/>; files are made by
/// <see cref="PackedWeightsWriter"/>.
/// </summary>
/// <remarks>
/// A file is trusted only after its metadata checks out against what the loading code expects: the checksum over
/// header and table, layout version, panel width, file length, every matrix's name, shape, element type and aligned
/// non-overlapping range, and the identity of the weights file it was built from. The panels' own checksums (700 MB of
/// SHA-256, about half a second) are verified on request (<c>verifyPanels</c>: <c>managedclip prepare</c>,
/// <see cref="ClipModelOptions.VerifyPackedWeights"/>), and when a file is built. Like the mapped safetensors file, the
/// mapping must not be truncated in place while it is used (our writers only ever rename whole files into place).
/// </remarks>
internal sealed unsafe class PackedWeightsFile : IDisposable
{
    private readonly MappedFile file;
    private readonly Dictionary<string, PackedMatrixEntry> matrices;

    private PackedWeightsFile(MappedFile file, PackedWeightsHeader header)
    {
        this.file = file;
        Header = header;
        matrices = header.Matrices.ToDictionary(m => m.Name, StringComparer.Ordinal);
    }

    public string Path => file.Path;

    public long Length => file.Length;

    public PackedWeightsHeader Header { get; }

    /// <summary>
    /// Maps <paramref name="path"/> if it is a sound packed-weights file for exactly <paramref name="expected"/> (the
    /// weights the towers ask packed, in order) built from the weights file whose identity is <paramref name="source"/>.
    /// </summary>
    /// <exception cref="PackedWeightsRejectedException">Why the file cannot be used (it should be rebuilt).</exception>
    /// <exception cref="FileNotFoundException">There is no file.</exception>
    public static PackedWeightsFile Open(string path, IReadOnlyList<PackedRequest> expected, WeightsIdentity source, bool verifyPanels)
    {
        long length = GuardedFile.Check(path, "packed-weights file");
        var header = ReadHeader(path, length);
        if (source.DifferenceFrom(header.Source) is { } stale)
            throw new PackedWeightsRejectedException($"it is stale: {stale}");
        CheckTable(header, expected);
        var mapped = MappedFile.Open(path, "packed-weights file");
        try
        {
            // Between the check above and the map, another builder may have renamed a new file into place: it is
            // equally sound, but it is the one mapped, so its length must be the one checked.
            if (mapped.Length != header.FileLength)
                throw new PackedWeightsRejectedException("it was replaced while being opened");
            var packed = new PackedWeightsFile(mapped, header);
            if (verifyPanels) packed.VerifyPanels();
            return packed;
        }
        catch
        {
            mapped.Dispose();
            throw;
        }
    }

    /// <summary>Reads and checks the metadata with ordinary reads (nothing is mapped yet).</summary>
    private static PackedWeightsHeader ReadHeader(string path, long length)
    {
        using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        if (length < PackedWeightsHeader.FixedBytes)
            throw new PackedWeightsRejectedException($"it is {length:N0} bytes, shorter than its {PackedWeightsHeader.FixedBytes}-byte header");
        var fixedHeader = new byte[PackedWeightsHeader.FixedBytes];
        ReadAll(handle, fixedHeader, 0);
        int metadataLength = PackedWeightsHeader.ClaimedMetadataLength(fixedHeader, length); // bounded before allocating
        var metadata = new byte[metadataLength];
        ReadAll(handle, metadata, 0);
        return PackedWeightsHeader.Parse(metadata, length, PanelPacking.PanelWidth);
    }

    /// <summary>The file must hold exactly the matrices the towers ask for, in float32, with their shapes.</summary>
    private static void CheckTable(PackedWeightsHeader header, IReadOnlyList<PackedRequest> expected)
    {
        if (header.Matrices.Count != expected.Count)
            throw new PackedWeightsRejectedException($"it holds {header.Matrices.Count} matrices; this model packs {expected.Count} (another model or config)");
        for (int i = 0; i < expected.Count; i++)
        {
            var (have, want) = (header.Matrices[i], expected[i]);
            if (have.Name != want.Name || have.Rows != want.Rows || have.Columns != want.Columns)
                throw new PackedWeightsRejectedException($"matrix {i} is '{have.Name}' [{have.Rows}, {have.Columns}]; this model expects '{want.Name}' [{want.Rows}, {want.Columns}] (another model or config)");
            if (have.ElementType != PackedElementType.Float32)
                throw new PackedWeightsRejectedException($"matrix '{have.Name}' is stored as {have.ElementType}; float32 is expected");
            if (have.ByteLength != WeightMatrix.PanelLength(have.Rows, have.Columns) * sizeof(float) || have.ScaleByteLength != 0)
                throw new PackedWeightsRejectedException($"matrix '{have.Name}' has {have.ByteLength:N0} bytes; [{have.Rows}, {have.Columns}] in 32-wide float32 panels is {WeightMatrix.PanelLength(have.Rows, have.Columns) * sizeof(float):N0}");
        }
    }

    /// <summary>Recomputes every matrix's SHA-256 from the mapping (reads all of it).</summary>
    /// <exception cref="PackedWeightsRejectedException">Names the first matrix whose panels changed.</exception>
    public void VerifyPanels()
    {
        foreach (var m in Header.Matrices)
        {
            if (!PanelChecksum(file.Pointer(m.Offset, m.ByteLength), m.ByteLength).AsSpan().SequenceEqual(m.Checksum))
                throw new PackedWeightsRejectedException($"the panels of '{m.Name}' are damaged (checksum mismatch)");
        }
    }

    /// <summary>SHA-256 of <paramref name="length"/> bytes at <paramref name="start"/>, in pieces (spans hold at most 2 GiB).</summary>
    internal static byte[] PanelChecksum(byte* start, long length)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        for (long done = 0; done < length;)
        {
            int piece = (int)Math.Min(1 << 30, length - done);
            hash.AppendData(new ReadOnlySpan<byte>(start + done, piece));
            done += piece;
        }
        return hash.GetHashAndReset();
    }

    /// <summary>The weight <paramref name="request"/> names, its panels read where they lie in the mapping.</summary>
    public WeightMatrix Matrix(PackedRequest request)
    {
        if (!matrices.TryGetValue(request.Name, out var m) || m.Rows != request.Rows || m.Columns != request.Columns)
            throw new InvalidOperationException($"{UserText.Quote(Path)} holds no [{request.Rows}, {request.Columns}] matrix '{request.Name}'");
        return WeightMatrix.MappedPanels((float*)file.Pointer(m.Offset, m.ByteLength), m.Rows, m.Columns, owner: this);
    }

    /// <summary>Unmaps the file. The towers' weights point into it: dispose only when no call can run (ClipModel.Dispose).</summary>
    public void Dispose() => file.Dispose();

    private static void ReadAll(Microsoft.Win32.SafeHandles.SafeFileHandle handle, Span<byte> destination, long offset)
    {
        while (!destination.IsEmpty)
        {
            int read = RandomAccess.Read(handle, destination, offset);
            if (read == 0) throw new PackedWeightsRejectedException($"it ended at byte {offset:N0} while its header was read");
            destination = destination[read..];
            offset += read;
        }
    }
}
