using System.Globalization;
using Microsoft.Win32.SafeHandles;
using System.Runtime.Versioning;
using ShmIpc.Signaling;

namespace ShmIpc.Memory;

/// <summary>
/// Linux: segments are files in <c>/dev/shm</c> (what <c>shm_open</c> does, minus the libc call),
/// semaphores are POSIX named semaphores (<c>/dev/shm/sem.NAME</c>), liveness comes from <c>/proc</c>.
/// </summary>
[SupportedOSPlatform("linux")]
internal sealed class LinuxSharedMemoryPlatform : ISharedMemoryPlatform
{
    private const string ShmDirectory = "/dev/shm";

    public LinuxSharedMemoryPlatform()
    {
        int pid = Environment.ProcessId;
        CurrentProcess = new ProcessIdentity(pid, GetProcessStartTime(pid)
            ?? throw new InvalidOperationException("Cannot read this process's start time from /proc/self/stat."));
    }

    public ProcessIdentity CurrentProcess { get; }

    public uint EffectiveUserId => Interop.Libc.GetEffectiveUserId();

    public FileOwner GetOwner(FileStream segmentFile)
    {
        bool added = false;
        segmentFile.SafeFileHandle.DangerousAddRef(ref added);
        try
        {
            int fd = (int)segmentFile.SafeFileHandle.DangerousGetHandle();
            return Stat(fd, "", Interop.Libc.AT_EMPTY_PATH) ?? throw new IOException($"Cannot stat '{segmentFile.Name}'.");
        }
        finally
        {
            if (added)
            {
                segmentFile.SafeFileHandle.DangerousRelease();
            }
        }
    }

    public FileOwner? GetSegmentOwner(string osName) => Stat(Interop.Libc.AT_FDCWD, PathOf(osName), Interop.Libc.AT_SYMLINK_NOFOLLOW);

    public FileOwner? GetSemaphoreOwner(string osName) => Stat(Interop.Libc.AT_FDCWD, PathOf("sem." + osName), Interop.Libc.AT_SYMLINK_NOFOLLOW);

    /// <summary>statx(2): null when the file does not exist.</summary>
    private static unsafe FileOwner? Stat(int dirfd, string path, int flags)
    {
        byte* buffer = stackalloc byte[Interop.Libc.StatxSize];
        if (Interop.Libc.Statx(dirfd, path, flags, Interop.Libc.STATX_BASIC_STATS, buffer) != 0)
        {
            int errno = System.Runtime.InteropServices.Marshal.GetLastPInvokeError();
            return errno == Interop.Libc.ENOENT ? null : throw new IOException($"statx('{path}') failed: errno {errno}.", errno);
        }

        ushort mode = *(ushort*)(buffer + Interop.Libc.StatxModeOffset);
        return new FileOwner(
            *(uint*)(buffer + Interop.Libc.StatxUidOffset),
            *(uint*)(buffer + Interop.Libc.StatxGidOffset),
            (UnixFileMode)(mode & 0xFFF),
            *(ulong*)(buffer + Interop.Libc.StatxInodeOffset),
            *(long*)(buffer + Interop.Libc.StatxSizeOffset),
            (mode & Interop.Libc.S_IFMT) == Interop.Libc.S_IFREG);
    }


    public FileStream CreateSegmentFile(string osName, bool groupAccess)
    {
        UnixFileMode mode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        if (groupAccess)
        {
            mode |= UnixFileMode.GroupRead | UnixFileMode.GroupWrite;
        }

        string path = PathOf(osName);
        var stream = new FileStream(path, new FileStreamOptions
        {
            Mode = FileMode.CreateNew,
            Access = FileAccess.ReadWrite,
            Share = FileShare.ReadWrite | FileShare.Delete,
            UnixCreateMode = mode,
        });

        // open(2) applies the umask to the create mode; set the mode we promised explicitly.
        File.SetUnixFileMode(stream.SafeFileHandle, mode);
        return HoldSharedLock(stream, osName);
    }

    public void Reserve(FileStream segmentFile, long length)
    {
        int error;
        do
        {
            error = Interop.Libc.PosixFallocate(segmentFile.SafeFileHandle, 0, length);
        }
        while (error == Interop.Libc.EINTR);

        if (error != 0)
        {
            throw new IOException($"Could not allocate {length} bytes of shared memory for '{segmentFile.Name}' (posix_fallocate: errno {error}{(error == Interop.Libc.ENOSPC ? ", /dev/shm is full" : "")}).");
        }
    }

    public FileStream OpenSegmentFile(string osName) =>
        HoldSharedLock(new FileStream(PathOf(osName), FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete), osName);

    /// <summary>
    /// Every process that uses a segment holds a shared flock on its file for as long as it has it open
    /// (the mapping keeps the descriptor). The kernel drops the lock when the process dies, even by
    /// SIGKILL, so "nobody uses this segment" is exactly "an exclusive flock succeeds".
    /// </summary>
    private static FileStream HoldSharedLock(FileStream stream, string osName)
    {
        if (Interop.Libc.Flock(stream.SafeFileHandle, Interop.Libc.LOCK_SH | Interop.Libc.LOCK_NB) != 0)
        {
            int errno = System.Runtime.InteropServices.Marshal.GetLastPInvokeError();
            stream.Dispose();
            throw new IOException($"Shared-memory segment '{osName}' is being removed by another process (flock: errno {errno}).");
        }

        return stream;
    }

    public FileStream? OpenSegmentForRemoval(string osName)
    {
        try
        {
            // Read-only and without the users' shared lock: the caller takes the exclusive one on this descriptor.
            return new FileStream(PathOf(osName), FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
    }

    public bool TryLockExclusive(FileStream file) =>
        Interop.Libc.Flock(file.SafeFileHandle, Interop.Libc.LOCK_EX | Interop.Libc.LOCK_NB) == 0;

    public bool UnlinkSegment(string osName)
    {
        string path = PathOf(osName);
        if (!File.Exists(path))
        {
            return false;
        }

        File.Delete(path);
        return true;
    }

    public bool SegmentExists(string osName) => File.Exists(PathOf(osName));

    public IReadOnlyList<string> EnumerateSegments(string prefix) => Enumerate(prefix);

    public bool IsInUse(string osName)
    {
        FileStream stream;
        try
        {
            stream = new FileStream(PathOf(osName), FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        }
        catch (FileNotFoundException)
        {
            return false;
        }

        using (stream)
        {
            // Users hold LOCK_SH (see HoldSharedLock); an exclusive lock succeeds only when none is left.
            return Interop.Libc.Flock(stream.SafeFileHandle, Interop.Libc.LOCK_EX | Interop.Libc.LOCK_NB) != 0;
        }
    }

    public NamedSemaphore CreateSemaphore(string osName, bool groupAccess) =>
        PosixNamedSemaphore.Create(osName, groupAccess ? 0b110_110_000u : 0b110_000_000u);

    public NamedSemaphore OpenSemaphore(string osName) => PosixNamedSemaphore.Open(osName);

    public bool UnlinkSemaphore(string osName) => PosixNamedSemaphore.Unlink(osName);

    public DateTime SemaphoreCreatedUtc(string osName)
    {
        // sem_open writes the file before it links it under its name: its modification time is its birth.
        string path = PathOf("sem." + osName);
        return File.Exists(path) ? File.GetLastWriteTimeUtc(path) : DateTime.MaxValue;
    }

    public IReadOnlyList<string> EnumerateSemaphores(string prefix) =>
        Enumerate("sem." + prefix).Select(static n => n["sem.".Length..]).ToArray();

    /// <remarks>
    /// Called by waiters before each sleep slice: it reads /proc/PID/stat into a stack buffer and parses it
    /// in place, so a waiter's health checks allocate (almost) nothing.
    /// </remarks>
    public unsafe ulong? GetProcessStartTime(int pid)
    {
        // "/proc/<pid>/stat\0" built on the stack, read with open/pread/close: waiters call this every few milliseconds
        // for each peer, and a path string plus a SafeFileHandle per call was the only allocation of a steady-state wait.
        byte* path = stackalloc byte[32];
        int at = 0;
        foreach (byte b in "/proc/"u8)
        {
            path[at++] = b;
        }

        if (!System.Buffers.Text.Utf8Formatter.TryFormat(pid, new Span<byte>(path + at, 12), out int digits))
        {
            return null;
        }

        at += digits;
        foreach (byte b in "/stat"u8)
        {
            path[at++] = b;
        }

        path[at] = 0;
        int fd = Interop.Libc.Open(path, Interop.Libc.O_RDONLY | Interop.Libc.O_CLOEXEC);
        if (fd < 0)
        {
            int errno = System.Runtime.InteropServices.Marshal.GetLastPInvokeError();

            // Out of descriptors, hidepid, another pid namespace...: we cannot tell, so we must not declare it dead
            // (that would skip a live producer's record or break a live lock).
            return errno == Interop.Libc.ENOENT ? null : SharedMemoryPlatform.UnknownStartTime;
        }

        byte* buffer = stackalloc byte[1024];
        nint length;
        try
        {
            length = Interop.Libc.Pread(fd, buffer, 1024, 0);
        }
        finally
        {
            _ = Interop.Libc.Close(fd);
        }

        if (length < 0)
        {
            int errno = System.Runtime.InteropServices.Marshal.GetLastPInvokeError();
            return errno == Interop.Libc.ESRCH ? null : SharedMemoryPlatform.UnknownStartTime; // ESRCH: it exited while we read
        }

        return ParseStartTime(new ReadOnlySpan<byte>(buffer, (int)length));
    }

    /// <summary>
    /// "pid (comm) state ppid ... starttime(22) ...": comm may hold spaces and ')', so fields are counted
    /// after the last ')'. Null for a zombie (Z) or dead (X) process, or text that does not parse.
    /// </summary>
    internal static ulong? ParseStartTime(ReadOnlySpan<byte> stat)
    {
        int close = stat.LastIndexOf((byte)')');
        if (close < 0 || close + 2 >= stat.Length)
        {
            return null;
        }

        ReadOnlySpan<byte> rest = stat[(close + 2)..];
        for (int field = 3; field <= 22; field++)
        {
            int space = rest.IndexOf((byte)' ');
            ReadOnlySpan<byte> value = space < 0 ? rest : rest[..space];
            if (field == 3 && value.Length == 1 && (value[0] == (byte)'Z' || value[0] == (byte)'X'))
            {
                return null;
            }

            if (field == 22)
            {
                return System.Buffers.Text.Utf8Parser.TryParse(value, out ulong start, out int consumed) && consumed == value.Length ? start : null;
            }

            if (space < 0)
            {
                return null;
            }

            rest = rest[(space + 1)..];
        }

        return null;
    }

    private static string PathOf(string osName) => Path.Combine(ShmDirectory, osName);

    private static List<string> Enumerate(string prefix)
    {
        var names = new List<string>();
        foreach (string path in Directory.EnumerateFiles(ShmDirectory, prefix + "*"))
        {
            names.Add(Path.GetFileName(path));
        }

        return names;
    }
}
