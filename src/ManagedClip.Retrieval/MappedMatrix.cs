using System.IO.MemoryMappedFiles;
using System.Numerics.Tensors;

namespace ManagedClip.Retrieval;

/// <summary>
/// One part's embeddings, an .npy matrix [rows, E] mapped read-only. Nothing is read until a row is touched, so a
/// search's resident memory is the pages it scans (which the kernel may drop again), not the index size.
/// </summary>
internal sealed unsafe class MappedMatrix : IDisposable
{
    private readonly MemoryMappedFile? map;
    private readonly MemoryMappedViewAccessor? view;
    private byte* data; // the first row

    public string Path { get; }
    public long Rows { get; }
    public int Columns { get; }
    public EmbeddingDType DType { get; }

    private MappedMatrix(string path, long rows, int columns, EmbeddingDType dtype, MemoryMappedFile? map, MemoryMappedViewAccessor? view, byte* data)
    {
        Path = path;
        Rows = rows;
        Columns = columns;
        DType = dtype;
        this.map = map;
        this.view = view;
        this.data = data;
    }

    /// <summary>Maps an .npy part; its header must describe exactly the file's length.</summary>
    public static MappedMatrix Open(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        var (rows, columns, dtype, offset) = NpyFormat.ReadHeader(path, stream);
        if (rows == 0) return new MappedMatrix(path, 0, columns, dtype, null, null, null);
        var map = MemoryMappedFile.CreateFromFile(stream, null, 0, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: false);
        try
        {
            var view = map.CreateViewAccessor(0, stream.Length, MemoryMappedFileAccess.Read);
            byte* pointer = null;
            view.SafeMemoryMappedViewHandle.AcquirePointer(ref pointer);
            return new MappedMatrix(path, rows, columns, dtype, map, view, pointer + view.PointerOffset + offset);
        }
        catch
        {
            map.Dispose();
            throw;
        }
    }

    /// <summary>Address of row <paramref name="row"/> (float or Half, per <see cref="DType"/>).</summary>
    public byte* RowPointer(long row)
    {
        ObjectDisposedException.ThrowIf(data == null && Rows > 0, this);
        if ((ulong)row >= (ulong)Rows) throw new ArgumentOutOfRangeException(nameof(row), $"{Path}: row {row} of {Rows}");
        return data + row * Columns * NpyFormat.ItemSize(DType);
    }

    /// <summary>Copies one row, widened to float32.</summary>
    public void CopyRow(long row, Span<float> destination)
    {
        byte* p = RowPointer(row);
        if (DType == EmbeddingDType.Float32) new ReadOnlySpan<float>(p, Columns).CopyTo(destination);
        else TensorPrimitives.ConvertToSingle(new ReadOnlySpan<Half>(p, Columns), destination);
    }

    public void Dispose()
    {
        if (data == null) return;
        data = null;
        view!.SafeMemoryMappedViewHandle.ReleasePointer();
        view.Dispose();
        map!.Dispose();
    }
}

/// <summary>Writes one .npy part row by row: the row count is fixed up front, and a short write is an error.</summary>
internal sealed class NpyWriter : IDisposable
{
    private readonly FileStream stream;
    private readonly long rows;
    private readonly int columns;
    private readonly EmbeddingDType dtype;
    private readonly byte[] rowBytes;
    private long written;

    public NpyWriter(string path, long rows, int columns, EmbeddingDType dtype)
    {
        this.rows = rows;
        this.columns = columns;
        this.dtype = dtype;
        rowBytes = new byte[columns * NpyFormat.ItemSize(dtype)];
        stream = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20);
        stream.Write(NpyFormat.Header(rows, columns, dtype));
    }

    /// <summary>Appends a float32 row, rounded to float16 when that is the part's dtype.</summary>
    public void Append(ReadOnlySpan<float> row)
    {
        if (row.Length != columns) throw new ArgumentException($"row has {row.Length} values, the part {columns}");
        if (written == rows) throw new InvalidOperationException("more rows than the header announced");
        if (dtype == EmbeddingDType.Float32) System.Runtime.InteropServices.MemoryMarshal.AsBytes(row).CopyTo(rowBytes);
        else TensorPrimitives.ConvertToHalf(row, System.Runtime.InteropServices.MemoryMarshal.Cast<byte, Half>(rowBytes.AsSpan()));
        stream.Write(rowBytes);
        written++;
    }

    /// <summary>Appends a row already in the part's dtype (copied from another part without rounding again).</summary>
    public void AppendRaw(ReadOnlySpan<byte> row)
    {
        if (row.Length != rowBytes.Length) throw new ArgumentException("row size differs from the part's");
        if (written == rows) throw new InvalidOperationException("more rows than the header announced");
        stream.Write(row);
        written++;
    }

    /// <summary>Checks every announced row was written and flushes the file to disk.</summary>
    public void Complete()
    {
        if (written != rows) throw new InvalidOperationException($"{written} rows written, {rows} announced");
        stream.Flush(flushToDisk: true);
    }

    public void Dispose() => stream.Dispose();
}
