using System.Text.Json;
using ShmIpc.Tests.Common;
using static ShmIpc.Tool.Tests.ToolRunner;

namespace ShmIpc.Tool.Tests;

[TestClass]
public sealed class ListAndInspectTests
{
    [TestMethod]
    public void List_shows_a_queue_and_a_pipe_with_kind_size_creator_and_who_has_them_open()
    {
        string queueName = TestNames.Unique("lq");
        string pipeName = TestNames.Unique("lp");
        using ShmQueue queue = ShmQueue.Create(queueName, new ShmQueueOptions { Capacity = 8192 });
        using ShmConnection pipe = ShmPipe.Create(pipeName);
        using ChildProcess peer = ChildProcess.StartReady("pipe-echo", pipeName);

        JsonElement list = Json("list");
        JsonElement q = ObjectNamed(list, queueName);
        Assert.AreEqual("queue", q.GetProperty("kind").GetString());
        Assert.AreEqual(new FileInfo($"/dev/shm/shmipc.{queueName}").Length, q.GetProperty("sizeBytes").GetInt64());
        Assert.AreEqual(Environment.ProcessId, q.GetProperty("creator").GetProperty("pid").GetInt32());
        Assert.IsTrue(q.GetProperty("creator").GetProperty("alive").GetBoolean());
        CollectionAssert.AreEqual(new[] { Environment.ProcessId }, q.GetProperty("openBy").EnumerateArray().Select(e => e.GetInt32()).ToArray());
        Assert.IsTrue(q.GetProperty("ageSeconds").GetDouble() is >= 0 and < 600, "made just now");

        JsonElement p = ObjectNamed(list, pipeName);
        Assert.AreEqual("pipe", p.GetProperty("kind").GetString());
        CollectionAssert.AreEquivalent(new[] { Environment.ProcessId, peer.Pid }, p.GetProperty("openBy").EnumerateArray().Select(e => e.GetInt32()).ToArray(),
            "both ends' processes map the pipe");

        // The semaphores are listed too, with the segment they belong to.
        JsonElement semaphore = ObjectNamed(list, queueName + ".s0");
        Assert.AreEqual("semaphore", semaphore.GetProperty("kind").GetString());
        Assert.AreEqual(queueName, semaphore.GetProperty("segment").GetString());

        (int code, string text, _) = Run("list");
        Assert.AreEqual(0, code);
        StringAssert.Matches(text, new System.Text.RegularExpressions.Regex($@"(?m)^{System.Text.RegularExpressions.Regex.Escape(queueName)} +queue +\S+ KiB +{Environment.ProcessId} \(alive\) +1 "));
        StringAssert.Matches(text, new System.Text.RegularExpressions.Regex($@"(?m)^{System.Text.RegularExpressions.Regex.Escape(pipeName)} +pipe .* \(alive\) +2 "));
    }

    [TestMethod]
    public void A_pipe_named_as_a_pool_makes_its_channels_is_listed_as_a_pool_channel()
    {
        // ShmPool names the pipe to each child shmpool-<parent pid>-<parent start time>-...
        string name = "shmpool-" + TestNames.Unique("chan");
        using ShmConnection pipe = ShmPipe.Create(name);
        Assert.AreEqual("pool-channel", ObjectNamed(Json("list"), name).GetProperty("kind").GetString());
        JsonElement report = Json("inspect", name);
        Assert.AreEqual("not connected", report.GetProperty("pipe").GetProperty("ends")[1].GetProperty("state").GetString());
        StringAssert.StartsWith(Run("inspect", name).Output, $"pool-channel {name}");
    }

    [TestMethod]
    public void Inspect_gives_a_queues_capacity_depth_bytes_used_and_sleepers()
    {
        string name = TestNames.Unique("iq");
        using ShmQueue queue = ShmQueue.Create(name, new ShmQueueOptions { Capacity = 8192, MaxMessageLength = 1000 });
        queue.Enqueue(new byte[1]);
        queue.Enqueue(new byte[40]);
        queue.Enqueue(new byte[100]);
        _ = queue.Dequeue(TimeSpan.FromSeconds(5));

        JsonElement report = Json(out int code, "inspect", name);
        Assert.AreEqual(0, code);
        JsonElement q = report.GetProperty("queue");
        Assert.AreEqual(8192, q.GetProperty("capacity").GetInt64());
        Assert.AreEqual(1000, q.GetProperty("maxMessageLength").GetInt32());
        Assert.AreEqual(2, q.GetProperty("depth").GetInt64(), "two messages wait");
        // Records: 32-byte header + payload, rounded up to 32: 64 + 96 + 160. The first was read; Head moves on at reclaim.
        Assert.AreEqual(64 + 96 + 160, q.GetProperty("tail").GetInt64());
        Assert.AreEqual(64, q.GetProperty("readPosition").GetInt64());
        Assert.AreEqual(q.GetProperty("tail").GetInt64() - q.GetProperty("head").GetInt64(), q.GetProperty("bytesUsed").GetInt64());
        Assert.AreEqual(0, q.GetProperty("sleepingConsumers").GetInt32());
        Assert.AreEqual(0, q.GetProperty("sleepingProducers").GetInt32());
        Assert.AreEqual(0, q.GetProperty("inFlight").GetArrayLength());

        (_, string text, _) = Run("inspect", name);
        StringAssert.Contains(text, $"queue {name}");
        StringAssert.Contains(text, "2 messages waiting");
    }

    [TestMethod]
    public void Inspect_counts_a_consumer_asleep_on_an_empty_queue()
    {
        string name = TestNames.Unique("isleep");
        using ShmQueue queue = ShmQueue.Create(name, new ShmQueueOptions { Capacity = 8192 });
        using var waiting = new CancellationTokenSource();
        Task<byte[]> consumer = Task.Run(() => queue.Dequeue(waiting.Token));

        try
        {
            // The consumer registers as a sleeper after its spin: wait for the tool to see it (a deadline, not a sleep).
            long deadline = Environment.TickCount64 + 10_000;
            int sleepers = 0;
            while (sleepers == 0 && Environment.TickCount64 < deadline)
            {
                sleepers = Json("inspect", name).GetProperty("queue").GetProperty("sleepingConsumers").GetInt32();
            }

            Assert.AreEqual(1, sleepers, "one consumer sleeps on the empty queue");
            queue.Enqueue([9]);
            CollectionAssert.AreEqual(new byte[] { 9 }, consumer.Wait(TimeSpan.FromSeconds(10)) ? consumer.Result : null);
        }
        finally
        {
            waiting.Cancel();
        }
    }

    [TestMethod]
    public void Inspect_gives_a_pipes_ends_and_each_directions_backlog()
    {
        string name = TestNames.Unique("ip");
        using ShmConnection pipe = ShmPipe.Create(name, new ShmPipeOptions { Capacity = 4096 });
        using ChildProcess peer = ChildProcess.StartReady("pipe-send-hold", name, "3");
        pipe.Send([1, 2]);
        pipe.Send([3]);

        JsonElement p = Json("inspect", name).GetProperty("pipe");
        Assert.AreEqual(4096, p.GetProperty("capacity").GetInt32());
        Assert.IsTrue(p.GetProperty("duplex").GetBoolean());
        JsonElement[] ends = p.GetProperty("ends").EnumerateArray().ToArray();
        Assert.AreEqual("open", ends[0].GetProperty("state").GetString());
        Assert.AreEqual(Environment.ProcessId, ends[0].GetProperty("owner").GetProperty("pid").GetInt32());
        Assert.AreEqual("open", ends[1].GetProperty("state").GetString());
        Assert.AreEqual(peer.Pid, ends[1].GetProperty("owner").GetProperty("pid").GetInt32());
        Assert.IsTrue(ends[1].GetProperty("owner").GetProperty("alive").GetBoolean());

        JsonElement toCreator = p.GetProperty("directions").EnumerateArray().Single(d => d.GetProperty("toEnd").GetInt32() == 0);
        Assert.AreEqual(3, toCreator.GetProperty("backlogMessages").GetInt64(), "the child sent 3 messages nobody received");
        Assert.AreEqual(3 * 16, toCreator.GetProperty("backlogBytes").GetInt64(), "8-byte header + 4-byte index, rounded to 8");
        JsonElement toConnector = p.GetProperty("directions").EnumerateArray().Single(d => d.GetProperty("toEnd").GetInt32() == 1);
        Assert.AreEqual(2, toConnector.GetProperty("backlogMessages").GetInt64());
        Assert.AreEqual(2 * 16, toConnector.GetProperty("backlogBytes").GetInt64());

        (_, string text, _) = Run("inspect", name);
        StringAssert.Contains(text, $"open, pid {peer.Pid} (alive) (connector's end)");
        StringAssert.Contains(text, "end 1 -> 0");
        StringAssert.Contains(text, "3 messages (48 bytes) waiting");
    }

    [TestMethod]
    public void Inspect_of_a_name_that_does_not_exist_says_so_and_exits_2()
    {
        string name = TestNames.Unique("none");
        (int code, _, string error) = Run("inspect", name);
        Assert.AreEqual(2, code);
        StringAssert.Contains(error, $"No ShmIpc segment named '{name}'");
        Assert.AreEqual($"No ShmIpc segment named '{name}' (/dev/shm/shmipc.{name} does not exist).", Json("inspect", name).GetProperty("error").GetString());
    }

    [TestMethod]
    public void A_name_outside_ShmIpcs_rules_is_refused_before_any_file_is_looked_at()
    {
        (int code, _, string error) = Run("inspect", "../../etc/passwd");
        Assert.AreEqual(2, code);
        StringAssert.Contains(error, "must not start with a dot");
        (code, string output, _) = Run("clean", "--dry-run", "a/b", "--json");
        Assert.AreEqual(2, code);
        StringAssert.Contains(output, "may contain only [A-Za-z0-9._-]");
    }

    [TestMethod]
    public void Reading_a_queue_changes_no_byte_of_it()
    {
        string name = TestNames.Unique("ro");
        using ShmQueue queue = ShmQueue.Create(name, new ShmQueueOptions { Capacity = 4096 });
        queue.Enqueue([1, 2, 3]);
        string path = $"/dev/shm/shmipc.{name}";
        byte[] before = File.ReadAllBytes(path);

        Assert.AreEqual(0, Run("list").ExitCode);
        Assert.AreEqual(0, Run("inspect", name).ExitCode);
        Assert.AreEqual(0, Run("doctor", name).ExitCode);
        Assert.AreEqual(0, Run("clean", "--dry-run", name).ExitCode);

        CollectionAssert.AreEqual(before, File.ReadAllBytes(path), "list, inspect, doctor and a dry run only read");
        CollectionAssert.AreEqual(new byte[] { 1, 2, 3 }, queue.Dequeue(TimeSpan.FromSeconds(5)), "and the queue works on");
    }
}
