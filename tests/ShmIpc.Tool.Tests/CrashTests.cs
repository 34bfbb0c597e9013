using System.Text.Json;
using ShmIpc.Tests.Common;
using static ShmIpc.Tool.Tests.ToolRunner;

namespace ShmIpc.Tool.Tests;

/// <summary>Real children killed with SIGKILL mid-operation: inspect names them dead, doctor says what it costs and who repairs it.</summary>
[TestClass]
public sealed class CrashTests
{
    [TestMethod]
    public void A_producer_killed_while_holding_a_claim_shows_in_inspect_and_doctor_until_a_consumer_skips_it()
    {
        string name = TestNames.Unique("tclaim");
        using ShmQueue queue = ShmQueue.Create(name, new ShmQueueOptions { Capacity = 8192 });
        queue.Enqueue([1]);
        int producer;
        using (ChildProcess child = ChildProcess.Start("queue-claim-hold", name, "50"))
        {
            Assert.AreEqual("CLAIMED", child.ReadLine(ChildStart));
            producer = child.Pid;

            // Alive: a claim in progress is no problem.
            JsonElement live = Json("inspect", name).GetProperty("queue");
            JsonElement claim = live.GetProperty("inFlight").EnumerateArray().Single();
            Assert.AreEqual("claimed", claim.GetProperty("status").GetString());
            Assert.AreEqual(producer, claim.GetProperty("process").GetProperty("pid").GetInt32());
            Assert.IsTrue(claim.GetProperty("process").GetProperty("alive").GetBoolean());
            Assert.AreEqual("ok", ObjectNamed(Json("doctor", name), name).GetProperty("health").GetString());
            child.Kill9();
        }

        JsonElement q = Json("inspect", name).GetProperty("queue");
        Assert.AreEqual(2, q.GetProperty("depth").GetInt64(), "one committed message and the dead producer's claim");
        JsonElement dead = q.GetProperty("inFlight").EnumerateArray().Single();
        Assert.AreEqual("claimed", dead.GetProperty("status").GetString());
        Assert.AreEqual(64, dead.GetProperty("position").GetInt64(), "after the first record (32-byte header + 1 byte, rounded to 64)");
        Assert.AreEqual(50, dead.GetProperty("length").GetInt32());
        Assert.AreEqual(producer, dead.GetProperty("process").GetProperty("pid").GetInt32());
        Assert.IsFalse(dead.GetProperty("process").GetProperty("alive").GetBoolean());
        StringAssert.Contains(Run("inspect", name).Output, $"position 64: claimed, 50 bytes, by producer {producer} (dead)");

        (int code, string text, _) = Run("doctor", name);
        Assert.AreEqual(1, code, "doctor exits 1 when something is wrong");
        StringAssert.Contains(text, $"warning  queue {name}: producer {producer} died while writing position 64; the next consumer marks it abandoned and skips it");
        JsonElement verdict = ObjectNamed(Json("doctor", name), name);
        Assert.AreEqual("warning", verdict.GetProperty("health").GetString());

        // The next consumer does exactly that; then the queue is healthy again.
        CollectionAssert.AreEqual(new byte[] { 1 }, queue.Dequeue(TimeSpan.FromSeconds(5)));
        Assert.IsFalse(queue.TryDequeue(out _, TimeSpan.FromMilliseconds(200)), "the dead producer's record is skipped, not delivered");
        (code, text, _) = Run("doctor", name);
        Assert.AreEqual(0, code, text);
        Assert.AreEqual(0, Json("inspect", name).GetProperty("queue").GetProperty("depth").GetInt64());
    }

    [TestMethod]
    public void A_consumer_killed_while_reading_shows_in_inspect_and_doctor()
    {
        string name = TestNames.Unique("tread");
        using ShmQueue queue = ShmQueue.Create(name, new ShmQueueOptions { Capacity = 4096, MaxMessageLength = 64 });
        queue.Enqueue(new byte[64]);
        queue.Enqueue([7]);
        int consumer;
        using (ChildProcess child = ChildProcess.Start("queue-read-hold", name))
        {
            Assert.AreEqual("TAKEN 64", child.ReadLine(ChildStart));
            consumer = child.Pid;
            child.Kill9();
        }

        JsonElement q = Json("inspect", name).GetProperty("queue");
        Assert.AreEqual(1, q.GetProperty("depth").GetInt64(), "the second message still waits");
        JsonElement reading = q.GetProperty("inFlight").EnumerateArray().Single();
        Assert.AreEqual("reading", reading.GetProperty("status").GetString());
        Assert.AreEqual(0, reading.GetProperty("position").GetInt64());
        Assert.AreEqual(consumer, reading.GetProperty("process").GetProperty("pid").GetInt32());
        Assert.IsFalse(reading.GetProperty("process").GetProperty("alive").GetBoolean());

        string text = Run("doctor", name).Output;
        StringAssert.Contains(text, $"queue {name}: consumer {consumer} died while reading position 0; that message is lost");
    }

    [TestMethod]
    public void A_pipe_end_killed_without_closing_shows_dead_and_doctor_says_what_the_other_end_gets()
    {
        string name = TestNames.Unique("tpipe");
        using ShmConnection pipe = ShmPipe.Create(name, new ShmPipeOptions { Capacity = 4096 });
        int peer;
        using (ChildProcess child = ChildProcess.StartReady("pipe-send-hold", name, "3"))
        {
            peer = child.Pid;
            pipe.Send([1]);
            pipe.Send([2]);
            Assert.AreEqual("ok", ObjectNamed(Json("doctor", name), name).GetProperty("health").GetString(), "both ends alive");
            child.Kill9();
        }

        JsonElement end1 = Json("inspect", name).GetProperty("pipe").GetProperty("ends")[1];
        Assert.AreEqual("open", end1.GetProperty("state").GetString(), "it never closed");
        Assert.AreEqual(peer, end1.GetProperty("owner").GetProperty("pid").GetInt32());
        Assert.IsFalse(end1.GetProperty("owner").GetProperty("alive").GetBoolean());

        (int code, string text, _) = Run("doctor", name);
        Assert.AreEqual(1, code);
        StringAssert.Contains(text, $"pipe {name}: the process at end 1, pid {peer}, died without closing it; " +
            "end 0 reads the 3 messages it left, then sees the end of the stream; the 2 messages sent to it are lost");
    }

    [TestMethod]
    public void A_sender_killed_holding_a_shared_ends_send_lock_shows_in_inspect_and_doctor()
    {
        string name = TestNames.Unique("tshare");
        using ShmConnection creatorEnd = ShmPipe.Create(name, new ShmPipeOptions { Capacity = 4096 });
        using ShmConnection connectorEnd = ShmPipe.Connect(name);
        int sender;
        // End 1 sends on ring 0 (LAYOUT.md §5.1); the child shares end 1 and takes ring 0's send lock as a sender mid-copy does.
        using (ChildProcess child = ChildProcess.Start("pipe-shared-hold-send-lock", connectorEnd.Share(), "0"))
        {
            child.WaitForLine("HOLDING", ChildStart);
            sender = child.Pid;
            JsonElement pipe = Json("inspect", name).GetProperty("pipe");
            JsonElement end1 = pipe.GetProperty("ends")[1];
            Assert.AreEqual("shared", end1.GetProperty("state").GetString());
            CollectionAssert.AreEquivalent(new[] { Environment.ProcessId, sender },
                end1.GetProperty("holders").EnumerateArray().Select(h => h.GetProperty("pid").GetInt32()).ToArray());
            JsonElement ring0 = pipe.GetProperty("directions").EnumerateArray().Single(d => d.GetProperty("ring").GetInt32() == 0);
            Assert.AreEqual(sender, ring0.GetProperty("sendLockHolder").GetProperty("pid").GetInt32());
            Assert.AreEqual("ok", ObjectNamed(Json("doctor", name), name).GetProperty("health").GetString(), "a live sender holds the lock while it copies");
            child.Kill9();
        }

        StringAssert.Contains(Run("doctor", name).Output, $"pipe {name}: sender {sender} died holding the send lock of shared end 1; " +
            "the next sender proves it dead and takes the lock over");

        // The next sender does; then only the dead holder's stale Holders word is left, which is no problem while this process holds the end.
        connectorEnd.Send([2]);
        CollectionAssert.AreEqual(new byte[] { 2 }, creatorEnd.Receive());
        Assert.AreEqual("ok", ObjectNamed(Json("doctor", name), name).GetProperty("health").GetString());
    }

    [TestMethod]
    public void A_queue_shut_down_says_so()
    {
        string name = TestNames.Unique("tshut");
        using ShmQueue queue = ShmQueue.Create(name, new ShmQueueOptions { Capacity = 4096 });
        Assert.AreEqual("open", Json("inspect", name).GetProperty("queue").GetProperty("shutdown").GetString());
        queue.Enqueue([1]);
        queue.Shutdown();
        Assert.AreEqual("drain", Json("inspect", name).GetProperty("queue").GetProperty("shutdown").GetString());
        StringAssert.Contains(Run("inspect", name).Output, "shut down: no new messages, consumers take what is left");
    }
}
