using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.InteropServices;

namespace ManagedClip.Tests.Retrieval;

/// <summary>
/// The built managedclip CLI as a child process (<c>dotnet ManagedClip.Cli.dll …</c>), for what only a real process
/// shows: signals, exit codes, and several processes at once. Its stderr lines are collected as they arrive.
/// </summary>
internal sealed partial class CliProcess : IDisposable
{
    private readonly Process process;
    private readonly BlockingCollection<string> errorLines = new();
    private readonly System.Text.StringBuilder output = new();

    /// <summary>The CLI next to the test assembly (the project reference copies it with its runtimeconfig).</summary>
    public static string CliDll => Path.Combine(AppContext.BaseDirectory, "ManagedClip.Cli.dll");

    public CliProcess(params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        start.ArgumentList.Add(CliDll);
        foreach (var a in args) start.ArgumentList.Add(a);
        process = Process.Start(start)!;
        process.ErrorDataReceived += (_, e) => { if (e.Data != null) errorLines.Add(e.Data); };
        process.OutputDataReceived += (_, e) => { if (e.Data != null) lock (output) output.AppendLine(e.Data); };
        process.BeginErrorReadLine();
        process.BeginOutputReadLine();
    }

    public int Id => process.Id;

    public List<string> ErrorLines { get; } = [];

    /// <summary>Waits until a stderr line satisfies <paramref name="predicate"/> <paramref name="count"/> times.</summary>
    public bool WaitForErrorLines(Func<string, bool> predicate, int count, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        int seen = ErrorLines.Count(predicate);
        while (seen < count)
        {
            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero || !errorLines.TryTake(out var line, left)) return false;
            ErrorLines.Add(line);
            if (predicate(line)) seen++;
        }
        return true;
    }

    public bool HasExited => process.HasExited;

    public void Signal(int signal)
    {
        if (kill(process.Id, signal) != 0) throw new InvalidOperationException($"kill({process.Id}, {signal}) failed");
    }

    /// <summary>Waits for the exit; returns the exit code (128 + n for a process killed by signal n).</summary>
    public int WaitForExit(TimeSpan timeout)
    {
        if (!process.WaitForExit(timeout)) throw new TimeoutException($"managedclip did not exit within {timeout}");
        process.WaitForExit(); // drains the redirected streams
        while (errorLines.TryTake(out var line)) ErrorLines.Add(line);
        return process.ExitCode;
    }

    public string Output { get { lock (output) return output.ToString(); } }

    public void Dispose()
    {
        if (!process.HasExited)
        {
            try { process.Kill(); process.WaitForExit(10_000); }
            catch (InvalidOperationException) { }
        }
        process.Dispose();
    }

    public const int SigInt = 2, SigKill = 9;

    [LibraryImport("libc", EntryPoint = "kill")]
    private static partial int kill(int pid, int signal);
}
