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
    /// <returns>The names (as given to Create) of the segments removed.</returns>
    public static IReadOnlyList<string> RemoveStaleSegments()
    {
        ISharedMemoryPlatform platform = SharedMemoryPlatform.Current;
        var removed = new List<string>();
        var segments = new HashSet<string>(platform.EnumerateSegments(ShmName.OsPrefix), StringComparer.Ordinal);
        foreach (string osName in segments)
        {
            if (ShmSegment.StaleReason(osName, platform, out int semaphores) is null)
            {
                ShmSegment.UnlinkNames(platform, osName, semaphores);
                removed.Add(osName[ShmName.OsPrefix.Length..]);
            }
        }

        // Semaphores are named "<segment>.s<i>": one whose segment file is gone is an orphan.
        foreach (string semaphore in platform.EnumerateSemaphores(ShmName.OsPrefix))
        {
            int dot = semaphore.LastIndexOf(".s", StringComparison.Ordinal);
            if (dot > 0 && !segments.Contains(semaphore[..dot]) || dot > 0 && removed.Contains(semaphore[ShmName.OsPrefix.Length..dot]))
            {
                platform.UnlinkSemaphore(semaphore);
            }
        }

        return removed;
    }

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
