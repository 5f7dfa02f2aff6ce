using System.Buffers;
using System.Runtime.Intrinsics;
using System.Security.Cryptography;
using ManagedClip.Kernels;
using ManagedClip.Model;

namespace ManagedClip.IO.Formats;

/// <summary>
/// Builds a packed-weights file (<see cref="PackedWeightsHeader"/>): each weight the towers pack is read from the
/// checkpoint (F16/BF16 converted), rearranged into panels exactly as <see cref="WeightMatrix.Packed"/> does in memory,
/// and written at the next 4096-byte boundary, one matrix at a time through pooled buffers.
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
    /// <param name="matrices">The weights the towers ask packed, in order (<see cref="Distribution.PackedWeightsCache.PackedWeights"/>).</param>
    /// <param name="source">The identity of the weights file now, recorded so later loads can tell it is still the same.</param>
    /// <exception cref="IOException">The folder cannot be written (read-only, full disk); nothing is left behind.</exception>
    /// <exception cref="UnauthorizedAccessException">No permission to write the folder.</exception>
    public static void Write(string path, TensorStore store, IReadOnlyList<PackedRequest> matrices, WeightsIdentity source)
    {
        int metadataLength = PackedWeightsHeader.MetadataLength(matrices.Select(m => m.Name));
        var entries = new List<PackedMatrixEntry>(matrices.Count);
        long offset = PackedWeightsHeader.Align(metadataLength);
        foreach (var m in matrices)
        {
            long bytes = WeightMatrix.PanelLength(m.Rows, m.Columns) * sizeof(float);
            entries.Add(new PackedMatrixEntry(m.Name, PackedElementType.Float32, m.Rows, m.Columns, offset, bytes, 0, 0, []));
            offset = PackedWeightsHeader.Align(offset + bytes);
        }
        long fileLength = entries.Count == 0 ? metadataLength : entries[^1].Offset + entries[^1].ByteLength;

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
                    entries[i] = entries[i] with { Checksum = WriteMatrix(handle, store, matrices[i], entries[i].Offset) };
                var header = new PackedWeightsHeader
                {
                    PanelWidth = PanelPacking.PanelWidth,
                    VectorBits = (uint)(Vector512.IsHardwareAccelerated ? 512 : Vector256.IsHardwareAccelerated ? 256 : Vector128.IsHardwareAccelerated ? 128 : 0),
                    FileLength = fileLength,
                    Source = source,
                    SourceContentHash = contentHash.GetAwaiter().GetResult(),
                    Matrices = entries,
                };
                RandomAccess.Write(handle, header.Serialize(), 0);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temporary, fullPath, overwrite: true);
        }
        catch
        {
            try { contentHash.Wait(); } catch (AggregateException) { } // it reads the store, which the caller may close next
            File.Delete(temporary);
            throw;
        }
    }

    /// <summary>Reads, packs and writes one weight at <paramref name="offset"/>; returns the SHA-256 of its panels.</summary>
    private static byte[] WriteMatrix(Microsoft.Win32.SafeHandles.SafeFileHandle handle, TensorStore store, PackedRequest m, long offset)
    {
        long rowMajorLength = (long)m.Rows * m.Columns, panelLength = WeightMatrix.PanelLength(m.Rows, m.Columns);
        if (panelLength > Array.MaxLength / sizeof(float))
            throw new InvalidDataException($"'{m.Name}' [{m.Rows}, {m.Columns}] is too large to pack");
        var rowMajor = ArrayPool<float>.Shared.Rent((int)rowMajorLength); // [N, K]
        var panels = ArrayPool<float>.Shared.Rent((int)panelLength);      // [⌈N/32⌉, K, 32]
        try
        {
            int at = 0;
            foreach (var part in m.Parts)
            {
                int length = checked((int)part.ElementCount);
                store.CopyFloat32(part.Name, rowMajor.AsSpan(at, length));
                at += length;
            }
            fixed (float* source = rowMajor)
            fixed (float* destination = panels)
            {
                WeightMatrix.PackRowMajor(source, m.Rows, m.Columns, destination);
                var bytes = new ReadOnlySpan<byte>(destination, (int)(panelLength * sizeof(float)));
                RandomAccess.Write(handle, bytes, offset);
                return SHA256.HashData(bytes);
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(rowMajor);
            ArrayPool<float>.Shared.Return(panels);
        }
    }

    private static byte[] HashWholeFile(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20, FileOptions.SequentialScan);
        return SHA256.HashData(stream);
    }
}
