using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;

namespace ShmIpc.Tests;

/// <summary>
/// A C or Python peer process (native-notes/c/shmipc_tool, native-notes/python/shmipc_tool.py): stdout lines
/// are collected so a test waits for READY with a deadline instead of sleeping (as <c>ChildProcess</c> does
/// for ShmTestHost).
/// </summary>
internal sealed class InteropPeer : IDisposable
{
    private readonly Process _process;
    private readonly BlockingCollection<string> _lines = new();
    private readonly List<string> _stderr = new();

    private InteropPeer(Process process)
    {
        _process = process;
        _process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null)
            {
                _lines.CompleteAdding();
            }
            else
            {
                _lines.Add(e.Data);
            }
        };
        _process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                lock (_stderr)
                {
                    _stderr.Add(e.Data);
                }
            }
        };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    public int Pid => _process.Id;

    public string StandardError
    {
        get
        {
            lock (_stderr)
            {
                return string.Join('\n', _stderr);
            }
        }
    }

    public static InteropPeer Start(string program, IEnumerable<string> args)
    {
        var info = new ProcessStartInfo(program)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (string arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        return new InteropPeer(Process.Start(info) ?? throw new InvalidOperationException($"Could not start {program}."));
    }

    /// <summary>Reads lines until one starts with <paramref name="prefix"/>; fails with the peer's stderr on ERROR, exit or timeout.</summary>
    public string WaitForLine(string prefix, TimeSpan timeout)
    {
        long deadline = Stopwatch.GetTimestamp() + (long)(timeout.TotalSeconds * Stopwatch.Frequency);
        while (true)
        {
            TimeSpan left = TimeSpan.FromSeconds(Math.Max(0, (deadline - Stopwatch.GetTimestamp()) / (double)Stopwatch.Frequency));
            if (!_lines.TryTake(out string? line, left))
            {
                throw new TimeoutException($"Peer {Pid} wrote no '{prefix}' line within {timeout.TotalSeconds:0.#} s (exited: {_process.HasExited}). stderr:\n{StandardError}");
            }

            if (line.StartsWith(prefix, StringComparison.Ordinal))
            {
                return line;
            }

            if (line.StartsWith("ERROR", StringComparison.Ordinal) || line.StartsWith("BAD", StringComparison.Ordinal))
            {
                Assert.Fail($"Peer {Pid} reported '{line}'. stderr:\n{StandardError}");
            }
        }
    }

    /// <summary>Closes the peer's stdin (the tools that hold a segment release it then).</summary>
    public void CloseInput() => _process.StandardInput.Close();

    /// <summary>SIGKILL, as <c>kill -9</c> does, then reaps the peer.</summary>
    public void Kill9()
    {
        if (!_process.HasExited)
        {
            Process.Start("kill", ["-9", Pid.ToString(CultureInfo.InvariantCulture)])!.WaitForExit();
        }

        _process.WaitForExit(10_000);
    }

    public int WaitForExit(TimeSpan timeout)
    {
        if (!_process.WaitForExit(timeout))
        {
            throw new TimeoutException($"Peer {Pid} did not exit within {timeout.TotalSeconds:0.#} s. stderr:\n{StandardError}");
        }

        _process.WaitForExit();
        return _process.ExitCode;
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit(10_000);
            }
        }
        catch (InvalidOperationException)
        {
        }

        _process.Dispose();
        _lines.Dispose();
    }
}

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
