using System.Diagnostics;

namespace ShmIpc.Bench;

/// <summary>Starts this same program as a child process in a named role.</summary>
internal static class ChildProcesses
{
    public static Process Start(string role, params string[] args)
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

        Process process = Process.Start(info) ?? throw new InvalidOperationException($"Could not start child '{role}'.");
        s_children.Add(process);
        return process;
    }

    private static readonly List<Process> s_children = new();

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

    /// <summary>Kills every child still running (Ctrl+C, errors).</summary>
    public static void KillAll()
    {
        foreach (Process p in s_children)
        {
            try
            {
                if (!p.HasExited)
                {
                    p.Kill(entireProcessTree: true);
                }
            }
            catch (InvalidOperationException)
            {
            }
        }
    }
}
