using System.Runtime.Intrinsics;
using System.Security.Cryptography;
using ManagedClip.Kernels;
using ManagedClip.Model;

namespace ManagedClip.IO.Formats;

/// <summary>
/// Builds a packed-weights file (<see cref="PackedWeightsHeader"/>): each weight the towers pack is read from the
/// checkpoint (F16/BF16 converted) and packed by <see cref="WeightMatrix.Packed"/>, the very code that packs it in
/// memory (float32 panels, or bf16/int8 with their per-channel arrays), and its arrays
/// (<see cref="WeightMatrix.VisitArrays"/>) are written each at the next 4096-byte boundary, one matrix at a time.
/// </summary>
/// <remarks>
/// The file is written under a temporary name in the target folder, space reserved up front (a full disk fails at
/// once, not after 700 MB), flushed to disk, then renamed into place: readers never see a partial file, and two
/// processes building at once each rename a complete file (the last one stays; a process that mapped the other keeps
/// its mapping, which outlives the rename).
/// </remarks>
internal static unsafe class PackedWeightsWriter
{
    /// <summary>Writes the packed weights of <paramref name="matrices"/> from <paramref name="store"/> to <paramref name="path"/>.</summary>
    /// <param name="path">The file to make (replaced if it exists).</param>
    /// <param name="store">The checkpoint.</param>
    /// <param name="matrices">The weights the towers ask packed, in order, each in its element type (<see cref="Distribution.PackedWeightsCache.PackedWeights"/>).</param>
    /// <param name="source">The identity of the weights file now, recorded so later loads can tell it is still the same.</param>
    /// <exception cref="IOException">The folder cannot be written (read-only, full disk); nothing is left behind.</exception>
    /// <exception cref="UnauthorizedAccessException">No permission to write the folder.</exception>
    public static void Write(string path, TensorStore store, IReadOnlyList<PackedRequest> matrices, WeightsIdentity source)
    {
        var (entries, fileLength) = LayOut(matrices);
        var precision = matrices.Select(m => m.ElementType).FirstOrDefault(e => e != PanelElement.Float32);

        string fullPath = System.IO.Path.GetFullPath(path);
        string folder = System.IO.Path.GetDirectoryName(fullPath)!;
        Directory.CreateDirectory(folder);
        string temporary = System.IO.Path.Combine(folder, $".{System.IO.Path.GetFileName(fullPath)}.{Guid.NewGuid():N}.tmp");
        // The whole-file hash runs beside the packing: it reads the weights sequentially, the packing by tensor.
        var contentHash = Task.Run(() => HashWholeFile(store.SourcePath));
        try
        {
            using (var stream = new FileStream(temporary, new FileStreamOptions
            {
                Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None,
                PreallocationSize = fileLength, BufferSize = 0,
            }))
            {
                var handle = stream.SafeFileHandle;
                for (int i = 0; i < matrices.Count; i++)
                    entries[i] = entries[i] with { Sections = WriteMatrix(handle, store, matrices[i], entries[i].Sections) };
                var header = new PackedWeightsHeader
                {
                    PanelWidth = PanelPacking.PanelWidth,
                    VectorBits = (uint)(Vector512.IsHardwareAccelerated ? 512 : Vector256.IsHardwareAccelerated ? 256 : Vector128.IsHardwareAccelerated ? 128 : 0),
                    PackingVersion = LowPrecisionPacking.LayoutVersion,
                    Precision = PackedMatrixEntry.FromPanelElement(precision),
                    FileLength = fileLength,
                    Source = source,
                    SourceContentHash = contentHash.GetAwaiter().GetResult(),
                    Matrices = entries,
                };
                RandomAccess.Write(handle, header.Serialize(), 0);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temporary, fullPath, overwrite: true);
            // Each matrix was packed into fresh memory, now garbage: give it back before the process maps the file and
            // runs, rather than when the collector next gets round to the pinned heap.
            GC.Collect();
        }
        catch
        {
            try { contentHash.Wait(); } catch (AggregateException) { } // it reads the store, which the caller may close next
            File.Delete(temporary);
            throw;
        }
    }

    /// <summary>
    /// The table of a file holding <paramref name="matrices"/> (checksums empty) and the file's length. It is laid out
    /// before anything is packed: every array's size follows from the shape and element type.
    /// </summary>
    internal static (List<PackedMatrixEntry> Entries, long FileLength) LayOut(IReadOnlyList<PackedRequest> matrices)
    {
        var shapes = matrices.Select(m => WeightMatrix.ArrayShapes(m.ElementType, m.Rows, m.Columns)).ToList();
        int metadataLength = PackedWeightsHeader.MetadataLength(matrices.Select((m, i) => (m.Name, shapes[i].Select(a => a.Name))));
        var entries = new List<PackedMatrixEntry>(matrices.Count);
        long offset = PackedWeightsHeader.Align(metadataLength), fileLength = metadataLength;
        for (int i = 0; i < matrices.Count; i++)
        {
            var sections = new List<PackedSection>();
            foreach (var array in shapes[i])
            {
                sections.Add(new PackedSection(array.Name, array.Type, array.Count, offset, array.ByteLength, []));
                fileLength = offset + array.ByteLength;
                offset = PackedWeightsHeader.Align(fileLength);
            }
            entries.Add(new PackedMatrixEntry(matrices[i].Name, PackedMatrixEntry.FromPanelElement(matrices[i].ElementType), matrices[i].Rows, matrices[i].Columns, sections));
        }
        return (entries, fileLength);
    }

    /// <summary>Reads and packs one weight and writes its arrays where <paramref name="sections"/> say; returns them with their SHA-256.</summary>
    private static List<PackedSection> WriteMatrix(Microsoft.Win32.SafeHandles.SafeFileHandle handle, TensorStore store, PackedRequest m,
        IReadOnlyList<PackedSection> sections)
    {
        var weight = WeightMatrix.Packed(m.Rows, m.Columns, rowMajor =>
        {
            int at = 0;
            foreach (var part in m.Parts)
            {
                int length = checked((int)part.ElementCount);
                store.CopyFloat32(part.Name, rowMajor.Slice(at, length));
                at += length;
            }
        }, m.ElementType);
        var written = new List<PackedSection>(sections.Count);
        weight.VisitArrays((array, bytes) =>
        {
            var section = sections[written.Count];
            if (array.Name != section.Name || bytes.Length != section.ByteLength)
                throw new InvalidOperationException($"'{m.Name}': its array '{array.Name}' ({bytes.Length:N0} bytes) is not the '{section.Name}' ({section.ByteLength:N0} bytes) laid out for it");
            RandomAccess.Write(handle, bytes, section.Offset);
            written.Add(section with { Checksum = SHA256.HashData(bytes) });
        });
        if (written.Count != sections.Count) throw new InvalidOperationException($"'{m.Name}': {written.Count} arrays written, {sections.Count} laid out");
        return written;
    }

    private static byte[] HashWholeFile(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20, FileOptions.SequentialScan);
        return SHA256.HashData(stream);
    }
}
