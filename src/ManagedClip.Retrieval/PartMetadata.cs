using Parquet;
using Parquet.Schema;

namespace ManagedClip.Retrieval;

/// <summary>One row's metadata: which file it is, the file's state when embedded, and why it has no embedding.</summary>
/// <param name="Path">Relative to the indexed folder, '/'-separated.</param>
/// <param name="Size">Bytes.</param>
/// <param name="ModifiedUtc">Last write time, UTC, in 100 ns ticks.</param>
/// <param name="Sha256">Lower-case hex of the content; null when the file could not be read.</param>
/// <param name="Error">Null when embedded; otherwise one line saying what was wrong (the row's vector is zeros).</param>
public sealed record IndexRow(string Path, long Size, DateTime ModifiedUtc, string? Sha256, string? Error);

/// <summary>
/// A part's row metadata in Parquet (<c>part-NNNNNN.parquet</c>), row i describing row i of the part's .npy:
/// <c>path</c> (string), <c>size</c> (int64), <c>mtime</c> (timestamp, ns, UTC), <c>sha256</c> (string, null when
/// unreadable), <c>error</c> (string, null when embedded), <c>model_id</c> (string). Row groups of 4096 rows, so a
/// search that needs the paths of ten hits decodes at most ten small groups.
/// </summary>
internal static class PartMetadata
{
    public const int RowsPerGroup = 4096;

    private static readonly DataField<string> PathField = new("path", nullable: false);
    private static readonly DataField<long> SizeField = new("size", nullable: false);
    private static readonly DateTimeDataField MtimeField = new("mtime", DateTimeFormat.Timestamp, isAdjustedToUTC: true, unit: DateTimeTimeUnit.Nanos, isNullable: false);
    private static readonly DataField<string> ShaField = new("sha256", nullable: true);
    private static readonly DataField<string> ErrorField = new("error", nullable: true);
    private static readonly DataField<string> ModelField = new("model_id", nullable: false);

    public static readonly ParquetSchema Schema = new(PathField, SizeField, MtimeField, ShaField, ErrorField, ModelField);

    /// <summary>Writes one row group (at most <see cref="RowsPerGroup"/> rows).</summary>
    public static async Task WriteGroupAsync(ParquetWriter writer, IReadOnlyList<IndexRow> rows, string modelId)
    {
        using var rowGroup = writer.CreateRowGroup();
        await rowGroup.WriteAsync(PathField, rows.Select(r => r.Path).ToArray());
        await rowGroup.WriteAsync<long>(SizeField, rows.Select(r => r.Size).ToArray());
        await rowGroup.WriteAsync<DateTime>(MtimeField, rows.Select(r => r.ModifiedUtc).ToArray());
        await rowGroup.WriteAsync(ShaField, rows.Select(r => r.Sha256).ToArray());
        await rowGroup.WriteAsync(ErrorField, rows.Select(r => r.Error).ToArray());
        await rowGroup.WriteAsync(ModelField, Enumerable.Repeat(modelId, rows.Count).ToArray());
    }

    /// <summary>Reads every row; a file that is not a part's metadata is a clear error.</summary>
    public static IndexRow[] ReadAll(string path, long expectedRows) => Read(path, expectedRows, null)!;

    /// <summary>Reads the rows of the groups holding <paramref name="wanted"/> (row numbers in the part).</summary>
    public static Dictionary<long, IndexRow> ReadRows(string path, long expectedRows, IReadOnlyCollection<long> wanted)
    {
        var groups = wanted.Select(r => r / RowsPerGroup).ToHashSet();
        var rows = Read(path, expectedRows, groups);
        var result = new Dictionary<long, IndexRow>();
        foreach (var r in wanted) result[r] = rows[r] ?? throw new InvalidDataException($"{path}: row {r} missing");
        return result;
    }

    /// <summary>The paths of the given rows (search hits): only the path column of the groups holding them is decoded.</summary>
    public static Dictionary<long, string> ReadPathsOf(string path, long expectedRows, IReadOnlyCollection<long> wanted)
    {
        try
        {
            return ReadPathsOfAsync(path, expectedRows, wanted).GetAwaiter().GetResult();
        }
        catch (Exception e) when (e is not (InvalidDataException or FileNotFoundException or UnauthorizedAccessException or OutOfMemoryException))
        {
            throw Unreadable(path, e);
        }
    }

    private static async Task<Dictionary<long, string>> ReadPathsOfAsync(string path, long expectedRows, IReadOnlyCollection<long> wanted)
    {
        await using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        await using var reader = await ParquetReader.CreateAsync(stream);
        CheckSchema(path, reader);
        var result = new Dictionary<long, string>();
        var groups = wanted.GroupBy(r => r / RowsPerGroup);
        foreach (var group in groups)
        {
            if (group.Key >= reader.RowGroupCount) throw new InvalidDataException($"{path}: has {reader.RowGroupCount} row groups, row {group.First()} needs more (the manifest says {expectedRows} rows).");
            using var groupReader = reader.OpenRowGroupReader((int)group.Key);
            var paths = new string?[checked((int)groupReader.RowCount)];
            await groupReader.ReadAsync(PathField, paths.AsMemory());
            foreach (var row in group)
            {
                long inGroup = row - group.Key * RowsPerGroup;
                result[row] = inGroup < paths.Length && paths[inGroup] is { } p ? p : throw new InvalidDataException($"{path}: row {row} is missing.");
            }
        }
        return result;
    }

    /// <summary>The paths only (for finding a row by path).</summary>
    public static string[] ReadPaths(string path, long expectedRows)
    {
        try
        {
            return ReadPathsAsync(path, expectedRows).GetAwaiter().GetResult();
        }
        catch (Exception e) when (e is not (InvalidDataException or FileNotFoundException or UnauthorizedAccessException or OutOfMemoryException))
        {
            throw Unreadable(path, e);
        }
    }

    private static async Task<string[]> ReadPathsAsync(string path, long expectedRows)
    {
        await using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        await using var reader = await ParquetReader.CreateAsync(stream);
        CheckSchema(path, reader);
        var result = new string?[checked((int)expectedRows)];
        long at = 0;
        for (int g = 0; g < reader.RowGroupCount; g++)
        {
            using var group = reader.OpenRowGroupReader(g);
            int count = checked((int)group.RowCount);
            if (at + count > expectedRows) break;
            await group.ReadAsync(PathField, result.AsMemory((int)at, count));
            at += count;
        }
        if (at != expectedRows) throw new InvalidDataException($"{path}: holds {CountRows(reader)} rows, the manifest says {expectedRows}.");
        for (int i = 0; i < result.Length; i++)
            if (result[i] == null) throw new InvalidDataException($"{path}: row {i} has no path.");
        return result!;
    }

    private static IndexRow?[] Read(string path, long expectedRows, HashSet<long>? onlyGroups)
    {
        try
        {
            return ReadAsync(path, expectedRows, onlyGroups).GetAwaiter().GetResult();
        }
        catch (Exception e) when (e is not (InvalidDataException or FileNotFoundException or UnauthorizedAccessException or OutOfMemoryException))
        {
            throw Unreadable(path, e);
        }
    }

    private static async Task<IndexRow?[]> ReadAsync(string path, long expectedRows, HashSet<long>? onlyGroups)
    {
        await using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        await using var reader = await ParquetReader.CreateAsync(stream);
        CheckSchema(path, reader);
        if (CountRows(reader) != expectedRows)
            throw new InvalidDataException($"{path}: holds {CountRows(reader)} rows, the manifest says {expectedRows}.");
        var rows = new IndexRow?[checked((int)expectedRows)];
        long at = 0;
        for (int g = 0; g < reader.RowGroupCount; g++)
        {
            using var group = reader.OpenRowGroupReader(g);
            int count = checked((int)group.RowCount);
            // Groups are RowsPerGroup rows each (the last one fewer), so row r lives in group r / RowsPerGroup.
            if (onlyGroups == null || onlyGroups.Contains(at / RowsPerGroup))
            {
                var paths = new string?[count];
                var sizes = new long[count];
                var times = new DateTime[count];
                var shas = new string?[count];
                var errors = new string?[count];
                await group.ReadAsync(PathField, paths.AsMemory());
                await group.ReadAsync<long>(SizeField, sizes.AsMemory());
                await group.ReadAsync<DateTime>(MtimeField, times.AsMemory());
                await group.ReadAsync(ShaField, shas.AsMemory());
                await group.ReadAsync(ErrorField, errors.AsMemory());
                for (int i = 0; i < count; i++)
                    rows[at + i] = new IndexRow(paths[i] ?? throw new InvalidDataException($"{path}: row {at + i} has no path"),
                        sizes[i], DateTime.SpecifyKind(times[i], DateTimeKind.Utc), shas[i], errors[i]);
            }
            at += count;
        }
        return rows;
    }

    private static long CountRows(ParquetReader reader)
    {
        long total = 0;
        for (int g = 0; g < reader.RowGroupCount; g++)
        {
            using var group = reader.OpenRowGroupReader(g);
            total += group.RowCount;
        }
        return total;
    }

    private static void CheckSchema(string path, ParquetReader reader)
    {
        var names = reader.Schema.DataFields.Select(f => f.Name).ToArray();
        var expected = Schema.DataFields.Select(f => f.Name).ToArray();
        if (!names.SequenceEqual(expected))
            throw new InvalidDataException($"{path}: columns ({UserText.Quote(string.Join(", ", names))}) are not a managedclip part's ({string.Join(", ", expected)}).");
    }

    private static InvalidDataException Unreadable(string path, Exception e) =>
        // The Parquet reader's own message describes its internals (an index out of range, a Thrift field), not the
        // file; it stays on the inner exception for MANAGEDCLIP_DEBUG.
        new($"{path}: not a readable Parquet part; the file is damaged or truncated.", e);
}
