using System.Diagnostics;
using ShmIpc.Tests.Common;

namespace ShmIpc.Pool.Tests;

/// <summary>
/// CPU-bound Maps of items longer than the pipe's liveness interval (5 ms), on more workers than cores: the case in
/// which a reader sleeps once per result and puts off its /proc lookup of the worker after each one (issue 16).
/// </summary>
[TestClass]
public sealed class LongItemMapTests : PoolTestBase
{
    private static readonly TimeSpan Deadline = TestSupport.Deadline;

    /// <summary>More workers than this machine has cores, at least 3 and at most 8.</summary>
    private static int Oversubscribed => Math.Clamp(Environment.ProcessorCount + 2, 3, 8);

    [TestMethod]
    public void A_Map_of_long_items_on_more_workers_than_cores_returns_every_result_in_order()
    {
        ShmPool pool = NewPool(Oversubscribed);

        // 2 to 10 ms of CPU each, uneven, so that results arrive out of input order from different workers.
        int[] items = Enumerable.Range(0, 3 * Oversubscribed).ToArray();
        long[] results = pool.Map(LongItems.BusyThenSquare, items, chunkSize: 1);

        CollectionAssert.AreEqual(items.Select(x => (long)x * x).ToArray(), results);
    }

    [TestMethod]
    public void A_worker_killed_after_it_sent_results_fails_the_Map_that_waits_on_it()
    {
        ShmPool pool = NewPool(Oversubscribed);
        string pidFile = TestSupport.TempFile("afterresults");

        // Every item but 13 burns a few ms and returns: the victim has sent results (each one puts off the reader's lookup
        // of it) before it takes item 13, which reports its pid and blocks until it is killed.
        (int, string)[] items = Enumerable.Range(0, 40).Select(i => (i, pidFile)).ToArray();
        ShmAsyncResult<long[]> map = pool.MapAsync(LongItems.BusyOrBlock, items, chunkSize: 1);
        TestSupport.WaitUntil(() => File.Exists(pidFile) && new FileInfo(pidFile).Length > 0, "item 13 reports its worker's pid");
        int victim = int.Parse(File.ReadAllText(pidFile), System.Globalization.CultureInfo.InvariantCulture);
        File.Delete(pidFile);
        Children.Track(victim);

        ChildProcess.Signal(victim, "KILL");
        var e = Assert.ThrowsExactly<ShmWorkerCrashedException>(() => map.Get(Deadline));
        Assert.AreEqual(victim, e.Pid);
        Assert.AreEqual(-9, e.ExitCode);

        // Replaced, and serving long items again.
        TestSupport.WaitUntil(() => pool.WorkerPids.Count == Oversubscribed && !pool.WorkerPids.Contains(victim), "the worker is replaced");
        Children.Track(pool.WorkerPids);
        long[] again = pool.Map(LongItems.BusyThenSquare, [1, 2, 3, 4], chunkSize: 1);
        CollectionAssert.AreEqual(new long[] { 1, 4, 9, 16 }, again);
    }
}

/// <summary>The CPU-bound functions of <see cref="LongItemMapTests"/>, run in the workers.</summary>
public static class LongItems
{
    /// <summary>Burns 2 to 10 ms of CPU (by <paramref name="x"/>), then returns its square.</summary>
    public static long BusyThenSquare(int x)
    {
        Burn(TimeSpan.FromMilliseconds(2 + (x * 7 % 5 * 2)));
        return (long)x * x;
    }

    /// <summary>As <see cref="BusyThenSquare"/>, except item 13, which reports its pid to the path and blocks until killed.</summary>
    public static long BusyOrBlock((int X, string Path) item) => item.X == 13 ? TestFunctions.BlockForever(item.Path) : BusyThenSquare(item.X);

    private static void Burn(TimeSpan time)
    {
        long until = Stopwatch.GetTimestamp() + (long)(time.TotalSeconds * Stopwatch.Frequency);
        ulong x = 88172645463325252UL;
        while (Stopwatch.GetTimestamp() < until)
        {
            for (int i = 0; i < 1000; i++)
            {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
            }
        }

        GC.KeepAlive(x);
    }
}
