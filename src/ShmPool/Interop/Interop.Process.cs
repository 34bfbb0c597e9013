using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace ShmIpc.Interop;

/// <summary>The libc calls ShmPool makes about processes (Linux): signals and the parent-death signal.</summary>
internal static partial class ProcessLibc
{
    private const string LibraryName = "libc";

    public const int SIGKILL = 9;
    public const int SIGUSR2 = 12;
    public const int SIGTERM = 15;
    public const int ESRCH = 3;

    /// <summary><c>prctl(PR_SET_PDEATHSIG, sig)</c>: the kernel sends <c>sig</c> to this process when the thread that started it ends.</summary>
    public const int PR_SET_PDEATHSIG = 1;

    [LibraryImport(LibraryName, EntryPoint = "prctl", SetLastError = true)]
    public static partial int Prctl(int option, nuint arg2, nuint arg3, nuint arg4, nuint arg5);

    [LibraryImport(LibraryName, EntryPoint = "getppid")]
    public static partial int GetParentPid();

    [LibraryImport(LibraryName, EntryPoint = "kill", SetLastError = true)]
    public static partial int Kill(int pid, int signal);

    /// <summary>Maps the logical name "libc" for this assembly with ShmQueue's resolver.</summary>
#pragma warning disable CA2255 // A library may register its own DllImport resolver: it maps only its own logical name.
    [ModuleInitializer]
    internal static void RegisterResolver() => NativeLibrary.SetDllImportResolver(typeof(ProcessLibc).Assembly, Libc.Resolve);
#pragma warning restore CA2255
}
