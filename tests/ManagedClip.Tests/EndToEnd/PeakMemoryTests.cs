using System.Buffers.Binary;
using System.Diagnostics;
using System.IO.Compression;
using System.Text;
using Xunit.Abstractions;

namespace ManagedClip.Tests.EndToEnd;

/// <summary>
/// Peak RSS of the real <c>managedclip classify</c> process (VmHWM from /proc, polled until it exits) for the images
/// issue #14 named: extreme aspect ratios, whose whole resize would need gigabytes, and the worst image within the
/// 100-megapixel limit, a 16-bit RGBA PNG. The bound is the issue's: under 1 GB with the tiny model.
/// </summary>
public sealed class PeakMemoryTests(ITestOutputHelper output) : IDisposable
{
    private const long OneGigabyte = 1L << 30;
    private readonly IO.TempFolder folder = new();

    public void Dispose() => folder.Dispose();

    [Theory]
    [InlineData(1, 65535, 8, false)]
    [InlineData(65535, 1, 8, false)]
    [InlineData(10000, 10000, 16, true)] // 100 MP, 16-bit RGBA: 800 MB of decoded pixels
    public async Task ClassifyStaysUnderOneGigabyte(int width, int height, int depth, bool alpha)
    {
        if (!OperatingSystem.IsLinux()) return; // VmHWM is read from /proc
        var png = folder.File($"{width}x{height}.png");
        WritePng(png, width, height, depth, alpha);
        var cli = Path.Combine(AppContext.BaseDirectory, "ManagedClip.Cli.dll");
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { cli, "classify", "--model", TestModels.TinyDirectory, "--labels", "a, b", png }) start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        long peak = 0;
        var deadline = Stopwatch.StartNew();
        while (!process.HasExited && deadline.Elapsed < TimeSpan.FromMinutes(5))
        {
            peak = Math.Max(peak, HighWaterMark(process.Id));
            await Task.Delay(20);
        }
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
        string errors = await stderr, result = await stdout;
        output.WriteLine($"{width}x{height} {depth}-bit{(alpha ? " RGBA" : " RGB")}: peak RSS {peak >> 20} MB");
        Assert.True(process.ExitCode == 0, errors);
        Assert.Contains("\"probs\"", result);
        Assert.True(peak < OneGigabyte, $"peak RSS {peak >> 20} MB");
    }

    private static long HighWaterMark(int pid)
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/{pid}/status"))
                if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                    return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) * 1024;
        }
        catch (IOException) { } // the process has just exited
        return 0;
    }

    /// <summary>A colour PNG streamed to disk: one IDAT of fast-deflated rows of a repeating pattern.</summary>
    private static void WritePng(string path, int width, int height, int depth, bool alpha)
    {
        using var file = File.Create(path);
        file.Write([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]);
        var header = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(header, width);
        BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(4), height);
        (header[8], header[9]) = ((byte)depth, alpha ? (byte)6 : (byte)2);
        Imaging.PillowCompatibilityTests.PngChunk(file, "IHDR", header);

        var compressed = new MemoryStream();
        using (var zlib = new ZLibStream(compressed, CompressionLevel.Fastest, leaveOpen: true))
        {
            int rowBytes = width * (alpha ? 4 : 3) * depth / 8;
            var row = new byte[1 + rowBytes];
            for (int i = 1; i < row.Length; i++) row[i] = (byte)(i * 7);
            for (int y = 0; y < height; y++)
            {
                row[1] = (byte)y;
                zlib.Write(row);
            }
        }
        Imaging.PillowCompatibilityTests.PngChunk(file, "IDAT", compressed.ToArray());
        Imaging.PillowCompatibilityTests.PngChunk(file, "IEND", []);
    }
}
