using ShmIpc.Tests.Common;

namespace ShmIpc.Pool.Tests;

/// <summary>What a new user and Python's own multiprocessing tests found (issue 12), each pinned by a test.</summary>
[TestClass]
public sealed class NewUserTests : PoolTestBase
{
    private static IEnumerable<int> ThrowsAtThree()
    {
        for (int i = 0; ; i++)
        {
            if (i == 3)
            {
                throw new InvalidOperationException("input item 3 is bad");
            }

            yield return i;
        }
    }

    [TestMethod]
    [DataRow(1)]
    [DataRow(2)]
    [DataRow(3)]
    [DataRow(10)]
    public void Imap_yields_the_results_before_a_failing_input_then_throws(int chunkSize)
    {
        // Python: imap over an input that raises at item 3 yields f(0), f(1), f(2), then raises.
        ShmPool pool = NewPool();
        var seen = new List<int>();
        var e = Assert.ThrowsExactly<InvalidOperationException>(() =>
        {
            foreach (int r in pool.Imap(TestFunctions.Square, ThrowsAtThree(), chunkSize))
            {
                seen.Add(r);
            }
        });
        Assert.AreEqual("input item 3 is bad", e.Message);
        CollectionAssert.AreEqual(new[] { 0, 1, 4 }, seen);

        seen.Clear();
        Assert.ThrowsExactly<InvalidOperationException>(() =>
        {
            foreach (int r in pool.ImapUnordered(TestFunctions.Square, ThrowsAtThree(), chunkSize))
            {
                seen.Add(r);
            }
        });
        CollectionAssert.AreEquivalent(new[] { 0, 1, 4 }, seen);
    }

    [TestMethod]
    public async Task ImapAsync_yields_the_results_before_a_failing_input_then_throws()
    {
        ShmPool pool = NewPool();
        var seen = new List<int>();
        await Assert.ThrowsExactlyAsync<InvalidOperationException>(async () =>
        {
            await foreach (int r in pool.ImapAsync(TestFunctions.Square, ThrowsAtThree(), chunkSize: 2))
            {
                seen.Add(r);
            }
        });
        CollectionAssert.AreEqual(new[] { 0, 1, 4 }, seen);
    }

    [TestMethod]
    public void A_crashing_child_flushes_its_standard_error_first()
    {
        string path = TestSupport.TempFile("stderr");
        try
        {
            using var child = ShmProcess.Start(TestFunctions.BufferedErrorThenThrow, path);
            Children.Track(child.Pid);
            Assert.ThrowsExactly<ShmRemoteException>(() => child.GetResult(TestSupport.Deadline));
            Assert.IsTrue(child.Join(TestSupport.Deadline));
            Assert.AreEqual(1, child.ExitCode);
            string text = File.ReadAllText(path);
            StringAssert.Contains(text, "written before the crash");
            StringAssert.Contains(text, "the target failed", "the child's traceback goes to its standard error, as in Python");
        }
        finally
        {
            File.Delete(path);
        }
    }

    [TestMethod]
    public void A_terminated_child_flushes_its_standard_output_first()
    {
        string path = TestSupport.TempFile("stdout");
        try
        {
            using var child = ShmProcess.Start(TestFunctions.BufferedOutThenWait, path);
            Children.Track(child.Pid);
            TestSupport.WaitUntil(() => File.Exists(path + ".ready"), "the child has written");
            child.Terminate();
            Assert.IsTrue(child.Join(TestSupport.Deadline));
            Assert.AreEqual(-15, child.ExitCode);
            Assert.AreEqual("written before SIGTERM", File.ReadAllText(path));
        }
        finally
        {
            File.Delete(path);
            File.Delete(path + ".ready");
        }
    }

    private static string[] FilesOf(string name) => Directory.GetFiles("/dev/shm", $"*shmipc.{name}*");

    /// <summary>True once queue <paramref name="name"/> can be opened: its creator has published it.</summary>
    private static bool IsPublished(string name)
    {
        try
        {
            using (ShmQueue.Open(name, new ShmQueueOptions { OpenTimeout = TimeSpan.Zero }))
            {
                return true;
            }
        }
        catch (Exception e) when (e is FileNotFoundException or ShmInvalidSegmentException)
        {
            return false;
        }
    }

    private static string LeakName(string what) => $"t{Environment.ProcessId}-{what}-{Guid.NewGuid():N}";

    [TestMethod]
    public void A_parent_removes_what_its_killed_child_created()
    {
        string name = LeakName("killed");
        using var child = ShmProcess.Start(TestFunctions.CreateQueueAndWait, name);
        Children.Track(child.Pid);
        TestSupport.WaitUntil(() => IsPublished(name), "the child has created its queue");
        child.Kill();
        Assert.IsTrue(child.Join(TestSupport.Deadline));
        TestSupport.WaitUntil(() => FilesOf(name).Length == 0, "the parent has removed the dead child's queue", TimeSpan.FromSeconds(10));
    }

    [TestMethod]
    public void The_next_create_anywhere_removes_what_a_terminated_creator_left()
    {
        string name = LeakName("terminated");
        var child = ShmProcess.Start(TestFunctions.CreateQueueAndWait, name);
        Children.Track(child.Pid);
        TestSupport.WaitUntil(() => IsPublished(name), "the child has created its queue");
        child.Terminate();
        TestSupport.WaitUntil(() => !child.IsAlive, "the child has ended");

        // Not Join or Dispose (they sweep at once): only the creates and opens any ShmIpc process makes.
        long nextCreate = 0;
        TestSupport.WaitUntil(() =>
        {
            if (System.Diagnostics.Stopwatch.GetTimestamp() >= nextCreate)
            {
                // One create every 50 ms: the sweep it pokes runs at most once a second anyway.
                using (ShmQueue.Create(LeakName("poke")))
                {
                }

                nextCreate = System.Diagnostics.Stopwatch.GetTimestamp() + (System.Diagnostics.Stopwatch.Frequency / 20);
            }

            return FilesOf(name).Length == 0;
        }, "a create elsewhere has removed the dead creator's queue", TimeSpan.FromSeconds(10));
        child.Dispose();
    }

    [TestMethod]
    public void The_automatic_sweep_keeps_what_its_dead_creator_asked_to_keep()
    {
        string name = LeakName("kept");
        using (var child = ShmProcess.Start(TestFunctions.CreateKeptQueueAndWait, name))
        {
            Children.Track(child.Pid);
            TestSupport.WaitUntil(() => IsPublished(name), "the child has created its queue");
            child.Kill();
            Assert.IsTrue(child.Join(TestSupport.Deadline));
        }

        try
        {
            CollectionAssert.DoesNotContain(ShmIpc.Memory.StaleSweeper.Sweep(automatic: true), name);
            Assert.AreEqual(3, FilesOf(name).Length, "UnlinkOnDispose = false: kept for a later process to open");
            using (ShmQueue.Open(name))
            {
            }

            CollectionAssert.Contains(ShmMaintenance.RemoveStaleSegments().ToList(), name, "the explicit sweep removes it");
            Assert.AreEqual(0, FilesOf(name).Length);
        }
        finally
        {
            ShmMaintenance.Unlink(name);
        }
    }

    [TestMethod]
    public void Current_tells_a_main_process_from_a_child_and_a_worker()
    {
        ShmProcessInfo main = ShmProcess.Current;
        Assert.AreEqual("MainProcess", main.Name);
        Assert.AreEqual(Environment.ProcessId, main.Pid);
        Assert.IsFalse(main.IsChild);
        Assert.IsNull(main.ParentPid);

        using var child = ShmProcess.Start(TestFunctions.Describe, 0, new ShmProcessOptions { Name = "describer" });
        Children.Track(child.Pid);
        Assert.AreEqual(("describer", child.Pid, true, (int?)Environment.ProcessId, false), child.GetResult(TestSupport.Deadline));

        ShmPool pool = NewPool(1);
        var worker = pool.Apply(TestFunctions.Describe, 0);
        Assert.IsTrue(worker.IsChild);
        Assert.IsTrue(worker.IsPoolWorker);
        Assert.AreEqual(Environment.ProcessId, worker.ParentPid);
        StringAssert.Contains(worker.Name, "worker");
    }

    [TestMethod]
    public void ActiveChildren_lists_the_running_children()
    {
        using var first = ShmProcess.Start(TestFunctions.WaitForever, 0);
        using var second = ShmProcess.Start(TestFunctions.WaitForever, 0);
        Children.Track([first.Pid, second.Pid]);
        CollectionAssert.IsSubsetOf(new[] { first.Pid, second.Pid }, ShmProcess.ActiveChildren().Select(static c => c.Pid).ToArray());
        first.Kill();
        Assert.IsTrue(first.Join(TestSupport.Deadline));
        int[] active = ShmProcess.ActiveChildren().Select(static c => c.Pid).ToArray();
        CollectionAssert.DoesNotContain(active, first.Pid);
        CollectionAssert.Contains(active, second.Pid);
        Assert.IsTrue(first.Daemon, "daemon by default: a child ends with its parent");
    }

    [TestMethod]
    public void Starmap_takes_up_to_seven_arguments_and_the_initializer_one()
    {
        ShmPool pool = NewPool(2, ShmPoolOptions.Default.WithInitializer(TestFunctions.InitializeWith, ("ab", 3)));
        Assert.AreEqual("ababab", pool.Apply(TestFunctions.InitializedWith, 0));
        CollectionAssert.AreEqual(
            new[] { "1|x|0.5|4|True|c|7", "2|y|1.5|5|False|d|8" },
            pool.Starmap(TestFunctions.Join7, [(1, "x", 0.5, 4L, true, 'c', (byte)7), (2, "y", 1.5, 5L, false, 'd', (byte)8)]));
    }

    [TestMethod]
    [DataRow(false, DisplayName = "not a daemon: the parent's exit waits for it")]
    [DataRow(true, DisplayName = "a daemon: it ends with the parent")]
    public void A_parent_that_exits_without_disposing_its_child_leaves_nothing_behind(bool daemon)
    {
        string path = TestSupport.TempFile("exit");
        try
        {
            using var parent = ShmIpc.Tests.Common.ChildProcess.Start("process-exit-with-child", daemon ? "1" : "0", path);
            int child = int.Parse(parent.WaitForLine("CHILD", TestSupport.Deadline)["CHILD ".Length..], System.Globalization.CultureInfo.InvariantCulture);
            Children.Track(child);
            parent.WaitForLine("EXITING", TestSupport.Deadline);
            if (daemon)
            {
                Assert.AreEqual(0, parent.WaitForExit(TestSupport.Deadline));
                TestSupport.WaitUntil(() => !ChildProcesses.IsRunning(child), "the daemon child has ended with its parent");
                Assert.IsFalse(File.Exists(path + ".done"));
            }
            else
            {
                Assert.IsFalse(parent.HasExited, "a parent waits for its non-daemon child at exit");
                File.WriteAllText(path + ".go", "");
                Assert.AreEqual(0, parent.WaitForExit(TestSupport.Deadline));
                Assert.AreEqual("done", File.ReadAllText(path + ".done"), "the child ran to its end");
            }

            TestSupport.WaitUntil(() => Directory.GetFiles("/dev/shm", $"*shmpool-{parent.Pid}-*").Length == 0, "the parent's pipes are gone");
        }
        finally
        {
            File.Delete(path + ".go");
            File.Delete(path + ".done");
        }
    }

    [TestMethod]
    public void A_parent_that_crashes_leaves_nothing_behind()
    {
        using var parent = ShmIpc.Tests.Common.ChildProcess.Start("process-crash-with-child");
        int child = int.Parse(parent.WaitForLine("CHILD", TestSupport.Deadline)["CHILD ".Length..], System.Globalization.CultureInfo.InvariantCulture);
        Children.Track(child);
        Assert.AreNotEqual(0, parent.WaitForExit(TestSupport.Deadline));
        TestSupport.WaitUntil(() => !ChildProcesses.IsRunning(child), "the child has ended with its crashed parent");
        TestSupport.WaitUntil(() => Directory.GetFiles("/dev/shm", $"*shmpool-{parent.Pid}-*").Length == 0, "the crashed parent's pipes are gone");
    }

    [TestMethod]
    public void A_Start_whose_argument_is_longer_than_the_ring_runs_and_Dispose_removes_its_pipe_and_side_segment()
    {
        // 3 MiB does not fit the 4 MiB ring's 2 MiB message limit: since issue 17 it goes through a side segment (it used
        // to fail the Start), so the child runs, and disposing the ShmProcess leaves nothing of ours in /dev/shm.
        using (ShmProcess process = ShmProcess.Start(TestFunctions.DoNothing, new byte[3 << 20]))
        {
            Children.Track(process.Pid);
            Assert.IsTrue(process.Join(TestSupport.Deadline), "the child read its 3 MiB argument and ended");
            Assert.AreEqual(0, process.ExitCode);
        }

        TestSupport.WaitUntil(() => TestSupport.OurShmFiles().Length == 0, "the pipe and the side segment are gone");
    }
}
