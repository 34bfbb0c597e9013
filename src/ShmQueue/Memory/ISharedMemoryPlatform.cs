using ShmIpc.Signaling;

namespace ShmIpc.Memory;

/// <summary>
/// Everything ShmIpc needs from the operating system, in one small seam: where segment files live,
/// how they are created with the right permissions, named semaphores, and process liveness. The rings
/// and the public types never test the OS; they call this, chosen once in <see cref="SharedMemoryPlatform.Current"/>.
/// </summary>
internal interface ISharedMemoryPlatform
{
    /// <summary>Creates the backing file of a segment exclusively, with mode 0600 (0660 with <paramref name="groupAccess"/>).</summary>
    /// <exception cref="IOException">The file exists already.</exception>
    FileStream CreateSegmentFile(string osName, bool groupAccess);

    /// <summary>Allocates the memory of the first <paramref name="length"/> bytes of a segment file now (posix_fallocate).</summary>
    /// <exception cref="IOException">There is not enough shared memory; the message names the file and the size.</exception>
    void Reserve(FileStream segmentFile, long length);

    /// <summary>Opens the backing file of an existing segment for reading and writing.</summary>
    /// <exception cref="FileNotFoundException">No such segment.</exception>
    FileStream OpenSegmentFile(string osName);

    /// <summary>Removes the segment's name; mappings that exist stay valid. False if it did not exist.</summary>
    bool UnlinkSegment(string osName);

    /// <summary>Opens a segment file read-only without taking the users' shared lock (for the stale sweep); null when it does not exist.</summary>
    FileStream? OpenSegmentForRemoval(string osName);

    /// <summary>Takes the exclusive flock on <paramref name="file"/> without waiting: true only when no user maps the segment.</summary>
    bool TryLockExclusive(FileStream file);

    /// <summary>True when a segment of that OS name exists now.</summary>
    bool SegmentExists(string osName);

    /// <summary>The OS names of all segments whose name starts with <paramref name="prefix"/>.</summary>
    IReadOnlyList<string> EnumerateSegments(string prefix);

    /// <summary>True when any process (this one included) has the segment open: users hold a shared lock on it for as long as they map it.</summary>
    bool IsInUse(string osName);

    /// <summary>Creates a named semaphore with value 0, replacing a stale one of the same name.</summary>
    NamedSemaphore CreateSemaphore(string osName, bool groupAccess);

    /// <summary>Opens an existing named semaphore.</summary>
    NamedSemaphore OpenSemaphore(string osName);

    /// <summary>Removes a named semaphore's name. False if it did not exist.</summary>
    bool UnlinkSemaphore(string osName);

    /// <summary>When named semaphore <paramref name="osName"/> was made (UTC); <see cref="DateTime.MaxValue"/> when it does not exist.</summary>
    DateTime SemaphoreCreatedUtc(string osName);

    /// <summary>The OS names of all named semaphores whose name starts with <paramref name="prefix"/>.</summary>
    IReadOnlyList<string> EnumerateSemaphores(string prefix);

    /// <summary>This process.</summary>
    ProcessIdentity CurrentProcess { get; }

    /// <summary>The user this process acts as (its effective user id).</summary>
    uint EffectiveUserId { get; }

    /// <summary>Owner, group and mode of an open segment file.</summary>
    FileOwner GetOwner(FileStream segmentFile);

    /// <summary>Owner, group and mode of segment <paramref name="osName"/>'s file, or null when it does not exist.</summary>
    FileOwner? GetSegmentOwner(string osName);

    /// <summary>Owner, group and mode of named semaphore <paramref name="osName"/>, or null when it does not exist.</summary>
    FileOwner? GetSemaphoreOwner(string osName);

    /// <summary>
    /// The start time of a running process, or null when no such process runs (or it is a zombie:
    /// exited but not yet reaped, which for us is dead); <see cref="ulong.MaxValue"/> when a process
    /// may run but its start time cannot be read (callers must then treat it as alive).
    /// </summary>
    ulong? GetProcessStartTime(int pid);
}

/// <summary>Chooses the platform once per process.</summary>
internal static class SharedMemoryPlatform
{
    private static ISharedMemoryPlatform? s_current;

    /// <summary>"Running, start time unreadable": <see cref="IsAlive"/> counts it as alive.</summary>
    public const ulong UnknownStartTime = ulong.MaxValue;

    /// <summary>The platform for this OS.</summary>
    public static ISharedMemoryPlatform Current => s_current ??= Create();

    private static ISharedMemoryPlatform Create()
    {
        if (OperatingSystem.IsLinux())
        {
            return new LinuxSharedMemoryPlatform();
        }

        throw new PlatformNotSupportedException(
            "ShmIpc runs on Linux today. macOS (POSIX shm_open + sem_open) and Windows (named file mappings + named semaphores) " +
            "plug in behind ISharedMemoryPlatform and are not written yet.");
    }

    /// <summary>
    /// Is the process that <paramref name="identity"/> names still running? When <paramref name="startTimeBits"/> is 32,
    /// only the low 32 bits of the start time are compared (record headers keep 32 bits); 0 compares the pid alone.
    /// </summary>
    public static bool IsAlive(this ISharedMemoryPlatform platform, ProcessIdentity identity, int startTimeBits = 64)
    {
        if (identity.Pid <= 0)
        {
            return false;
        }

        ulong? start = platform.GetProcessStartTime(identity.Pid);
        if (start is null)
        {
            return false;
        }

        if (start == UnknownStartTime)
        {
            return true; // Cannot be read: never declare a process dead on a guess.
        }

        ulong mask = startTimeBits switch
        {
            0 => 0UL,
            32 => 0xFFFF_FFFFUL,
            _ => ulong.MaxValue,
        };
        return (start.Value & mask) == (identity.StartTime & mask);
    }
}
