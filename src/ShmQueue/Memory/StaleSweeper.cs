using System.Diagnostics;

namespace ShmIpc.Memory;

/// <summary>
/// Removes what crashed processes left in <c>/dev/shm</c> without anyone asking: every create or open of a
/// ShmIpc object pokes the sweeper, which at most once per <see cref="Interval"/> per process removes, on a
/// thread-pool thread, the segments whose creator is proven dead (pid + start time) and that no process maps,
/// and the semaphores whose segment is gone. A parent that sees a child die pokes it at once
/// (<see cref="Poke(bool)"/> with <c>force</c>), so what the child created goes with it.
/// </summary>
/// <remarks>
/// Python runs a resource-tracker process per program for this; a tracker killed with its program leaks
/// anyway. Here any ShmIpc process on the machine cleans up after any dead one, and the test "creator dead,
/// nobody maps it" is exact (flock, see <see cref="ISharedMemoryPlatform.IsInUse"/>), so a live user's object
/// is never removed. Segments whose creator asked to keep them (<c>UnlinkOnDispose = false</c>) are left to
/// <see cref="ShmMaintenance.RemoveStaleSegments"/>. The cost is one directory listing and one header read
/// per ShmIpc segment per interval, off the caller's thread.
/// </remarks>
internal static class StaleSweeper
{
    /// <summary>The shortest time between two sweeps a process starts by itself.</summary>
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(1);

    /// <summary>A semaphore whose segment file is gone is an orphan only once it is this old (a creator makes its file first, then its semaphores).</summary>
    private static readonly TimeSpan s_orphanAge = TimeSpan.FromSeconds(2);

    private static long s_nextSweep;
    private static volatile bool s_disabled;

    /// <summary>True in a child whose parent sweeps for it (<see cref="Internal.ShmQueueContract.LeaveSweepsToParent"/>): pokes start nothing.</summary>
    public static bool Disabled
    {
        get => s_disabled;
        set => s_disabled = value;
    }

    private static int s_running;
    private static int s_again;

    /// <summary>
    /// Starts a sweep in the background unless one ran less than <see cref="Interval"/> ago (<paramref name="force"/>
    /// skips that test). While one runs, a forced poke makes it run once more when it ends: the running one may have
    /// judged the segments of a child that was still alive then.
    /// </summary>
    public static void Poke(bool force = false)
    {
        if (s_disabled)
        {
            return;
        }

        long now = Stopwatch.GetTimestamp();
        if (!force && now < Volatile.Read(ref s_nextSweep))
        {
            return;
        }

        if (Interlocked.CompareExchange(ref s_running, 1, 0) != 0)
        {
            if (force)
            {
                Volatile.Write(ref s_again, 1);
            }

            return;
        }

        Volatile.Write(ref s_nextSweep, now + (long)(Interval.TotalSeconds * Stopwatch.Frequency));
        ThreadPool.UnsafeQueueUserWorkItem(static _ =>
        {
            do
            {
                Volatile.Write(ref s_again, 0);
                try
                {
                    Sweep(automatic: true);
                }
#pragma warning disable CA1031 // Housekeeping in the background: a failure must not crash the process.
                catch (Exception)
#pragma warning restore CA1031
                {
                }
            }
            while (Volatile.Read(ref s_again) != 0);

            Volatile.Write(ref s_running, 0);

            // A forced poke that came after the last look and before the flag above went down: honour it.
            if (Interlocked.Exchange(ref s_again, 0) != 0)
            {
                Poke(force: true);
            }
        }, null);
    }

    /// <summary>Runs a sweep now, on the caller's thread (what <see cref="ShmMaintenance.RemoveStaleSegments"/> does).</summary>
    /// <returns>The names (as given to Create) of the segments removed.</returns>
    public static List<string> Sweep(bool automatic)
    {
        ISharedMemoryPlatform platform = SharedMemoryPlatform.Current;
        var removed = new List<string>();
        foreach (string osName in platform.EnumerateSegments(ShmName.OsPrefix))
        {
            try
            {
                if (ShmSegment.TryRemoveStale(osName, platform, automatic, out _) == ShmSegment.Removal.Removed)
                {
                    removed.Add(osName[ShmName.OsPrefix.Length..]);
                }
            }
#pragma warning disable CA1031 // One entry we cannot judge (another user's, a file of another kind, one that vanished) must not stop the sweep.
            catch (Exception)
#pragma warning restore CA1031
            {
            }
        }

        // Semaphores are named "<segment>.s<i>". One whose segment file does not exist, and that is older than a
        // creator needs between making its file and its semaphores, is an orphan (a crash between the two unlinks).
        DateTime oldEnough = DateTime.UtcNow - s_orphanAge;
        foreach (string semaphore in platform.EnumerateSemaphores(ShmName.OsPrefix))
        {
            int dot = semaphore.LastIndexOf(".s", StringComparison.Ordinal);
            if (dot <= 0 || platform.SegmentExists(semaphore[..dot]))
            {
                continue;
            }

            try
            {
                if (platform.SemaphoreCreatedUtc(semaphore) < oldEnough && !platform.SegmentExists(semaphore[..dot]))
                {
                    platform.UnlinkSemaphore(semaphore);
                }
            }
#pragma warning disable CA1031 // Another user's semaphore, or one that vanished: not ours to remove.
            catch (Exception)
#pragma warning restore CA1031
            {
            }
        }

        return removed;
    }
}
