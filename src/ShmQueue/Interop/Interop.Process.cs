using System.Runtime.InteropServices;

namespace ShmIpc.Interop;

/// <summary>The libc calls about processes (signals, the parent-death signal), for <see cref="ShmIpc.Memory.LinuxProcessPlatform"/> only.</summary>
internal static partial class Libc
{
    public const int ESRCH = 3;

    public const int SIGKILL = 9;
    public const int SIGUSR2 = 12;
    public const int SIGTERM = 15;

    /// <summary><c>prctl(PR_SET_PDEATHSIG, sig)</c>: the kernel sends <c>sig</c> to this process when the thread that started it ends.</summary>
    public const int PR_SET_PDEATHSIG = 1;

    [LibraryImport(LibraryName, EntryPoint = "prctl", SetLastError = true)]
    public static partial int Prctl(int option, nuint arg2, nuint arg3, nuint arg4, nuint arg5);

    [LibraryImport(LibraryName, EntryPoint = "kill", SetLastError = true)]
    public static partial int Kill(int pid, int signal);
}
