using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;

namespace ShmIpc.Tests;

/// <summary>Where the peers' sources are, and running a tool to completion.</summary>
internal static class InteropPaths
{
    private static readonly Lazy<string> s_root = new(() =>
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "native-notes", "LAYOUT.md")))
            {
                return dir.FullName;
            }
        }

        throw new DirectoryNotFoundException($"No native-notes/LAYOUT.md above {AppContext.BaseDirectory}.");
    });

    public static string NativeNotes => Path.Combine(s_root.Value, "native-notes");

    /// <summary>Runs <paramref name="program"/> to completion; (exit code, stdout + stderr), or null when it cannot be started.</summary>
    public static (int ExitCode, string Output)? Run(string program, params string[] args)
    {
        var info = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        try
        {
            using Process process = Process.Start(info)!;
            Task<string> stdout = process.StandardOutput.ReadToEndAsync();
            string stderr = process.StandardError.ReadToEnd();
            process.WaitForExit();
            return (process.ExitCode, stdout.Result + stderr);
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return null;
        }
    }

    public static string S(long value) => value.ToString(CultureInfo.InvariantCulture);
}
