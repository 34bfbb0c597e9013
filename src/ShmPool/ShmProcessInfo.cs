using System.Globalization;

namespace ShmIpc;

/// <summary>
/// What this process is, as ShmIpc sees it: Python's <c>multiprocessing.current_process()</c> and
/// <c>parent_process()</c>. Read it through <see cref="ShmProcess.Current"/>.
/// </summary>
public sealed class ShmProcessInfo
{
    internal ShmProcessInfo(string name, int pid, int? parentPid, bool isPoolWorker)
    {
        Name = name;
        Pid = pid;
        ParentPid = parentPid;
        IsPoolWorker = isPoolWorker;
    }

    /// <summary>"MainProcess" in a process ShmIpc did not start; otherwise the name the parent gave the child ("ShmProcess-1", "ShmPool-1-worker-0").</summary>
    public string Name { get; }

    /// <summary>This process's id.</summary>
    public int Pid { get; }

    /// <summary>True when this process is a child that a <see cref="ShmProcess"/> or a <see cref="ShmPool"/> started.</summary>
    public bool IsChild => ParentPid is not null;

    /// <summary>True when this process is a worker of a <see cref="ShmPool"/>.</summary>
    public bool IsPoolWorker { get; }

    /// <summary>The id of the ShmIpc parent that started this process; null when it is not a ShmIpc child.</summary>
    public int? ParentPid { get; }

    /// <summary>"MainProcess (pid 1234)" or "ShmProcess-1 (pid 1240, child of 1234)".</summary>
    public override string ToString() => ParentPid is int parent
        ? $"{Name} (pid {Pid.ToString(CultureInfo.InvariantCulture)}, child of {parent.ToString(CultureInfo.InvariantCulture)})"
        : $"{Name} (pid {Pid.ToString(CultureInfo.InvariantCulture)})";
}
