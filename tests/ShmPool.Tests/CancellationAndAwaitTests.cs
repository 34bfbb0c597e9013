using System.Diagnostics;

namespace ShmIpc.Pool.Tests;

/// <summary>Functions for the cancellation tests: they take long enough that a wait for them can be cancelled.</summary>
public static class SlowFunctions
{
    /// <summary>Sleeps <paramref name="milliseconds"/>, then returns it.</summary>
    public static int SleepThenReturn(int milliseconds)
    {
        Thread.Sleep(milliseconds);
        return milliseconds;
    }
}

/// <summary>
/// The symmetric forms of the pool and process calls: awaiting a pending result, cancelling a blocking call (it throws
/// at once; what was dispatched still runs; the pool stays usable), and the TimeoutException and Try forms.
/// </summary>
[TestClass]
public sealed class CancellationAndAwaitTests : PoolTestBase
{
    /// <summary>How soon a cancelled or timed-out wait must return: far less than the task it waited for (30 s).</summary>
    private static readonly TimeSpan Prompt = TimeSpan.FromSeconds(3);

    private const int Long = 30_000;

    [TestMethod]
    public async Task A_pending_result_can_be_awaited_taken_as_a_task_and_awaited_with_a_token()
    {
        ShmPool pool = NewPool(1);
        Assert.AreEqual(49, await pool.ApplyAsync(TestFunctions.Square, 7));

        ShmAsyncResult<int> pending = pool.ApplyAsync(TestFunctions.Square, 8);
        Assert.AreSame(pending.Task, pending.AsTask());
        Assert.AreEqual(64, await pending.AsTask().WaitAsync(TestSupport.Deadline));
        Assert.AreEqual(64, await pending.GetAsync(CancellationToken.None));

        int[] squares = await pool.MapAsync(TestFunctions.Square, [1, 2, 3]);
        CollectionAssert.AreEqual(new[] { 1, 4, 9 }, squares);

        var e = await Assert.ThrowsExactlyAsync<ShmRemoteException>(async () => await pool.ApplyAsync(TestFunctions.Throw, "awaited"));
        StringAssert.Contains(e.Message, "awaited");
    }

    [TestMethod]
    public void Apply_cancelled_while_its_task_runs_throws_at_once_and_the_pool_stays_usable()
    {
        ShmPool pool = NewPool(2);
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(100));
        var watch = Stopwatch.StartNew();
        Assert.ThrowsExactly<OperationCanceledException>(() => pool.Apply(SlowFunctions.SleepThenReturn, Long, cts.Token));
        Assert.IsLessThan(Prompt, watch.Elapsed, "the cancelled Apply returned promptly");

        // The other worker is free; the one running the abandoned task still runs it (it is not killed).
        Assert.AreEqual(81, pool.Apply(TestFunctions.Square, 9, CancellationToken.None));
        Assert.AreEqual(2, pool.WorkerPids.Count);

        // A token cancelled before the call: nothing is sent.
        Assert.ThrowsExactly<OperationCanceledException>(() => pool.Apply(TestFunctions.Square, 1, new CancellationToken(canceled: true)));
        Assert.AreEqual(16, pool.Apply(TestFunctions.Square, 4));
    }

    [TestMethod]
    public void Map_cancelled_throws_at_once_drops_the_chunks_not_started_and_the_pool_stays_usable()
    {
        ShmPool pool = NewPool(2);
        const int TaskMs = 1_000;
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));
        var watch = Stopwatch.StartNew();
        Assert.ThrowsExactly<OperationCanceledException>(() => pool.Map(SlowFunctions.SleepThenReturn, Enumerable.Repeat(TaskMs, 40), chunkSize: 1, cts.Token));
        Assert.IsLessThan(Prompt, watch.Elapsed, "the cancelled Map returned promptly");

        // The two running chunks finish (about 1 s); the 38 queued ones were dropped, or this would wait ~19 s more.
        watch.Restart();
        CollectionAssert.AreEqual(new[] { 1, 4, 9 }, pool.Map(TestFunctions.Square, [1, 2, 3], CancellationToken.None));
        Assert.IsLessThan(TimeSpan.FromSeconds(10), watch.Elapsed, "the queued chunks of the cancelled Map were dropped");

        CollectionAssert.AreEqual(new[] { "a|1|0.5" }, pool.Starmap(TestFunctions.Join3, [("a", 1, 0.5)], CancellationToken.None));
    }

    [TestMethod]
    public void Imap_cancelled_throws_at_once_from_the_wait_in_progress()
    {
        ShmPool pool = NewPool(1);
        using var cts = new CancellationTokenSource();
        var results = new List<int>();
        var watch = Stopwatch.StartNew();
        Assert.ThrowsExactly<OperationCanceledException>(() =>
        {
            foreach (int r in pool.Imap(SlowFunctions.SleepThenReturn, [1, Long, Long], cts.Token))
            {
                results.Add(r);
                cts.CancelAfter(TimeSpan.FromMilliseconds(100));
            }
        });
        Assert.IsLessThan(Prompt, watch.Elapsed, "the cancelled Imap returned promptly");
        CollectionAssert.AreEqual(new[] { 1 }, results);

        Assert.ThrowsExactly<OperationCanceledException>(() => pool.ImapUnordered(TestFunctions.Square, [1], new CancellationToken(canceled: true)).ToList());
    }

    [TestMethod]
    public void A_cancelled_or_timed_out_wait_for_a_pending_result_leaves_its_task_running()
    {
        ShmPool pool = NewPool(1);
        ShmAsyncResult<int> pending = pool.ApplyAsync(SlowFunctions.SleepThenReturn, 500);
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(50));
        Assert.ThrowsExactly<OperationCanceledException>(() => pending.Get(cts.Token));
        Assert.IsFalse(pending.TryGet(out _, TimeSpan.Zero));
        Assert.IsTrue(pending.TryGet(out int result, TestSupport.Deadline));
        Assert.AreEqual(500, result);
        Assert.AreEqual(500, pending.Get(CancellationToken.None));
    }

    [TestMethod]
    public void Timeout_forms_throw_TimeoutException_and_Try_forms_return_false()
    {
        ShmPool pool = NewPool(2);
        var watch = Stopwatch.StartNew();
        Assert.ThrowsExactly<TimeoutException>(() => pool.Apply(SlowFunctions.SleepThenReturn, Long, TimeSpan.FromMilliseconds(100)));
        Assert.IsFalse(pool.TryApply(SlowFunctions.SleepThenReturn, Long, out int _, TimeSpan.FromMilliseconds(100)));
        Assert.IsLessThan(Prompt, watch.Elapsed, "the timed-out calls returned promptly");

        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => pool.Apply(TestFunctions.Square, 1, TimeSpan.FromMilliseconds(-2)));

        // A bounded wait on a pending result says so, and leaves the task to be cancelled.
        ShmAsyncResult<int> pending = pool.ApplyAsync(SlowFunctions.SleepThenReturn, Long);
        Assert.ThrowsExactly<TimeoutException>(() => pending.Get(TimeSpan.FromMilliseconds(50)));
        Assert.IsFalse(pending.IsReady);
        pending.Cancel();
        Assert.ThrowsExactly<OperationCanceledException>(() => pending.Get());
    }

    [TestMethod]
    public async Task Join_waits_for_the_workers_its_cancellation_and_timeout_stop_only_the_wait()
    {
        ShmPool pool = NewPool(1);
        _ = pool.ApplyAsync(SlowFunctions.SleepThenReturn, Long);
        Assert.ThrowsExactly<InvalidOperationException>(() => pool.Join(CancellationToken.None));
        pool.Close();

        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(100));
        var watch = Stopwatch.StartNew();
        Assert.ThrowsExactly<OperationCanceledException>(() => pool.Join(cts.Token));
        Assert.IsLessThan(Prompt, watch.Elapsed, "the cancelled Join returned promptly");
        Assert.IsFalse(pool.Join(TimeSpan.FromMilliseconds(50)));
        await Assert.ThrowsAsync<OperationCanceledException>(() => pool.JoinAsync(new CancellationToken(canceled: true)));

        pool.Terminate();
        await pool.JoinAsync().WaitAsync(TestSupport.Deadline);
        Assert.IsTrue(pool.Join(TimeSpan.Zero));
        pool.Join();
        Assert.AreEqual(0, pool.WorkerPids.Count);
    }
}

/// <summary>The same forms on <see cref="ShmProcess{TResult}"/>: GetResult and Join.</summary>
[TestClass]
public sealed class ProcessCancellationTests : PoolTestBase
{
    private static readonly TimeSpan Prompt = TimeSpan.FromSeconds(3);

    [TestMethod]
    public async Task GetResult_in_every_form_returns_the_result()
    {
        using ShmProcess<int> p = ShmProcess.Start<int, int>(TestFunctions.Square, 12);
        Children.Track(p.Pid);
        Assert.IsTrue(p.TryGetResult(out int viaTry, TestSupport.Deadline));
        Assert.AreEqual(144, viaTry);
        Assert.AreEqual(144, p.GetResult());
        Assert.AreEqual(144, p.GetResult(CancellationToken.None));
        Assert.AreEqual(144, await p.GetResultAsync().WaitAsync(TestSupport.Deadline));
        p.Join(CancellationToken.None);
        p.Join();
        Assert.AreEqual(0, p.ExitCode);
    }

    [TestMethod]
    public async Task Cancelled_and_timed_out_waits_throw_at_once_and_the_child_keeps_running()
    {
        using ShmProcess<int> p = ShmProcess.Start<int, int>(SlowFunctions.SleepThenReturn, 30_000);
        Children.Track(p.Pid);

        using (var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(100)))
        {
            var watch = Stopwatch.StartNew();
            Assert.ThrowsExactly<OperationCanceledException>(() => p.GetResult(cts.Token));
            Assert.IsLessThan(Prompt, watch.Elapsed, "the cancelled GetResult returned promptly");
        }

        using (var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(100)))
        {
            var watch = Stopwatch.StartNew();
            Assert.Throws<OperationCanceledException>(() => p.Join(cts.Token)); // a TaskCanceledException, from the awaited exit
            Assert.IsLessThan(Prompt, watch.Elapsed, "the cancelled Join returned promptly");
        }

        await Assert.ThrowsAsync<OperationCanceledException>(() => p.GetResultAsync(new CancellationToken(canceled: true)));
        Assert.IsFalse(p.TryGetResult(out _, TimeSpan.FromMilliseconds(50)));
        Assert.ThrowsExactly<TimeoutException>(() => p.GetResult(TimeSpan.FromMilliseconds(50)));
        Assert.IsFalse(p.Join(TimeSpan.FromMilliseconds(50)));
        Assert.IsTrue(p.IsAlive);

        p.Kill();
        p.Join();
        await Assert.ThrowsExactlyAsync<ShmWorkerCrashedException>(() => p.GetResultAsync());
        Assert.AreEqual(-9, p.ExitCode);
    }
}
