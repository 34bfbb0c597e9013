using System.Diagnostics;
using System.Globalization;

namespace ShmIpc.Tests.Common;

/// <summary>
/// The child processes one test owns: the ones it starts here (<see cref="ChildProcess"/>) and the ones the code
/// under test starts for it (a ShmProcess, pool workers), tracked by pid. <see cref="Dispose"/> SIGKILLs every one
/// still running and reaps it, so a test that fails half way leaves no process behind.
/// </summary>
internal sealed class ChildProcesses : IDisposable
{
    private readonly List<ChildProcess> _started = new();
    private readonly List<(int Pid, string? StartTime)> _tracked = new();

    /// <summary>Starts ShmTestHost running scenario <c>args[0]</c> (see <see cref="ChildProcess.Start"/>).</summary>
    public ChildProcess Start(params string[] args) => Own(ChildProcess.Start(args));

    /// <summary>Starts ShmTestHost running scenario <c>args[0]</c> and waits for its READY line.</summary>
    public ChildProcess StartReady(params string[] args) => Own(ChildProcess.StartReady(args));

    /// <summary>Every pid this group owns, started here or tracked.</summary>
    public IReadOnlyList<int> Pids => [.. _started.Select(static c => c.Pid), .. _tracked.Select(static t => t.Pid)];

    /// <summary>Owns a process started elsewhere (by the code under test): it must end with the test.</summary>
    public void Track(int pid) => _tracked.Add((pid, StartTimeOf(pid)));

    public void Track(IEnumerable<int> pids)
    {
        foreach (int pid in pids)
        {
            Track(pid);
        }
    }

    /// <summary>Waits until every owned process has ended, or <paramref name="timeout"/> passes; returns the pids still running.</summary>
    public int[] WaitUntilAllEnded(TimeSpan timeout)
    {
        long deadline = Stopwatch.GetTimestamp() + (long)(timeout.TotalSeconds * Stopwatch.Frequency);
        int[] running;
        var spinner = new SpinWait();
        while ((running = Running()).Length > 0 && Stopwatch.GetTimestamp() < deadline)
        {
            spinner.SpinOnce(sleep1Threshold: 10);
        }

        return running;
    }

    /// <summary>True while <paramref name="pid"/> runs (a zombie, dead but not yet reaped, does not count).</summary>
    public static bool IsRunning(int pid)
    {
        string? stat = StatOf(pid);
        return stat is not null && stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[0] is not ("Z" or "X");
    }

    /// <summary>SIGKILLs every owned process still running (a started one with its own children) and reaps it. Idempotent.</summary>
    public void Dispose()
    {
        foreach (ChildProcess child in _started)
        {
            child.Dispose(); // kills what still runs, with its own children
        }

        foreach ((int pid, string? startTime) in _tracked)
        {
            // The start time proves the pid still names our process, not one that reused the number.
            if (startTime is not null && IsRunning(pid) && StartTimeOf(pid) == startTime)
            {
                ChildProcess.Signal(pid, "KILL");
            }
        }

        _started.Clear();
        _tracked.Clear();
    }

    private ChildProcess Own(ChildProcess child)
    {
        _started.Add(child);
        return child;
    }

    private int[] Running() => Pids.Where(IsRunning).Distinct().ToArray();

    /// <summary>Field 22 of /proc/PID/stat: when the process started, in clock ticks since boot; null when it is gone.</summary>
    private static string? StartTimeOf(int pid)
    {
        string? stat = StatOf(pid);
        return stat?[(stat.LastIndexOf(')') + 2)..].Split(' ')[19];
    }

    private static string? StatOf(int pid)
    {
        try
        {
            return File.ReadAllText($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/stat");
        }
        catch (IOException)
        {
            return null;
        }
    }
}
