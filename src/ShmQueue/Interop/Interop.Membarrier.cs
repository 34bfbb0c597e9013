using System.Runtime.InteropServices;

namespace ShmIpc.Interop;

/// <summary>
/// <c>membarrier(2)</c> through <c>syscall</c>, for <see cref="ShmIpc.Signaling.SleeperFence"/> (LAYOUT.md §4, the
/// asymmetric form). The fixed-arity declaration of the variadic <c>syscall</c> is correct on x86-64 and arm64 Linux
/// (see Interop.Futex.cs).
/// </summary>
internal static partial class Libc
{
    /// <summary><c>__NR_membarrier</c> on x86-64.</summary>
    public const long SysMembarrierX64 = 324;

    /// <summary><c>__NR_membarrier</c> in the generic syscall table (arm64).</summary>
    public const long SysMembarrierArm64 = 283;

    public const int MembarrierCmdQuery = 0;
    public const int MembarrierCmdGlobalExpedited = 1 << 1;
    public const int MembarrierCmdRegisterGlobalExpedited = 1 << 2;

    [LibraryImport(LibraryName, EntryPoint = "syscall", SetLastError = true)]
    public static partial long SyscallMembarrier(long number, int command, uint flags, int cpuId);
}
