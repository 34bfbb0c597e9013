using System.Diagnostics;
using System.Runtime.InteropServices;

namespace ShmIpc.Bench.Harness;

/// <summary>What the figures were measured on, for the results file.</summary>
internal sealed record MachineInfo(string Cpu, int Cores, string Memory, string Os, string Runtime, string Commit, string CCompiler, string Python)
{
    public static MachineInfo Collect() => new(
        Cpu: ReadCpuModel(),
        Cores: Environment.ProcessorCount,
        Memory: ReadMemory(),
        Os: RuntimeInformation.OSDescription,
        Runtime: $"{RuntimeInformation.FrameworkDescription} ({RuntimeInformation.ProcessArchitecture})",
        Commit: ReadCommit(),
        CCompiler: FirstLine("cc", "--version") ?? "none",
        Python: FirstLine("python3", "--version") ?? "none");

    private static string ReadCpuModel()
    {
        try
        {
            string? line = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal));
            return line is null ? RuntimeInformation.ProcessArchitecture.ToString() : line[(line.IndexOf(':', StringComparison.Ordinal) + 1)..].Trim();
        }
        catch (IOException)
        {
            return "unknown";
        }
    }

    private static string ReadMemory()
    {
        try
        {
            string? line = File.ReadLines("/proc/meminfo").FirstOrDefault(l => l.StartsWith("MemTotal", StringComparison.Ordinal));
            return line is null ? "unknown" : line["MemTotal:".Length..].Trim();
        }
        catch (IOException)
        {
            return "unknown";
        }
    }

    private static string ReadCommit()
    {
        string? hash = Run("git", RepoPaths.Root, "rev-parse", "--short=12", "HEAD");
        if (hash is null)
        {
            return "unknown";
        }

        string? status = Run("git", RepoPaths.Root, "status", "--porcelain", "--untracked-files=no");
        return string.IsNullOrWhiteSpace(status) ? hash : hash + " (with uncommitted changes)";
    }

    private static string? FirstLine(string tool, params string[] args)
    {
        string? output = Run(tool, null, args);
        return output?.Split('\n', StringSplitOptions.RemoveEmptyEntries).FirstOrDefault()?.Trim();
    }

    /// <summary>Runs a short command and returns its stdout (and stderr), or null when it cannot run or fails.</summary>
    public static string? Run(string tool, string? directory, params string[] args)
    {
        try
        {
            var info = new ProcessStartInfo(tool)
            {
                UseShellExecute = false,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                WorkingDirectory = directory ?? Environment.CurrentDirectory,
            };
            foreach (string a in args)
            {
                info.ArgumentList.Add(a);
            }

            using Process p = Process.Start(info)!;
            Task<string> err = p.StandardError.ReadToEndAsync();
            string output = p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            return p.ExitCode == 0 ? output + err.Result : null;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return null;
        }
    }
}
