using System.Collections.Concurrent;
using System.Globalization;
using ShmIpc.Tests.Common;

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
        try
        {
            (int code, string output, string error) = ChildProcess.Run(program, args, TimeSpan.FromMinutes(2));
            return (code, output + error);
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return null;
        }
    }

    public static string S(long value) => value.ToString(CultureInfo.InvariantCulture);
}
