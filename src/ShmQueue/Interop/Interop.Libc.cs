using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace ShmIpc.Interop;

/// <summary>
/// The libc entry points ShmIpc binds on Unix: POSIX named semaphores and the monotonic clock.
/// Everything here is a thin declaration; errno is mapped to exceptions by the callers
/// (<see cref="ShmIpc.Signaling.PosixNamedSemaphore"/>).
/// </summary>
/// <remarks>
/// <c>sem_open</c> is variadic. On x86-64 and arm64 Linux variadic integer arguments travel exactly
/// like fixed ones, so the fixed-arity declarations below are correct there. macOS on arm64 passes
/// variadic arguments on the stack and needs its own declaration when that platform is added.
/// </remarks>
internal static unsafe partial class Libc
{
    private const string LibraryName = "libc";

    // errno values (Linux; the generic values also match on macOS except where noted).
    public const int EPERM = 1;
    public const int ENOENT = 2;
    public const int EINTR = 4;
    public const int EAGAIN = 11;       // macOS: 35
    public const int EACCES = 13;
    public const int EEXIST = 17;
    public const int EINVAL = 22;
    public const int ENAMETOOLONG = 36; // macOS: 63
    public const int EOVERFLOW = 75;    // macOS: 84
    public const int ETIMEDOUT = 110;   // macOS: 60

    public const int O_CREAT = 0x40;    // macOS: 0x200
    public const int O_EXCL = 0x80;     // macOS: 0x800

    public const int CLOCK_MONOTONIC = 1;

    public const int LOCK_SH = 1;
    public const int LOCK_EX = 2;
    public const int LOCK_NB = 4;
    public const int LOCK_UN = 8;

    [StructLayout(LayoutKind.Sequential)]
    public struct TimeSpec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [LibraryImport(LibraryName, EntryPoint = "sem_open", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static partial SafeSemaphoreHandle SemOpen(string name, int oflag, uint mode, uint value);

    [LibraryImport(LibraryName, EntryPoint = "sem_open", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static partial SafeSemaphoreHandle SemOpenExisting(string name, int oflag);

    [LibraryImport(LibraryName, EntryPoint = "sem_close", SetLastError = true)]
    public static partial int SemClose(IntPtr sem);

    [LibraryImport(LibraryName, EntryPoint = "sem_unlink", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static partial int SemUnlink(string name);

    [LibraryImport(LibraryName, EntryPoint = "sem_post", SetLastError = true)]
    public static partial int SemPost(SafeSemaphoreHandle sem);

    [LibraryImport(LibraryName, EntryPoint = "sem_trywait", SetLastError = true)]
    public static partial int SemTryWait(SafeSemaphoreHandle sem);

    [LibraryImport(LibraryName, EntryPoint = "sem_getvalue", SetLastError = true)]
    public static partial int SemGetValue(SafeSemaphoreHandle sem, out int value);

    [LibraryImport(LibraryName, EntryPoint = "sem_clockwait", SetLastError = true)]
    public static partial int SemClockWait(SafeSemaphoreHandle sem, int clock, TimeSpec* absoluteTime);

    [LibraryImport(LibraryName, EntryPoint = "sem_timedwait", SetLastError = true)]
    public static partial int SemTimedWait(SafeSemaphoreHandle sem, TimeSpec* absoluteRealTime);

    public const int ENOSPC = 28;

    /// <summary>Returns the error number itself (0 on success); errno is not set.</summary>
    [LibraryImport(LibraryName, EntryPoint = "posix_fallocate")]
    public static partial int PosixFallocate(SafeFileHandle fd, long offset, long length);

    [LibraryImport(LibraryName, EntryPoint = "flock", SetLastError = true)]
    public static partial int Flock(SafeFileHandle fd, int operation);

    public const int AT_FDCWD = -100;
    public const int AT_SYMLINK_NOFOLLOW = 0x100;
    public const int AT_EMPTY_PATH = 0x1000;
    public const uint STATX_BASIC_STATS = 0x7FF;

    /// <summary>Offsets in <c>struct statx</c> (the same on every Linux architecture, unlike <c>struct stat</c>).</summary>
    public const int StatxSize = 256;
    public const int StatxUidOffset = 20;
    public const int StatxGidOffset = 24;
    public const int StatxModeOffset = 28;
    public const int StatxInodeOffset = 32;
    public const int StatxSizeOffset = 40;
    public const int S_IFMT = 0xF000;
    public const int S_IFREG = 0x8000;

    [LibraryImport(LibraryName, EntryPoint = "statx", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static partial int Statx(int dirfd, string path, int flags, uint mask, byte* buffer);

    // Raw descriptors for the liveness check's read of /proc/PID/stat (no SafeHandle, no path string: it runs every
    // 5 ms in waiters and must allocate nothing).
    public const int O_RDONLY = 0;
    public const int O_CLOEXEC = 0x80000; // Linux

    [LibraryImport(LibraryName, EntryPoint = "open", SetLastError = true)]
    public static partial int Open(byte* path, int flags);

    [LibraryImport(LibraryName, EntryPoint = "pread", SetLastError = true)]
    public static partial nint Pread(int fd, byte* buffer, nuint count, long offset);

    [LibraryImport(LibraryName, EntryPoint = "close")]
    public static partial int Close(int fd);

    [LibraryImport(LibraryName, EntryPoint = "geteuid")]
    public static partial uint GetEffectiveUserId();

    [LibraryImport(LibraryName, EntryPoint = "clock_gettime", SetLastError = true)]
    public static partial int ClockGetTime(int clock, TimeSpec* time);

    /// <summary>Maps the logical name "libc" to the platform's C library for this assembly.</summary>
#pragma warning disable CA2255 // A library may register its own DllImport resolver: it maps only its own logical name.
    [ModuleInitializer]
    internal static void RegisterResolver() => NativeLibrary.SetDllImportResolver(typeof(Libc).Assembly, Resolve);

    /// <summary>
    /// The resolver: "libc" is libc.so.6 on Linux (the unversioned libc.so may be a linker script) and
    /// libSystem on macOS; other names are left to the runtime. ShmPool registers it for its own imports.
    /// </summary>
    internal static IntPtr Resolve(string name, System.Reflection.Assembly assembly, DllImportSearchPath? path)
    {
        if (name != LibraryName)
        {
            return IntPtr.Zero;
        }

        // Loaded once: the runtime asks for every entry point bound, and each TryLoad probed the application's and the
        // runtime's directories for a libc.so.6 before the system's (a worker binds a dozen on its way to its first result).
        IntPtr cached = Volatile.Read(ref s_libc);
        if (cached != IntPtr.Zero)
        {
            return cached;
        }

        string candidate = OperatingSystem.IsMacOS() ? "/usr/lib/libSystem.dylib" : "libc.so.6";
        if (!NativeLibrary.TryLoad(candidate, assembly, path, out IntPtr handle))
        {
            return IntPtr.Zero;
        }

        Volatile.Write(ref s_libc, handle); // a handle of a library never unloaded: two threads racing here store equal ones
        return handle;
    }

    private static IntPtr s_libc;
#pragma warning restore CA2255
}

/// <summary>A <c>sem_t*</c> from <c>sem_open</c>; released with <c>sem_close</c>.</summary>
internal sealed class SafeSemaphoreHandle : SafeHandleZeroOrMinusOneIsInvalid
{
    public SafeSemaphoreHandle()
        : base(ownsHandle: true)
    {
    }

    protected override bool ReleaseHandle() => Libc.SemClose(handle) == 0;
}
