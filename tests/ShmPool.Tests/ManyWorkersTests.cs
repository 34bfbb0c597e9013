using System.Globalization;
using ShmIpc.Tests.Common;

namespace ShmIpc.Pool.Tests;

/// <summary>
/// Pools with many more workers than cores (issue 16): they start in time linear in their size, no worker is given up
/// for starting slowly, and the pool serves from its first ready worker while the others still start.
/// </summary>
[TestClass]
public sealed class ManyWorkersTests : PoolTestBase
{
    /// <summary>
    /// Python's test suite builds Pool(200). On 2 cores that is ~20 s of worker starts (~100 ms of CPU each), in a child
    /// process (ShmTestHost) whose standard error, which its workers inherit, the test reads: a worker that died on the
    /// way (it used to abort after 30 s without its pipe) or printed anything would show there.
    /// </summary>
    [TestMethod]
    public void Pool_of_200_maps_1000_items_serves_before_all_are_ready_and_no_worker_dies_or_writes_to_stderr()
    {
        ChildProcess app = Children.Start("pool-many", "200", "1000");
        TimeSpan limit = TimeSpan.FromMinutes(3);
        int[] pids = app.WaitForLine("PIDS", limit)["PIDS ".Length..]
            .Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(static p => int.Parse(p, CultureInfo.InvariantCulture)).ToArray();
        string line = app.WaitForLine("MANY", limit);
        TestContext.WriteLine(line);
        Assert.AreEqual(0, app.WaitForExit(limit), app.StandardError);
        Assert.AreEqual("", app.StandardError, "nothing on standard error: no worker aborted or printed a stack trace");
        Assert.AreEqual(200, pids.Distinct().Count(), "every slot had a worker when the Map was done");
        StringAssert.Contains(line, "all-ready-at-first=False", "the first result came before every worker was ready");
        TestSupport.AssertAllGone(pids);
    }

    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    public void A_pool_larger_than_its_start_window_serves_from_its_first_ready_worker_and_WaitForWorkers_sees_all_ready()
    {
        int size = ShmPool.StartWindow * 4;
        ShmPool pool = NewPool(size);
        Assert.AreEqual(81, pool.Apply(TestFunctions.Square, 9));
        Assert.IsFalse(pool.WaitForWorkers(TimeSpan.Zero), "some workers were still starting at the first result");
        Assert.IsTrue(pool.WaitForWorkers(TimeSpan.FromMinutes(1)));
        Children.Track(pool.WorkerPids);
        Assert.AreEqual(size, pool.WorkerPids.Count);
        CollectionAssert.AreEqual(Enumerable.Range(0, 100).Select(TestFunctions.Square).ToArray(),
            pool.Map(TestFunctions.Square, Enumerable.Range(0, 100), chunkSize: 1));
    }

    [TestMethod]
    public void A_pool_no_larger_than_its_start_window_has_every_process_when_the_constructor_returns()
    {
        ShmPool pool = NewPool(2);
        Assert.AreEqual(2, pool.WorkerPids.Count);
        Assert.IsTrue(pool.WaitForWorkers(TestSupport.Deadline));
    }

    [TestMethod]
    public void WaitForWorkers_throws_once_the_pool_cannot_serve()
    {
        ShmPool pool = NewPool(2, new ShmPoolOptions { Initializer = FailingInitializer.Initialize });
        Assert.ThrowsExactly<InvalidOperationException>(() => pool.WaitForWorkers(TestSupport.Deadline), "the initializer threw");

        ShmPool terminated = NewPool(1);
        terminated.Terminate();
        Assert.ThrowsExactly<InvalidOperationException>(() => terminated.WaitForWorkers(TimeSpan.Zero));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => pool.WaitForWorkers(TimeSpan.FromSeconds(-2)));
    }
}
