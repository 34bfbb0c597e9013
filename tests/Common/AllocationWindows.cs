namespace ShmIpc.Tests.Common;

/// <summary>
/// Counts what a steady-state loop allocates on the calling thread, robust to the test host: the loop runs in several
/// windows and the quietest one is the figure. An allocation per iteration shows in every window; a one-off on the same
/// thread (the runtime tiering a method up, a lazily built object of an earlier test, a timer's work) lands in one window
/// only, and must not fail a zero-allocation check that a loaded CI machine runs.
/// </summary>
internal static class AllocationWindows
{
    /// <summary>Runs <paramref name="iteration"/> <paramref name="windows"/> × <paramref name="perWindow"/> times.</summary>
    /// <returns>The bytes the quietest window allocated, and every window's count for the failure message.</returns>
    public static (long Quietest, string All) Measure(int windows, int perWindow, Action iteration)
    {
        var allocated = new long[windows];
        for (int w = 0; w < windows; w++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 0; i < perWindow; i++)
            {
                iteration();
            }

            allocated[w] = GC.GetAllocatedBytesForCurrentThread() - before;
        }

        return (allocated.Min(), string.Join(", ", allocated));
    }
}
