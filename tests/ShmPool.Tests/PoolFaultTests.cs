using System.Diagnostics;
using ShmIpc.Tests.Common;

namespace ShmIpc.Pool.Tests;

/// <summary>Workers killed and crashing, cancelled and timed-out tasks, Terminate and Close.</summary>
[TestClass]
public sealed class PoolFaultTests : PoolTestBase
{
    private static readonly TimeSpan Deadline = TestSupport.Deadline;

    public TestContext TestContext { get; set; } = null!;


    private int WaitForPid(string pidFile)
    {
        TestSupport.WaitUntil(() => File.Exists(pidFile) && new FileInfo(pidFile).Length > 0, "a worker reports its pid");
        int pid = int.Parse(File.ReadAllText(pidFile), System.Globalization.CultureInfo.InvariantCulture);
        File.Delete(pidFile);
        Children.Track(pid);
        return pid;
    }

    [TestMethod]
    public void A_worker_killed_mid_Map_fails_the_Map_with_ShmWorkerCrashedException_and_the_pool_serves_on()
    {
        ShmPool pool = NewPool();
        string pidFile = TestSupport.TempFile("midmap");
        (int, string)[] items = Enumerable.Range(0, 40).Select(i => (i, pidFile)).ToArray();
        ShmAsyncResult<int[]> map = pool.MapAsync(TestFunctions.SquareOrBlock, items, chunkSize: 4);
        int victim = WaitForPid(pidFile);

        ChildProcess.Signal(victim, "KILL");
        var e = Assert.ThrowsExactly<ShmWorkerCrashedException>(() => map.Get(Deadline));
        Assert.AreEqual(victim, e.Pid);
        Assert.AreEqual(-9, e.ExitCode);
        StringAssert.Contains(e.Message, $"Worker process {victim}");
        StringAssert.Contains(e.Message, "killed by signal 9 (SIGKILL)");

        // Replaced: the pool keeps its size with a new process, and serves.
        TestSupport.WaitUntil(() => pool.WorkerPids.Count == 2 && !pool.WorkerPids.Contains(victim), "the worker is replaced");
        Children.Track(pool.WorkerPids);
        int[] again = pool.Map(TestFunctions.Square, Enumerable.Range(0, 1000));
        CollectionAssert.AreEqual(Enumerable.Range(0, 1000).Select(TestFunctions.Square).ToArray(), again);
    }

    [TestMethod]
    public void Exactly_the_tasks_the_killed_worker_held_fail_and_every_other_task_completes()
    {
        ShmPool pool = NewPool();
        string pidFile = TestSupport.TempFile("held");
        var results = new List<(int X, ShmAsyncResult<int> Result)>();
        for (int x = 0; x < 30; x++)
        {
            results.Add((x, pool.ApplyAsync(TestFunctions.SquareOrBlock, (x, pidFile))));
        }

        int victim = WaitForPid(pidFile);
        ChildProcess.Signal(victim, "KILL");
        int failed = 0;
        foreach ((int x, ShmAsyncResult<int> result) in results)
        {
            Assert.IsTrue(result.Wait(Deadline), $"task {x} completed");
            if (result.IsSuccessful)
            {
                Assert.AreEqual(x * x, result.Get(Deadline));
                continue;
            }

            failed++;
            var e = Assert.ThrowsExactly<ShmWorkerCrashedException>(() => result.Get(Deadline));
            Assert.AreEqual(victim, e.Pid, $"task {x} failed on another worker");
        }

        Assert.IsFalse(results[13].Result.IsSuccessful, "the task that was running when the worker was killed");
        Assert.IsTrue(failed <= ShmPoolOptions.Default.MaxChunksInFlightPerWorker, $"{failed} tasks failed; a worker holds at most 2");
    }

    [TestMethod]
    public void A_task_whose_worker_crashed_is_retried_when_allowed()
    {
        ShmPool pool = NewPool(1, new ShmPoolOptions { TaskRetries = 1 });
        string marker = TestSupport.TempFile("retry");
        try
        {
            Assert.AreEqual(42, pool.Apply(TestFunctions.CrashOnce, marker));
        }
        finally
        {
            File.Delete(marker);
        }

        ShmPool strict = NewPool(1);
        marker = TestSupport.TempFile("noretry");
        try
        {
            var e = Assert.ThrowsExactly<ShmWorkerCrashedException>(() => strict.Apply(TestFunctions.CrashOnce, marker));
            StringAssert.Contains(e.Message, "SIGABRT");
        }
        finally
        {
            File.Delete(marker);
        }
    }

    [TestMethod]
    public void A_large_Map_chunk_whose_worker_crashed_is_sent_again_intact()
    {
        // 20,000 ints a chunk: its message (80 KB) lies in an array rented from the shared pool, which must stay
        // the chunk's until the chunk is settled, so the resend after the crash carries the same items.
        string marker = TestSupport.TempFile("crash-map");
        try
        {
            ShmPool pool = NewPool(2, new ShmPoolOptions
            {
                TaskRetries = 1,
                Environment = new Dictionary<string, string> { [TestFunctions.CrashMarkerVariable] = marker },
            });
            var items = Enumerable.Range(0, 100_000).ToList();
            int[] results = pool.Map(TestFunctions.CrashOnceOn, items, chunkSize: 20_000);
            Assert.IsTrue(File.Exists(marker), "a worker crashed on item 12,345");
            CollectionAssert.AreEqual(items.Select(i => i * 2).ToArray(), results);
            CollectionAssert.AreEqual(items.Select(i => i * 2).ToArray(), pool.Map(TestFunctions.CrashOnceOn, items, chunkSize: 20_000), "and the pool serves on");
        }
        finally
        {
            File.Delete(marker);
        }
    }

    [TestMethod]
    public void Get_returns_at_its_deadline_and_Cancel_stops_only_that_task_by_replacing_its_worker()
    {
        ShmPool pool = NewPool(1);
        string pidFile = TestSupport.TempFile("cancel");
        ShmAsyncResult<int> stuck = pool.ApplyAsync(TestFunctions.BlockForever, pidFile);
        ShmAsyncResult<int> behind = pool.ApplyAsync(TestFunctions.Square, 6);
        int victim = WaitForPid(pidFile);

        var watch = Stopwatch.StartNew();
        Assert.ThrowsExactly<TimeoutException>(() => stuck.Get(TimeSpan.FromMilliseconds(200)));
        Assert.IsTrue(watch.Elapsed < TimeSpan.FromSeconds(2), watch.Elapsed.ToString());
        Assert.IsFalse(stuck.IsReady);
        Assert.IsTrue(ChildProcesses.IsRunning(victim), "the task keeps running after Get timed out");

        stuck.Cancel();
        Assert.IsTrue(stuck.Wait(Deadline));
        Assert.IsFalse(stuck.IsSuccessful);
        Assert.ThrowsExactly<OperationCanceledException>(() => stuck.Get(Deadline));
        Assert.AreEqual(36, behind.Get(Deadline), "the task queued behind it on the same worker is sent again, not failed");
        Assert.AreNotEqual(victim, pool.Apply(TestFunctions.Pid, 0));
    }

    [TestMethod]
    public void The_task_timeout_option_kills_a_task_that_runs_too_long_and_fails_only_it()
    {
        ShmPool pool = NewPool(2, new ShmPoolOptions { TaskTimeout = TimeSpan.FromMilliseconds(300) });
        string pidFile = TestSupport.TempFile("tasktimeout");
        ShmAsyncResult<int> stuck = pool.ApplyAsync(TestFunctions.BlockForever, pidFile);
        int victim = WaitForPid(pidFile);
        var e = Assert.ThrowsExactly<TimeoutException>(() => stuck.Get(Deadline));
        StringAssert.Contains(e.Message, $"worker {victim} was killed and replaced");
        Assert.AreEqual(64, pool.Apply(TestFunctions.Square, 8));
    }

    [TestMethod]
    public void A_synchronous_Apply_whose_worker_is_killed_while_the_caller_receives_fails_with_ShmWorkerCrashedException()
    {
        // Apply on an idle worker takes the reply on the calling thread; the worker's end must still be settled.
        ShmPool pool = NewPool(1);
        string pidFile = TestSupport.TempFile("synckill");
        Task<int> call = Task.Run(() => pool.Apply(TestFunctions.BlockForever, pidFile));
        int victim = WaitForPid(pidFile);
        ChildProcess.Signal(victim, "KILL");
        var e = Assert.ThrowsExactly<ShmWorkerCrashedException>(() => call.GetAwaiter().GetResult());
        Assert.AreEqual(victim, e.Pid);
        Assert.AreEqual(-9, e.ExitCode);
        Assert.AreNotEqual(victim, pool.Apply(TestFunctions.Pid, 0));
    }

    [TestMethod]
    public void A_synchronous_Apply_that_runs_past_the_task_timeout_fails_with_TimeoutException()
    {
        ShmPool pool = NewPool(1, new ShmPoolOptions { TaskTimeout = TimeSpan.FromMilliseconds(300) });
        string pidFile = TestSupport.TempFile("synctimeout");
        var watch = Stopwatch.StartNew();
        var e = Assert.ThrowsExactly<TimeoutException>(() => pool.Apply(TestFunctions.BlockForever, pidFile));
        Assert.IsTrue(watch.Elapsed < TimeSpan.FromSeconds(5), watch.Elapsed.ToString());
        Children.Track(int.Parse(File.ReadAllText(pidFile), System.Globalization.CultureInfo.InvariantCulture));
        File.Delete(pidFile);
        StringAssert.Contains(e.Message, "was killed and replaced");
        Assert.AreEqual(64, pool.Apply(TestFunctions.Square, 8));
    }

    [TestMethod]
    public void An_idle_worker_killed_is_noticed_and_replaced()
    {
        // Idle workers' readers are parked (not receiving); they ask the OS now and then.
        ShmPool pool = NewPool(1);
        int victim = pool.Apply(TestFunctions.Pid, 0);
        ChildProcess.Signal(victim, "KILL");
        TestSupport.WaitUntil(() => pool.WorkerPids.Count == 1 && pool.WorkerPids[0] != victim, "the killed idle worker is replaced");
        Children.Track(pool.WorkerPids);
        Assert.AreNotEqual(victim, pool.Apply(TestFunctions.Pid, 0));
    }

    [TestMethod]
    public void Synchronous_Applies_from_many_threads_and_a_Map_share_the_workers_correctly()
    {
        ShmPool pool = NewPool(2);
        ShmAsyncResult<int[]> map = pool.MapAsync(TestFunctions.Square, Enumerable.Range(0, 20_000), chunkSize: 50);
        Parallel.For(0, 4, t =>
        {
            for (int i = 0; i < 500; i++)
            {
                Assert.AreEqual(i * i, pool.Apply(TestFunctions.Square, i));
            }
        });
        CollectionAssert.AreEqual(Enumerable.Range(0, 20_000).Select(static i => i * i).ToArray(), map.Get(Deadline));
        Assert.AreEqual(49, pool.ApplyAsync(TestFunctions.Square, 7).Get(Deadline));
    }

    [TestMethod]
    public void Terminate_ends_every_worker_promptly_and_fails_what_was_not_done()
    {
        ShmPool pool = NewPool(2);
        string pidFile = TestSupport.TempFile("terminate");
        ShmAsyncResult<int> stuck = pool.ApplyAsync(TestFunctions.BlockForever, pidFile);
        _ = WaitForPid(pidFile);
        int[] workers = pool.WorkerPids.ToArray();
        var watch = Stopwatch.StartNew();
        pool.Terminate();
        Assert.IsTrue(pool.Join(TimeSpan.FromSeconds(5)));
        TestContext.WriteLine($"Terminate + Join took {watch.ElapsedMilliseconds} ms");
        Assert.IsTrue(watch.Elapsed < TimeSpan.FromSeconds(5));
        TestSupport.AssertAllGone(workers);
        Assert.ThrowsExactly<OperationCanceledException>(() => stuck.Get(Deadline));
        Assert.ThrowsExactly<InvalidOperationException>(() => pool.Apply(TestFunctions.Square, 1));
    }

    [TestMethod]
    public void Close_lets_submitted_work_finish_then_Join_sees_every_worker_exit()
    {
        ShmPool pool = NewPool(2);
        Assert.ThrowsExactly<InvalidOperationException>(() => pool.Join(TimeSpan.Zero));
        ShmAsyncResult<int[]> map = pool.MapAsync(TestFunctions.Square, Enumerable.Range(0, 10_000), chunkSize: 100);
        int[] workers = pool.WorkerPids.ToArray();
        pool.Close();
        Assert.ThrowsExactly<InvalidOperationException>(() => pool.Apply(TestFunctions.Square, 1));
        Assert.IsTrue(pool.Join(Deadline));
        CollectionAssert.AreEqual(Enumerable.Range(0, 10_000).Select(TestFunctions.Square).ToArray(), map.Get(Deadline));
        TestSupport.AssertAllGone(workers);
    }

    [TestMethod]
    public void An_initializer_that_throws_fails_the_tasks_with_its_exception_instead_of_respawning_forever()
    {
        ShmPool pool = NewPool(1, new ShmPoolOptions { Initializer = FailingInitializer.Initialize });
        var e = Assert.ThrowsExactly<InvalidOperationException>(() => pool.Apply(TestFunctions.Square, 2));
        var remote = e.InnerException as ShmRemoteException;
        Assert.IsNotNull(remote, e.ToString());
        Assert.AreEqual("no database today", remote.RemoteMessage);
        Assert.ThrowsExactly<InvalidOperationException>(() => pool.Apply(TestFunctions.Square, 2));
    }

    [TestMethod]
    public void Chunks_and_results_longer_than_a_pipe_ring_go_through_side_segments()
    {
        // Issue 17: what used to fail with "Use a smaller chunk size" now travels in a side segment.
        ShmPool pool = NewPool(1);
        string[] results = pool.Map(Inflate, Enumerable.Repeat(300_000, 8), chunkSize: 8);
        Assert.AreEqual(8, results.Length);
        Assert.AreEqual(300_000, results[7].Length);
        CollectionAssert.AreEqual(Enumerable.Repeat(300_000, 8).ToArray(), pool.Map(Length, Enumerable.Repeat(new string('x', 300_000), 8), chunkSize: 8));
    }

    public static string Inflate(int length) => new('x', length);

    public static int Length(string s) => s.Length;

    [TestMethod]
    public void Apply_round_trip_latency()
    {
        ShmPool pool = NewPool(1);
        for (int i = 0; i < 200; i++)
        {
            _ = pool.Apply(TestFunctions.Square, i); // warm up JIT on both sides
        }

        var samples = new double[2000];
        for (int i = 0; i < samples.Length; i++)
        {
            long start = Stopwatch.GetTimestamp();
            _ = pool.Apply(TestFunctions.Square, i);
            samples[i] = Stopwatch.GetElapsedTime(start).TotalMicroseconds;
        }

        Array.Sort(samples);
        string line = $"Apply round trip, 1 worker, {samples.Length} calls: p50 {samples[samples.Length / 2]:0} µs, p90 {samples[samples.Length * 9 / 10]:0} µs, p99 {samples[samples.Length * 99 / 100]:0} µs";
        TestContext.WriteLine(line);
        Console.WriteLine(line);
        Assert.IsTrue(samples[samples.Length / 2] < 20_000, line);
    }
}
