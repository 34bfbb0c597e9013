using ShmIpc.Memory;

namespace ShmIpc.Tool.Inspection;

/// <summary>
/// <c>shmipc clean</c>: removes stale segments and orphan semaphores by exactly the test and the steps of
/// <see cref="ShmMaintenance.RemoveStaleSegments"/> (<see cref="ShmSegment.TryRemoveStale"/>: ours, creator dead by pid
/// and start time, judged and removed under an exclusive flock), so a segment that a live process has open is never removed. With a dry run it applies the test and removes nothing.
/// </summary>
/// <remarks>
/// Written out here rather than calling the sweep so that a dry run and a real run take the same path, and so
/// that a run can be narrowed to named objects (the tool's tests clean only what they made).
/// </remarks>
internal static class Cleaner
{
    public static CleanReport Clean(bool dryRun, IReadOnlyCollection<string>? names = null, ISharedMemoryPlatform? platform = null)
    {
        platform ??= SharedMemoryPlatform.Current;
        HashSet<string>? wanted = names is { Count: > 0 } ? names.Select(ShmFiles.ToOsName).ToHashSet(StringComparer.Ordinal) : null;
        var removed = new List<CleanedObject>();
        var kept = new List<KeptObject>();
        var segments = new HashSet<string>(platform.EnumerateSegments(ShmName.OsPrefix), StringComparer.Ordinal);
        var removedSegments = new HashSet<string>(StringComparer.Ordinal);
        foreach (string osName in segments.Where(n => wanted is null || wanted.Contains(n)).Order(StringComparer.Ordinal))
        {
            string name = ShmFiles.ToName(osName);
            ObjectKind kind = KindOf(osName);
            try
            {
                // A dry run only judges; a real one judges and removes under one exclusive lock (TryRemoveStale), so a
                // creator that re-makes the name meanwhile never loses its new segment.
                string? reason = dryRun
                    ? ShmSegment.StaleReason(osName, platform, out _, automatic: false)
                    : ShmSegment.TryRemoveStale(osName, platform, automatic: false, out string? why) is ShmSegment.Removal.Removed or ShmSegment.Removal.Gone
                        ? null
                        : why;
                if (reason is not null)
                {
                    kept.Add(new KeptObject(name, reason));
                    continue;
                }

                removedSegments.Add(osName);
                removed.Add(new CleanedObject(name, kind, kind == ObjectKind.SideSegment
                    ? "its owner (sender, host or consumer, by its state) is gone and no process has it open"
                    : "its creator is dead and no process has it open"));
            }
            catch (Exception e) when (e is UnauthorizedAccessException or IOException)
            {
                kept.Add(new KeptObject(name, $"it cannot be examined ({e.Message}): not ours to judge"));
            }
        }

        // Semaphores are named "<segment>.s<i>": one whose segment file is gone is an orphan (the sweep's rule).
        foreach (string semaphore in platform.EnumerateSemaphores(ShmName.OsPrefix).Order(StringComparer.Ordinal))
        {
            string? segment = ShmFiles.SegmentOfSemaphore(semaphore);
            if (segment is null || (wanted is not null && !wanted.Contains(segment)))
            {
                continue;
            }

            if (removedSegments.Contains(segment))
            {
                if (!dryRun)
                {
                    platform.UnlinkSemaphore(semaphore); // one beyond the header's count: the sweep takes it with its segment too
                }

                continue;
            }

            if (segments.Contains(segment) || platform.SegmentExists(segment))
            {
                continue;
            }

            try
            {
                if (!dryRun)
                {
                    platform.UnlinkSemaphore(semaphore);
                }

                removed.Add(new CleanedObject(ShmFiles.ToName(semaphore), ObjectKind.Semaphore, "its segment does not exist"));
            }
            catch (Exception e) when (e is UnauthorizedAccessException or IOException)
            {
                kept.Add(new KeptObject(ShmFiles.ToName(semaphore), $"it cannot be removed ({e.Message})"));
            }
        }

        return new CleanReport(dryRun, removed, kept);
    }

    /// <summary>The kind the header states (read-only), for the report.</summary>
    private static ObjectKind KindOf(string osName)
    {
        using ReadOnlySegment? segment = ReadOnlySegment.Open(ShmFiles.SegmentPath(osName), out Layout.SegmentHeaderDescriptor.Fields? header, out _);
        return header is { } h ? ShmInspector.KindOf(h.Kind, ShmFiles.ToName(osName)) : ObjectKind.Unknown;
    }
}
