using System.Diagnostics;

namespace ManagedClip.Tests.IO;

/// <summary>Named pipes and links for the tests of the guarded reader (Unix only; elsewhere the tests return early).</summary>
internal static class SpecialFiles
{
    /// <summary>Makes a named pipe with the system's <c>mkfifo</c>; false where there is none (Windows).</summary>
    public static bool TryMakeFifo(string path)
    {
        if (OperatingSystem.IsWindows()) return false;
        try
        {
            using var process = Process.Start(new ProcessStartInfo("mkfifo", [path]) { RedirectStandardError = true })!;
            process.WaitForExit(10_000);
            return process.ExitCode == 0 && File.Exists(path);
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return false;
        }
    }

    /// <summary>A symbolic link to <c>/dev/zero</c> (a device that never ends), or null where there is none.</summary>
    public static string? LinkToDevZero(string path)
    {
        if (OperatingSystem.IsWindows() || !File.Exists("/dev/zero")) return null;
        File.CreateSymbolicLink(path, "/dev/zero");
        return path;
    }
}
