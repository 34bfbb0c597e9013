using ShmIpc.Memory;

namespace ShmIpc;

/// <summary>Housekeeping for the shared-memory objects ShmIpc leaves in the system.</summary>
public static class ShmMaintenance
{
    /// <summary>
    /// Removes ShmIpc segments (and their semaphores) whose creator process has exited and that no
    /// process maps any more, and semaphores whose segment is gone. A crashed program leaves such
    /// leftovers; live ones are never touched.
    /// </summary>
    /// <remarks>
    /// ShmIpc also does this by itself, in the background, at most once a second when a process creates or opens
    /// a ShmIpc object, and when a parent sees one of its child processes end. Only this call removes segments
    /// whose creator asked to keep them (<c>UnlinkOnDispose = false</c>).
    /// </remarks>
    /// <returns>The names (as given to Create) of the segments removed.</returns>
    public static IReadOnlyList<string> RemoveStaleSegments() => StaleSweeper.Sweep(automatic: false);

    /// <summary>Removes the segment <paramref name="name"/> and its semaphores, whoever made them. Processes that map it keep their mapping.</summary>
    /// <returns>False when no such segment existed.</returns>
    public static bool Unlink(string name)
    {
        ShmName.Validate(name);
        ISharedMemoryPlatform platform = SharedMemoryPlatform.Current;
        string osName = ShmName.ToOsName(name);
        bool existed = platform.UnlinkSegment(osName);
        for (int i = 0; i < Layout.SegmentHeaderDescriptor.MaxSemaphores; i++)
        {
            existed |= platform.UnlinkSemaphore(ShmName.SemaphoreOsName(osName, i));
        }

        return existed;
    }
}
