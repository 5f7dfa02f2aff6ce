using System.Security.Cryptography;
using ManagedClip.Kernels;
using ManagedClip.Model;

namespace ManagedClip.IO.Formats;

/// <summary>
/// A packed-weights file mapped read-only: the block weights of both towers already in the GEMM's panel layout
/// (float32 [⌈N/32⌉, K, 32], or the bf16 and int8 layouts of <see cref="LowPrecisionPacking"/> with their per-channel
/// arrays), so loading a model is a map plus the small tensors, and every process using the same file shares one copy
/// of its pages through the page cache. The format is <see cref="PackedWeightsHeader"/>; files are made by
/// <see cref="PackedWeightsWriter"/>.
/// </summary>
/// <remarks>
/// A file is trusted only after its metadata checks out against what the loading code expects: the checksum over
/// header and table, layout and packing versions, panel width, file length, every matrix's name, shape, element type,
/// arrays (<see cref="WeightMatrix.ArrayShapes"/>) and aligned non-overlapping ranges, and the identity of the weights
/// file it was built from. The arrays' own checksums (700 MB of SHA-256, about half a second) are verified on request (<c>verifyPanels</c>: <c>managedclip prepare</c>,
/// <see cref="ClipModelOptions.VerifyPackedWeights"/>), and when a file is built. Like the mapped safetensors file, the
/// mapping must not be truncated in place while it is used (our writers only ever rename whole files into place).
/// </remarks>
internal sealed unsafe class PackedWeightsFile : IDisposable
{
    private readonly MappedFile file;
    private readonly Dictionary<string, WeightMatrix> matrices; // by name, pointing into the mapping

    private PackedWeightsFile(MappedFile file, PackedWeightsHeader header)
    {
        this.file = file;
        Header = header;
        matrices = new Dictionary<string, WeightMatrix>(header.Matrices.Count, StringComparer.Ordinal);
        foreach (var m in header.Matrices)
        {
            var arrays = m.Sections.Select(s => new StoredWeightArray(s.Name, s.Type, s.Count, (nint)file.Pointer(s.Offset, s.ByteLength))).ToList();
            try
            {
                matrices.Add(m.Name, WeightMatrix.FromArrays(PackedMatrixEntry.ToPanelElement(m.ElementType)!.Value, m.Rows, m.Columns, arrays, owner: this));
            }
            catch (InvalidDataException e)
            {
                throw new PackedWeightsRejectedException($"matrix '{m.Name}': {e.Message}");
            }
        }
    }

    public string Path => file.Path;

    public long Length => file.Length;

    public PackedWeightsHeader Header { get; }

    /// <summary>
    /// Maps <paramref name="path"/> if it is a sound packed-weights file for exactly <paramref name="expected"/> (the
    /// weights the towers ask packed, in order, each in its element type) built from the weights file whose identity is
    /// <paramref name="source"/>.
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

    /// <summary>
    /// The file must hold exactly the matrices the towers ask for, with their shapes and element types, made by this
    /// version's packing; each matrix's arrays are checked when the weights are made (<see cref="WeightMatrix.FromArrays"/>).
    /// </summary>
    private static void CheckTable(PackedWeightsHeader header, IReadOnlyList<PackedRequest> expected)
    {
        var precision = PackedMatrixEntry.FromPanelElement(expected.Select(m => m.ElementType).FirstOrDefault(e => e != PanelElement.Float32));
        if (header.Precision != precision)
            throw new PackedWeightsRejectedException($"it holds {Describe(header.Precision)} weights; this model is loaded in {Describe(precision)}");
        if (precision != PackedElementType.Float32 && header.PackingVersion != LowPrecisionPacking.LayoutVersion)
            throw new PackedWeightsRejectedException($"its {Describe(precision)} weights were packed by packing version {header.PackingVersion}; this ManagedClip packs version {LowPrecisionPacking.LayoutVersion}");
        if (header.Matrices.Count != expected.Count)
            throw new PackedWeightsRejectedException($"it holds {header.Matrices.Count} matrices; this model packs {expected.Count} (another model or config)");
        for (int i = 0; i < expected.Count; i++)
        {
            var (have, want) = (header.Matrices[i], expected[i]);
            if (have.Name != want.Name || have.Rows != want.Rows || have.Columns != want.Columns)
                throw new PackedWeightsRejectedException($"matrix {i} is '{have.Name}' [{have.Rows}, {have.Columns}]; this model expects '{want.Name}' [{want.Rows}, {want.Columns}] (another model or config)");
            var wantType = PackedMatrixEntry.FromPanelElement(want.ElementType);
            if (have.ElementType != wantType)
                throw new PackedWeightsRejectedException($"matrix '{have.Name}' is stored as {Describe(have.ElementType)}; {Describe(wantType)} is expected");
        }
    }

    private static string Describe(PackedElementType type) => type switch
    {
        PackedElementType.Float32 => "float32",
        PackedElementType.BFloat16 => "bf16",
        PackedElementType.Int8 => "int8",
        _ => $"element type {(uint)type}",
    };

    /// <summary>Recomputes every array's SHA-256 from the mapping (reads all of it).</summary>
    /// <exception cref="PackedWeightsRejectedException">Names the first matrix whose arrays changed.</exception>
    public void VerifyPanels()
    {
        foreach (var m in Header.Matrices)
            foreach (var section in m.Sections)
            {
                if (!PanelChecksum(file.Pointer(section.Offset, section.ByteLength), section.ByteLength).AsSpan().SequenceEqual(section.Checksum))
                    throw new PackedWeightsRejectedException($"the {section.Name} of '{m.Name}' are damaged (checksum mismatch)");
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
        if (!matrices.TryGetValue(request.Name, out var m) || m.RowCount != request.Rows || m.ColumnCount != request.Columns || m.ElementType != request.ElementType)
            throw new InvalidOperationException($"{UserText.Quote(Path)} holds no [{request.Rows}, {request.Columns}] {request.ElementType} matrix '{request.Name}'");
        return m;
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
