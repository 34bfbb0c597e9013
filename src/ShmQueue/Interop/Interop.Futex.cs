using System.Runtime.InteropServices;

namespace ShmIpc.Interop;

/// <summary>
/// The Linux calls behind <see cref="ShmIpc.Signaling.FutexMultiSemaphoreWait"/>: <c>futex_waitv</c> through
/// <c>syscall</c>, and the unnamed-semaphore and raw-pointer semaphore calls of glibc it needs.
/// </summary>
/// <remarks>
/// <c>syscall</c> is variadic; on x86-64 and arm64 Linux integer and pointer arguments travel in the same registers either
/// way, and glibc's <c>syscall</c> only moves registers, so the fixed-arity declaration is correct there.
/// </remarks>
internal static unsafe partial class Libc
{
    /// <summary><c>futex_waitv</c>: the same number in the generic syscall table (arm64) and on x86-64 (Linux 5.16+).</summary>
    public const long SysFutexWaitv = 449;

    /// <summary>The most words one <c>futex_waitv</c> call takes (FUTEX_WAITV_MAX).</summary>
    public const int FutexWaitvMax = 128;

    public const uint Futex2SizeU32 = 0x02;
    public const uint Futex2Private = 128;
    public const int ENOSYS = 38;

    /// <summary><c>struct futex_waitv</c> (uapi linux/futex.h): 24 bytes on every architecture.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct FutexWaitv
    {
        public ulong Value;
        public ulong Address;
        public uint Flags;
        public uint Reserved;
    }

    [LibraryImport(LibraryName, EntryPoint = "syscall", SetLastError = true)]
    public static partial long SyscallFutexWaitv(long number, FutexWaitv* waiters, uint count, uint flags, TimeSpec* timeout, int clock);

    [LibraryImport(LibraryName, EntryPoint = "sem_init", SetLastError = true)]
    public static partial int SemInit(void* sem, int shared, uint value);

    [LibraryImport(LibraryName, EntryPoint = "sem_destroy", SetLastError = true)]
    public static partial int SemDestroy(void* sem);

    [LibraryImport(LibraryName, EntryPoint = "sem_post", SetLastError = true)]
    public static partial int SemPost(void* sem);

    [LibraryImport(LibraryName, EntryPoint = "sem_trywait", SetLastError = true)]
    public static partial int SemTryWait(void* sem);

    [LibraryImport(LibraryName, EntryPoint = "sem_clockwait", SetLastError = true)]
    public static partial int SemClockWait(void* sem, int clock, TimeSpec* absoluteTime);

    [LibraryImport(LibraryName, EntryPoint = "gnu_get_libc_version")]
    public static partial byte* GnuGetLibcVersion();
}
