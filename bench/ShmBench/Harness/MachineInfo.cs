using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;

namespace ShmIpc.Bench.Harness;

/// <summary>What the figures were measured on, for the results file.</summary>
internal sealed record MachineInfo(string Cpu, int Cores, string Memory, string Os, string Runtime, string Commit, string CCompiler, string Python, string LoadAverage)
{
    public static MachineInfo Collect() => new(
        Cpu: ReadCpuModel(),
        Cores: Environment.ProcessorCount,
        Memory: ReadMemory(),
        Os: $"{RuntimeInformation.OSDescription}, kernel {Kernel()}",
        Runtime: $"{RuntimeInformation.FrameworkDescription} ({RuntimeInformation.ProcessArchitecture})",
        Commit: ReadCommit(),
        CCompiler: FirstLine("cc", "--version") ?? "none",
        Python: FirstLine("python3", "--version") ?? "none",
        LoadAverage: ReadLoad());

    /// <summary>1, 5 and 15 minute load averages at the start: other work on a shared machine moves the figures.</summary>
    private static string ReadLoad()
    {
        try
        {
            return string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3));
        }
        catch (IOException)
        {
            return "unknown";
        }
    }

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

    private static string Kernel()
    {
        try
        {
            return File.ReadAllText("/proc/sys/kernel/osrelease").Trim();
        }
        catch (IOException)
        {
            return Environment.OSVersion.VersionString;
        }
    }

    private static string ReadMemory()
    {
        try
        {
            string? line = File.ReadLines("/proc/meminfo").FirstOrDefault(l => l.StartsWith("MemTotal", StringComparison.Ordinal));
            string[] parts = line?["MemTotal:".Length..].Trim().Split(' ') ?? [];
            return parts is [string kb, "kB"] ? string.Create(CultureInfo.InvariantCulture, $"{long.Parse(kb, CultureInfo.InvariantCulture) / 1048576.0:0.0} GiB") : "unknown";
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
        hash = hash.Trim();
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
