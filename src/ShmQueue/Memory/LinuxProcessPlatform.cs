using System.Runtime.InteropServices;
using ShmIpc.Interop;

namespace ShmIpc.Memory;

/// <summary>Linux: <c>kill(2)</c>, <c>prctl(PR_SET_PDEATHSIG)</c>, and identities by /proc start time (through the segment platform).</summary>
internal sealed class LinuxProcessPlatform(ISharedMemoryPlatform memory) : IProcessPlatform
{
    public ProcessIdentity CurrentProcess => memory.CurrentProcess;

    public bool IsAlive(ProcessIdentity process) => memory.IsAlive(process);

    public bool Signal(int pid, ProcessSignal signal)
    {
        int number = signal switch
        {
            ProcessSignal.Terminate => Libc.SIGTERM,
            ProcessSignal.Kill => Libc.SIGKILL,
            _ => throw new ArgumentOutOfRangeException(nameof(signal), signal, "Not a signal ShmIpc sends."),
        };
        if (Libc.Kill(pid, number) == 0)
        {
            return true;
        }

        int errno = Marshal.GetLastPInvokeError();
        return errno == Libc.ESRCH
            ? false
            : throw new InvalidOperationException($"kill({pid}, {number}) failed: errno {errno} ({Marshal.GetPInvokeErrorMessage(errno)}).");
    }

    /// <summary>
    /// SIGUSR2, a signal of its own rather than SIGTERM: when it comes the parent is still exiting (alive in /proc, and
    /// possibly still our parent, as the kernel first hands us to a sibling thread), so only the signal says "parent gone".
    /// </summary>
    public PosixSignal? RequestParentDeathSignal() =>
        Libc.Prctl(Libc.PR_SET_PDEATHSIG, Libc.SIGUSR2, 0, 0, 0) == 0 ? (PosixSignal)Libc.SIGUSR2 : null;
}
