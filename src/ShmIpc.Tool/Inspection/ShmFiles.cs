using ShmIpc.Memory;
using Libc = ShmIpc.Interop.Libc;

namespace ShmIpc.Tool.Inspection;

/// <summary>Names and file facts of ShmIpc objects in /dev/shm (LAYOUT.md §1): <c>shmipc.NAME</c> and <c>sem.shmipc.NAME.s&lt;i&gt;</c>.</summary>
internal static unsafe class ShmFiles
{
    public const string Directory = "/dev/shm";

    /// <summary>What a semaphore's file name starts with, before its OS name.</summary>
    public const string SemaphoreFilePrefix = "sem.";

    /// <summary>Pool and ShmProcess channels: <c>shmpool-&lt;parent pid&gt;-&lt;parent start time&gt;-...</c> (ShmPool's naming).</summary>
    public const string PoolChannelPrefix = "shmpool-";

    // struct statx (the same on every Linux architecture): fields the tool needs beyond those ShmQueue reads.
    private const uint StatxWanted = 0xFFF; // STATX_BASIC_STATS | STATX_BTIME
    private const uint StatxBirthTimeBit = 0x800;
    private const int StatxMaskOffset = 0;
    private const int StatxInodeOffset = 32;
    private const int StatxBirthTimeOffset = 80;
    private const int StatxChangeTimeOffset = 96;
    private const int StatxDeviceMajorOffset = 136;
    private const int StatxDeviceMinorOffset = 140;

    public static string SegmentPath(string osName) => Path.Combine(Directory, osName);

    public static string SemaphorePath(string osName) => Path.Combine(Directory, SemaphoreFilePrefix + osName);

    /// <summary>
    /// The OS name of segment <paramref name="name"/>, however the user wrote it: <c>jobs</c>, <c>shmipc.jobs</c>
    /// or <c>/dev/shm/shmipc.jobs</c>. The name is held to ShmIpc's rules, so no input reaches outside /dev/shm.
    /// </summary>
    /// <exception cref="ArgumentException">Not a valid ShmIpc name (the message says which rule it breaks).</exception>
    public static string ToOsName(string name)
    {
        string file = name.StartsWith(Directory + "/", StringComparison.Ordinal) ? name[(Directory.Length + 1)..] : name;
        string bare = file.StartsWith(ShmName.OsPrefix, StringComparison.Ordinal) ? file[ShmName.OsPrefix.Length..] : file;
        ShmName.Validate(bare, nameof(name));
        return ShmName.ToOsName(bare);
    }

    /// <summary>The name given to Create, from an OS name.</summary>
    public static string ToName(string osName) =>
        osName.StartsWith(ShmName.OsPrefix, StringComparison.Ordinal) ? osName[ShmName.OsPrefix.Length..] : osName;

    /// <summary>The segment OS name a semaphore OS name (<c>shmipc.NAME.s&lt;i&gt;</c>) belongs to; null when it is not shaped so.</summary>
    public static string? SegmentOfSemaphore(string semaphoreOsName)
    {
        int dot = semaphoreOsName.LastIndexOf(".s", StringComparison.Ordinal);
        return dot > 0 && semaphoreOsName.Length > dot + 2 && semaphoreOsName[(dot + 2)..].All(char.IsAsciiDigit) ? semaphoreOsName[..dot] : null;
    }

    /// <summary>Device and inode of <paramref name="path"/>, as /proc prints them; null when it does not exist.</summary>
    public static ProcessTable.FileKey? KeyOf(string path)
    {
        byte* buffer = stackalloc byte[Libc.StatxSize];
        return Stat(path, buffer)
            ? new ProcessTable.FileKey(*(uint*)(buffer + StatxDeviceMajorOffset), *(uint*)(buffer + StatxDeviceMinorOffset), *(ulong*)(buffer + StatxInodeOffset))
            : null;
    }

    /// <summary>Seconds since the file was made: its birth time, or its last status change (set at creation) where tmpfs keeps no birth time.</summary>
    public static double AgeSeconds(string path)
    {
        byte* buffer = stackalloc byte[Libc.StatxSize];
        if (!Stat(path, buffer))
        {
            return 0;
        }

        bool hasBirth = (*(uint*)(buffer + StatxMaskOffset) & StatxBirthTimeBit) != 0;
        byte* stamp = buffer + (hasBirth ? StatxBirthTimeOffset : StatxChangeTimeOffset);
        DateTimeOffset made = DateTimeOffset.FromUnixTimeSeconds(*(long*)stamp).AddTicks(*(uint*)(stamp + 8) / 100);
        return Math.Max(0, (DateTimeOffset.UtcNow - made).TotalSeconds);
    }

    private static bool Stat(string path, byte* buffer) =>
        Libc.Statx(Libc.AT_FDCWD, path, Libc.AT_SYMLINK_NOFOLLOW, StatxWanted, buffer) == 0;
}
