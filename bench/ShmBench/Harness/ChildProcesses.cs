using System.Diagnostics;
using System.Globalization;

namespace ShmIpc.Bench.Harness;

/// <summary>
/// Starts the peers of a scenario: this same program in a child role, or an external tool (the C
/// baselines, python3). Every process is remembered so <see cref="Cleanup"/> can kill it. A role child
/// exits when its stdin closes, so even a parent killed by SIGKILL leaves no child behind.
/// </summary>
internal static class ChildProcesses
{
    private static readonly Lock s_lock = new();
    private static readonly List<Process> s_children = new();

    /// <summary>Starts "ShmBench child <paramref name="role"/> args..."; with <paramref name="cpu"/>, its main thread is pinned to that CPU.</summary>
    public static Process Start(string role, int? cpu, params string[] args)
    {
        string self = Environment.ProcessPath ?? throw new InvalidOperationException("No process path.");
        var info = new ProcessStartInfo(self)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardInput = true,
        };

        // Under "dotnet ShmBench.dll" the process path is the dotnet host: pass the assembly first.
        if (Path.GetFileNameWithoutExtension(self) == "dotnet")
        {
            info.ArgumentList.Add(typeof(ChildProcesses).Assembly.Location);
        }

        info.ArgumentList.Add("child");
        info.ArgumentList.Add(role);
        foreach (string arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        if (cpu is int c && Affinity.CanSeparate)
        {
            info.Environment[Affinity.ChildCpuVariable] = c.ToString(CultureInfo.InvariantCulture);
        }

        return Track(info, role);
    }

    /// <summary>Starts an external program with stdout (and stdin, so it can notice our death) redirected.</summary>
    public static Process StartTool(string path, IEnumerable<string> args, string? workingDirectory = null)
    {
        var info = new ProcessStartInfo(path)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardInput = true,
            RedirectStandardError = true,
            WorkingDirectory = workingDirectory ?? Environment.CurrentDirectory,
        };
        foreach (string arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        return Track(info, Path.GetFileName(path));
    }

    private static Process Track(ProcessStartInfo info, string what)
    {
        Process process;
        lock (s_lock)
        {
            if (Cleanup.Cancelled)
            {
                throw new OperationCanceledException("The harness was interrupted.");
            }

            process = Process.Start(info) ?? throw new InvalidOperationException($"Could not start '{what}'.");
            s_children.Add(process);
        }

        return process;
    }

    /// <summary>Waits for the child to print <paramref name="line"/>.</summary>
    public static void Expect(Process child, string line)
    {
        string? got;
        while ((got = child.StandardOutput.ReadLine()) is not null)
        {
            if (got == line)
            {
                return;
            }
        }

        throw new InvalidOperationException($"Child {child.Id} ended before printing '{line}'.");
    }

    /// <summary>Waits for a child to end; kills it (and fails) when it takes longer than <paramref name="timeout"/>.</summary>
    public static int Join(Process child, TimeSpan timeout)
    {
        if (!child.WaitForExit(timeout))
        {
            child.Kill(entireProcessTree: true);
            throw new TimeoutException($"Child {child.Id} did not finish within {timeout.TotalSeconds:0} s and was killed.");
        }

        return child.ExitCode;
    }

    /// <summary>Kills every child still running, with its whole process tree (Ctrl+C, errors, exit).</summary>
    public static void KillAll()
    {
        Process[] children;
        lock (s_lock)
        {
            children = s_children.ToArray();
            s_children.Clear();
        }

        foreach (Process p in children)
        {
            try
            {
                if (!p.HasExited)
                {
                    p.Kill(entireProcessTree: true);
                    p.WaitForExit(2000);
                }
            }
            catch (Exception e) when (e is InvalidOperationException or System.ComponentModel.Win32Exception or NotSupportedException)
            {
                // Exited or disposed meanwhile.
            }
        }
    }
}
