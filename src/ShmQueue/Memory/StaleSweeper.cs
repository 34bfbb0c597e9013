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

    private static long s_nextSweep;
    private static int s_running;

    /// <summary>Starts a sweep in the background unless one ran less than <see cref="Interval"/> ago (or <paramref name="force"/>) or one runs now.</summary>
    public static void Poke(bool force = false)
    {
        long now = Stopwatch.GetTimestamp();
        long next = Volatile.Read(ref s_nextSweep);
        if (!force && now < next)
        {
            return;
        }

        if (Interlocked.CompareExchange(ref s_running, 1, 0) != 0)
        {
            return; // one is under way; it will see what this caller would have seen, or the next poke will
        }

        Volatile.Write(ref s_nextSweep, now + (long)(Interval.TotalSeconds * Stopwatch.Frequency));
        ThreadPool.UnsafeQueueUserWorkItem(static _ =>
        {
            try
            {
                Sweep(automatic: true);
            }
#pragma warning disable CA1031 // Housekeeping in the background: a failure (a file vanishing under us, EACCES) must not crash the process.
            catch (Exception)
#pragma warning restore CA1031
            {
            }
            finally
            {
                Volatile.Write(ref s_running, 0);
            }
        }, null);
    }

    /// <summary>Runs a sweep now, on the caller's thread (what <see cref="ShmMaintenance.RemoveStaleSegments"/> does).</summary>
    /// <returns>The names (as given to Create) of the segments removed.</returns>
    public static List<string> Sweep(bool automatic)
    {
        ISharedMemoryPlatform platform = SharedMemoryPlatform.Current;
        var removed = new List<string>();
        var segments = new HashSet<string>(platform.EnumerateSegments(ShmName.OsPrefix), StringComparer.Ordinal);
        foreach (string osName in segments)
        {
            try
            {
                if (ShmSegment.StaleReason(osName, platform, out int semaphores, automatic) is null)
                {
                    ShmSegment.UnlinkNames(platform, osName, semaphores);
                    removed.Add(osName[ShmName.OsPrefix.Length..]);
                }
            }
            catch (Exception e) when (e is UnauthorizedAccessException or IOException)
            {
                // Another user's segment (we may not read or remove it), or one that vanished under us: not ours to judge.
            }
        }

        // Semaphores are named "<segment>.s<i>": one whose segment file is gone (and was not being made just now) is an orphan.
        foreach (string semaphore in platform.EnumerateSemaphores(ShmName.OsPrefix))
        {
            int dot = semaphore.LastIndexOf(".s", StringComparison.Ordinal);
            if (dot <= 0)
            {
                continue;
            }

            string segment = semaphore[..dot];
            bool orphan = !segments.Contains(segment) && !platform.SegmentExists(segment);
            if (orphan || removed.Contains(segment[ShmName.OsPrefix.Length..]))
            {
                try
                {
                    platform.UnlinkSemaphore(semaphore);
                }
                catch (Exception e) when (e is UnauthorizedAccessException or IOException)
                {
                    // Another user's semaphore: not ours to remove.
                }
            }
        }

        return removed;
    }
}
