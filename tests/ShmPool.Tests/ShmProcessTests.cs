namespace ShmIpc.Pool.Tests;

[TestClass]
public sealed class ShmProcessTests : PoolTestBase
{
    private static readonly TimeSpan Deadline = TestSupport.Deadline;

    [TestMethod]
    public void A_static_method_of_the_test_assembly_runs_in_a_child_and_returns_its_result()
    {
        using ShmProcess<int> p = Track(ShmProcess.Start<int, int>(TestFunctions.Square, 12));
        Assert.AreNotEqual(Environment.ProcessId, p.Pid);
        Assert.AreEqual(144, p.GetResult(Deadline));
        Assert.IsTrue(p.Join(Deadline));
        Assert.IsFalse(p.IsAlive);
        Assert.AreEqual(0, p.ExitCode);
    }

    [TestMethod]
    public void Records_and_collections_cross_both_ways()
    {
        var order = new Order(7, "Ada", [1.5m, 2.25m, 10m]);
        using ShmProcess<Invoice> p = Track(ShmProcess.Start<Order, Invoice>(TestFunctions.Bill, order));
        Assert.AreEqual(new Invoice(7, 13.75m, "for Ada"), p.GetResult(Deadline));
    }

    [TestMethod]
    public void An_action_target_runs_and_the_child_exits_0()
    {
        using ShmProcess p = Track(ShmProcess.Start<int>(TestFunctions.DoNothing, 1, new ShmProcessOptions { Name = "quiet" }));
        Assert.AreEqual("quiet", p.Name);
        Assert.IsTrue(p.Join(Deadline));
        Assert.AreEqual(0, p.ExitCode);
    }

    [TestMethod]
    public async Task JoinAsync_completes_when_the_child_ends()
    {
        using ShmProcess p = Track(ShmProcess.Start<int>(TestFunctions.DoNothing, 1));
        await p.JoinAsync().WaitAsync(Deadline);
        Assert.AreEqual(0, p.ExitCode);
    }

    [TestMethod]
    public void A_capture_free_lambda_is_accepted()
    {
        using ShmProcess<int> p = Track(ShmProcess.Start((int x) => x + 1, 41));
        Assert.AreEqual(42, p.GetResult(Deadline));
    }

    [TestMethod]
    public void An_exception_in_the_child_arrives_with_its_type_message_and_stack_and_exit_code_1()
    {
        using ShmProcess<int> p = Track(ShmProcess.Start<string, int>(TestFunctions.Throw, "no such order"));
        var e = Assert.ThrowsExactly<ShmRemoteException>(() => p.GetResult(Deadline));
        Assert.AreEqual("System.InvalidOperationException", e.RemoteType);
        Assert.AreEqual("no such order", e.RemoteMessage);
        StringAssert.Contains(e.RemoteStackTrace, "TestFunctions.Throw");
        StringAssert.Contains(e.ToString(), "remote stack trace");
        Assert.IsTrue(p.Join(Deadline));
        Assert.AreEqual(1, p.ExitCode);
    }

    [TestMethod]
    public void Environment_Exit_in_the_target_is_the_exit_code_and_GetResult_reports_a_crash()
    {
        using ShmProcess<int> p = Track(ShmProcess.Start<int, int>(TestFunctions.ExitWith, 3));
        var e = Assert.ThrowsExactly<ShmWorkerCrashedException>(() => p.GetResult(Deadline));
        Assert.AreEqual(3, p.ExitCode);
        Assert.AreEqual(p.Pid, e.Pid);
        StringAssert.Contains(e.Message, "exited with code 3");
    }

    [TestMethod]
    public void Kill_gives_exit_code_minus_9_and_GetResult_names_the_signal()
    {
        string pidFile = TestSupport.TempFile("kill");
        using ShmProcess<int> p = Track(ShmProcess.Start<string, int>(TestFunctions.BlockForever, pidFile));
        TestSupport.WaitUntil(() => File.Exists(pidFile), "the child runs its target");
        File.Delete(pidFile);
        Assert.IsTrue(p.IsAlive);
        Assert.IsNull(p.ExitCode);
        p.Kill();
        Assert.IsTrue(p.Join(Deadline));
        Assert.AreEqual(-9, p.ExitCode);
        var e = Assert.ThrowsExactly<ShmWorkerCrashedException>(() => p.GetResult(Deadline));
        StringAssert.Contains(e.Message, "killed by signal 9 (SIGKILL)");
    }

    [TestMethod]
    public void Terminate_gives_exit_code_minus_15()
    {
        string pidFile = TestSupport.TempFile("term");
        using ShmProcess<int> p = Track(ShmProcess.Start<string, int>(TestFunctions.BlockForever, pidFile));
        TestSupport.WaitUntil(() => File.Exists(pidFile), "the child runs its target");
        File.Delete(pidFile);
        p.Terminate();
        Assert.IsTrue(p.Join(Deadline));
        Assert.AreEqual(-15, p.ExitCode);
    }

    [TestMethod]
    public void GetResult_times_out_at_its_deadline_and_leaves_the_child_running()
    {
        string pidFile = TestSupport.TempFile("timeout");
        using ShmProcess<int> p = Track(ShmProcess.Start<string, int>(TestFunctions.BlockForever, pidFile));
        TestSupport.WaitUntil(() => File.Exists(pidFile), "the child runs its target");
        File.Delete(pidFile);
        var watch = System.Diagnostics.Stopwatch.StartNew();
        Assert.ThrowsExactly<TimeoutException>(() => p.GetResult(TimeSpan.FromMilliseconds(200)));
        Assert.IsTrue(watch.Elapsed >= TimeSpan.FromMilliseconds(190) && watch.Elapsed < TimeSpan.FromSeconds(2), watch.Elapsed.ToString());
        Assert.IsTrue(p.IsAlive);
        // Dispose kills it; the cleanup checks it is gone.
    }

    [TestMethod]
    public void A_closure_is_rejected_with_the_documented_message()
    {
        int captured = 5;
        var e = Assert.ThrowsExactly<ArgumentException>(() => ShmProcess.Start((int x) => x + captured, 1));
        StringAssert.Contains(e.Message, "(a lambda or local function in ShmProcessTests.A_closure_is_rejected_with_the_documented_message) captures variables (captured");
        StringAssert.Contains(e.Message, "Make it a static method");
        Assert.AreEqual("target", e.ParamName);
    }

    [TestMethod]
    public void An_instance_method_is_rejected_with_the_documented_message()
    {
        var list = new List<int>();
        var e = Assert.ThrowsExactly<ArgumentException>(() => ShmProcess.Start<int>(list.Add, 1));
        StringAssert.Contains(e.Message, "is an instance method");
        Assert.AreEqual(0, TestSupport.OurShmFiles().Length);
    }

    [TestMethod]
    public void A_pipe_end_in_the_argument_is_shared_with_the_child_and_stays_usable_here()
    {
        string name = $"shmpool-{Environment.ProcessId}-test-{Guid.NewGuid():N}";
        using ShmConnection mine = ShmPipe.Create(name);
        ShmConnection theirs = ShmPipe.Connect(name);
        using ShmProcess<int> p = Track(ShmProcess.Start<ShmConnection, int>(HandleFunctions.EchoTwice, theirs));
        mine.Send([1, 2, 3]);
        CollectionAssert.AreEqual(new byte[] { 1, 2, 3, 1, 2, 3 }, mine.Receive());
        Assert.AreEqual(3, p.GetResult(Deadline));
        theirs.Send([4]); // as in Python, the parent's copy of the end it passed is still an open end
        CollectionAssert.AreEqual(new byte[] { 4 }, mine.Receive());
        theirs.Dispose();
        Assert.ThrowsExactly<ShmPeerClosedException>(() => mine.Receive(), "the child closed its copy and the parent its own: the end is closed");
    }

    [TestMethod]
    public void The_tutorial_pipe_scene_three_children_send_on_the_same_end_and_the_parent_receives_three()
    {
        // Issue 12: parent_conn, child_conn = Pipe(); three Process(target=f, args=(child_conn,)); each sends one
        // message; the parent receives three.
        string name = $"shmpool-{Environment.ProcessId}-test-{Guid.NewGuid():N}";
        using ShmConnection parentEnd = ShmPipe.Create(name);
        using ShmConnection childEnd = ShmPipe.Connect(name);
        List<ShmProcess<int>> children = [];
        for (int i = 0; i < 3; i++)
        {
            children.Add(Track(ShmProcess.Start<ShmConnection, int>(HandleFunctions.SayHello, childEnd)));
        }

        var received = new List<string>();
        for (int i = 0; i < 3; i++)
        {
            Assert.IsTrue(parentEnd.TryReceive(out byte[] message, Deadline), $"message {i} arrived");
            received.Add(System.Text.Encoding.UTF8.GetString(message));
        }

        List<string> expected = children.Select(c => HandleFunctions.Hello(c.GetResult(Deadline))).ToList();
        CollectionAssert.AreEquivalent(expected, received, "three whole messages, one from each child");
        children.ForEach(static c => c.Dispose());
    }

    [TestMethod]
    public void A_pipe_end_inside_a_tuple_moves_to_the_child()
    {
        string name = $"shmpool-{Environment.ProcessId}-test-{Guid.NewGuid():N}";
        using ShmConnection mine = ShmPipe.Create(name);
        ShmConnection theirs = ShmPipe.Connect(name);
        using ShmProcess<string> p = Track(ShmProcess.Start<(string, ShmConnection), string>(HandleFunctions.EchoTagged, ("tag", theirs)));
        mine.Send([9]);
        CollectionAssert.AreEqual(new byte[] { 9 }, mine.Receive());
        Assert.AreEqual("tag", p.GetResult(Deadline));
    }

    [TestMethod]
    public void A_producer_process_given_a_queue_fills_it_and_the_parent_drains_it()
    {
        string name = $"shmpool-{Environment.ProcessId}-test-{Guid.NewGuid():N}";
        using ShmQueue<int> queue = ShmQueue<int>.Create(name);
        using ShmProcess<int> p = Track(ShmProcess.Start<(ShmQueue<int>, int), int>(HandleFunctions.Produce, (queue, 5_000)));
        for (int i = 0; i < 5_000; i++)
        {
            Assert.AreEqual(i, queue.Dequeue(Deadline));
        }

        Assert.AreEqual(5_000, p.GetResult(Deadline));
        Assert.IsTrue(queue.TryEnqueue(42), "the parent's handle stays usable: a queue is shared, not moved");
        Assert.AreEqual(42, queue.Dequeue(Deadline));
    }

    [TestMethod]
    public void A_typed_queue_inside_a_tuple_and_a_byte_queue_alone_arrive_open()
    {
        string name = $"shmpool-{Environment.ProcessId}-test-{Guid.NewGuid():N}";
        using ShmQueue<string> queue = ShmQueue<string>.Create(name);
        using (ShmProcess<int> p = Track(ShmProcess.Start<(string, ShmQueue<string>), int>(HandleFunctions.PutTagged, ("hello", queue))))
        {
            CollectionAssert.AreEqual(new[] { "hello 0", "hello 1", "hello 2" }, new[] { queue.Dequeue(Deadline), queue.Dequeue(Deadline), queue.Dequeue(Deadline) });
            Assert.AreEqual(p.Pid, p.GetResult(Deadline));
        }

        using ShmProcess<int> bytes = Track(ShmProcess.Start<ShmQueue, int>(HandleFunctions.PutBytes, queue.Queue));
        Assert.AreEqual(3, bytes.GetResult(Deadline));
        Assert.IsTrue(queue.Queue.TryDequeue(out byte[]? message, Deadline));
        CollectionAssert.AreEqual(new byte[] { 1, 2, 3 }, message);
    }

    [TestMethod]
    public void Shared_state_passed_to_a_process_arrives_open()
    {
        string id = $"shmpool-{Environment.ProcessId}-state-{Guid.NewGuid():N}";
        using ShmValue<long> value = ShmValue<long>.Create(id + "-v");
        using ShmCounter counter = ShmCounter.Create(id + "-c", 100);
        using ShmEvent done = ShmEvent.Create(id + "-e");
        using ShmProcess<int> p = Track(ShmProcess.Start<(ShmValue<long>, ShmCounter, ShmEvent, int), int>(HandleFunctions.CountShared, (value, counter, done, 1_000)));
        Assert.IsTrue(done.Wait(Deadline), "the child sets the event it was given");
        Assert.AreEqual(1_000, p.GetResult(Deadline));
        Assert.AreEqual(1_000, value.Value);
        Assert.AreEqual(1_100, counter.Value);
    }
}
