using System.Runtime.InteropServices;

namespace ShmIpc.Memory;

/// <summary>
/// The process calls ShmIpc makes besides its segments (for ShmProcess and ShmPool): this process's identity, whether
/// another one lives, signals to a child, and the parent-death signal. Chosen once in <see cref="ProcessPlatform.Current"/>;
/// the callers never test the OS.
/// </summary>
internal interface IProcessPlatform
{
    /// <summary>This process.</summary>
    ProcessIdentity CurrentProcess { get; }

    /// <summary>Whether the process <paramref name="process"/> names still runs (a reused pid with another start time does not).</summary>
    bool IsAlive(ProcessIdentity process);

    /// <summary>Sends <paramref name="signal"/> to process <paramref name="pid"/>; false when no such process exists (any more).</summary>
    /// <exception cref="InvalidOperationException">The OS refused for another reason (the message names the pid and the error).</exception>
    bool Signal(int pid, ProcessSignal signal);

    /// <summary>
    /// Asks the OS to signal this process when its parent ends, and returns that signal (to handle with
    /// <see cref="PosixSignalRegistration"/>); null when the OS has no such thing (a watchdog thread must poll instead).
    /// </summary>
    PosixSignal? RequestParentDeathSignal();
}

/// <summary>The signals ShmIpc sends to its children.</summary>
internal enum ProcessSignal
{
    /// <summary>Asks the process to end (SIGTERM): it ends unless its code handles the signal.</summary>
    Terminate,

    /// <summary>Ends the process at once (SIGKILL).</summary>
    Kill,
}

/// <summary>Chooses the process platform once per process.</summary>
internal static class ProcessPlatform
{
    private static IProcessPlatform? s_current;

    /// <summary>The platform for this OS.</summary>
    /// <exception cref="PlatformNotSupportedException">Not Linux: the message says what is missing.</exception>
    public static IProcessPlatform Current => s_current ??= Create();

    private static IProcessPlatform Create()
    {
        if (OperatingSystem.IsLinux())
        {
            return new LinuxProcessPlatform(SharedMemoryPlatform.Current);
        }

        throw new PlatformNotSupportedException(
            "ShmProcess and ShmPool run on Linux today. Their process calls (signals to children, the parent-death signal, " +
            "process identity by start time) plug in behind IProcessPlatform; the macOS (kill + a kqueue NOTE_EXIT watch) and " +
            "Windows (TerminateProcess + a job object) implementations are not written yet.");
    }
}
