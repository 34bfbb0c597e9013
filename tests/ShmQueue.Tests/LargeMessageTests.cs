using System.Buffers;
using System.Globalization;
using ShmIpc.Tests.Common;

namespace ShmIpc.Tests;

/// <summary>Messages longer than MaxMessageLength go through side segments (issue 17): whole, in place, reused, never leaked.</summary>
[TestClass]
public sealed class LargeMessageTests
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(60);

    private static ShmQueue NewQueue(long capacity = 64 << 10, int maxLength = 1024, int maxLarge = int.MaxValue) =>
        ShmQueue.Create(TestNames.Unique("qlarge"), new ShmQueueOptions { Capacity = capacity, MaxMessageLength = maxLength, MaxLargeMessageLength = maxLarge });

    private static string S(int value) => value.ToString(CultureInfo.InvariantCulture);

    [TestMethod]
    public async Task Messages_of_0_MaxMessageLength_and_MaxMessageLength_plus_1_bytes_arrive_whole_in_every_read_form()
    {
        using ShmQueue queue = NewQueue();
        int max = queue.MaxMessageLength;
        int[] lengths = [0, max, max + 1, 3 * max + 7];
        foreach (int length in lengths)
        {
            byte[] message = LargeMessages.Make(0, length, length);
            queue.Enqueue(message);
            CollectionAssert.AreEqual(message, queue.Dequeue(Generous), $"array, {length} bytes");

            Assert.IsTrue(queue.TryEnqueue(message));
            byte[] buffer = new byte[length + 3];
            Assert.AreEqual(length, queue.Dequeue(buffer, Generous));
            CollectionAssert.AreEqual(message, buffer[..length], $"span, {length} bytes");

            queue.Enqueue(message, Generous);
            var writer = new ArrayBufferWriter<byte>();
            Assert.IsTrue(queue.TryDequeue(writer));
            CollectionAssert.AreEqual(message, writer.WrittenSpan.ToArray(), $"buffer writer, {length} bytes");

            await queue.EnqueueAsync(message);
            Assert.IsTrue(queue.TryDequeue(static (span, expected) => span.SequenceEqual(expected), message, Generous, out bool same));
            Assert.IsTrue(same, $"in place, {length} bytes");

            await queue.EnqueueAsync(message);
            CollectionAssert.AreEqual(message, await queue.DequeueAsync(), $"async, {length} bytes");
        }

        Assert.AreEqual(0, queue.Count);
    }

    [TestMethod]
    public void A_typed_queue_carries_a_value_longer_than_the_ring()
    {
        using ShmQueue<string> queue = ShmQueue<string>.Create(TestNames.Unique("qlarge-t"), new ShmQueueOptions { Capacity = 4096, MaxMessageLength = 256 });
        string text = new('x', 100_000);
        queue.Enqueue(text);
        Assert.AreEqual(text, queue.Dequeue(Generous));
    }

    [TestMethod]
    public void A_destination_too_small_for_a_large_message_leaves_it_in_the_queue()
    {
        using ShmQueue queue = NewQueue();
        byte[] message = LargeMessages.Make(0, 1, 10_000);
        queue.Enqueue(message);
        var e = Assert.ThrowsExactly<ArgumentException>(() => queue.TryDequeue(new byte[9_999], out _));
        StringAssert.Contains(e.Message, "10000 bytes");
        CollectionAssert.AreEqual(message, queue.Dequeue(Generous));
    }

    [TestMethod]
    public void The_sender_reuses_its_side_segment_and_removes_it_with_the_queue()
    {
        int me = Environment.ProcessId;
        string[] before = LargeMessages.SideFilesOf(me);
        ShmQueue queue = NewQueue();
        try
        {
            for (int i = 0; i < 5; i++)
            {
                queue.Enqueue(LargeMessages.Make(0, i, 200_000 + i));
                Assert.AreEqual((0, i), LargeMessages.Check(queue.Dequeue(Generous)));
            }

            Assert.AreEqual(before.Length + 1, LargeMessages.SideFilesOf(me).Length, "one side segment, reused for every message");
        }
        finally
        {
            queue.Dispose();
        }

        CollectionAssert.AreEquivalent(before, LargeMessages.SideFilesOf(me), "the side segment goes with the queue");
    }

    [TestMethod]
    public void A_message_over_the_limit_is_refused_naming_the_queue_and_size_and_the_queue_stays_usable()
    {
        using ShmQueue queue = NewQueue(maxLarge: 1 << 20);
        var e = Assert.ThrowsExactly<ArgumentException>(() => queue.Enqueue(new byte[(1 << 20) + 1]));
        StringAssert.Contains(e.Message, queue.Name);
        StringAssert.Contains(e.Message, ((1 << 20) + 1).ToString(CultureInfo.InvariantCulture));
        Assert.AreEqual(0, queue.Count);

        byte[] message = LargeMessages.Make(0, 2, 1 << 20);
        queue.Enqueue(message);
        CollectionAssert.AreEqual(message, queue.Dequeue(Generous));
    }

    [TestMethod]
    public void A_64_MiB_message_crosses_processes_through_a_queue_and_is_read_in_place()
    {
        using ShmQueue queue = NewQueue();
        using ChildProcess child = ChildProcess.Start("large-produce", queue.Name, "3", "1", S(64 << 20), S(64 << 20));
        Assert.IsTrue(queue.TryDequeue(static (span, _) => (span.Length, LargeMessages.Check(span)), 0, Generous, out var got));
        Assert.AreEqual((64 << 20, (3, 0)), got);
        child.WaitForLine("DONE", Generous);
        Assert.AreEqual(0, child.WaitForExit(Generous), child.StandardError);
    }

    [TestMethod]
    public void A_sender_killed_at_random_points_while_sending_large_messages_leaks_nothing_and_costs_nothing_else()
    {
        var random = new Random(17);
        for (int round = 0; round < 3; round++)
        {
            const int SurvivorCount = 40;
            ShmQueue queue = NewQueue(capacity: 16 << 10, maxLength: 512);
            var children = new ChildProcesses();
            int victimPid = 0, survivorPid = 0;
            try
            {
                ChildProcess survivor = children.Start("large-produce", queue.Name, "1", S(SurvivorCount), "600", "300000");
                ChildProcess victim = children.Start("large-produce", queue.Name, "2", "1000", "600", "300000");
                victimPid = victim.Pid;
                survivorPid = survivor.Pid;
                var seen = new Dictionary<int, List<int>> { [1] = [], [2] = [] };
                int killAfter = random.Next(0, 6);
                bool killed = false;
                long deadline = Environment.TickCount64 + (long)Generous.TotalMilliseconds;
                while (seen[1].Count < SurvivorCount || !killed)
                {
                    Assert.IsTrue(Environment.TickCount64 < deadline, $"round {round}: survivor {seen[1].Count}/{SurvivorCount}, victim {seen[2].Count}, killed {killed}");
                    if (queue.TryDequeue(static (span, _) => LargeMessages.Check(span), 0, TimeSpan.FromMilliseconds(50), out var origin))
                    {
                        seen[origin.Sender].Add(origin.Sequence);
                    }

                    if (!killed && seen[2].Count >= killAfter)
                    {
                        // A random point of the victim's send: a few microseconds to milliseconds into its next message.
                        Thread.SpinWait(random.Next(0, 2_000_000));
                        victim.Kill9();
                        killed = true;
                    }
                }

                survivor.WaitForLine("DONE", Generous);
                Assert.AreEqual(0, survivor.WaitForExit(Generous), survivor.StandardError);
                while (queue.TryDequeue(static (span, _) => LargeMessages.Check(span), 0, out var rest))
                {
                    seen[rest.Sender].Add(rest.Sequence);
                }

                CollectionAssert.AreEqual(Enumerable.Range(0, SurvivorCount).ToList(), seen[1], $"round {round}: every message of the survivor, in order");
                CollectionAssert.AreEqual(Enumerable.Range(0, seen[2].Count).ToList(), seen[2], $"round {round}: the victim's messages arrive in order, none twice");
            }
            finally
            {
                children.Dispose();
                queue.Dispose();
                ShmMaintenance.RemoveStaleSegments();
            }

            Assert.AreEqual(0, LargeMessages.SideFilesOf(victimPid).Length, $"round {round}: the victim's side segments are gone: {string.Join(", ", LargeMessages.SideFilesOf(victimPid))}");
            Assert.AreEqual(0, LargeMessages.SideFilesOf(survivorPid).Length, $"round {round}: the survivor's side segments are gone");
            Assert.AreEqual(0, LargeMessages.SideFilesOf(Environment.ProcessId).Length, $"round {round}: ours are gone");
        }
    }

    [TestMethod]
    public void A_consumer_killed_after_taking_a_large_message_hands_the_side_segment_back_to_its_sender()
    {
        int me = Environment.ProcessId;
        using ShmQueue queue = NewQueue();
        queue.Enqueue(LargeMessages.Make(0, 0, 500_000));
        using (ChildProcess child = ChildProcess.Start("large-take-hold", queue.Name))
        {
            Assert.AreEqual("TAKEN 500000", child.WaitForLine("TAKEN", Generous));
            child.Kill9();
            child.WaitForExit(Generous);
        }

        // Its reader is proved dead: the sender takes the segment back for its next message instead of making another.
        queue.Enqueue(LargeMessages.Make(0, 1, 500_000));
        Assert.AreEqual(1, LargeMessages.SideFilesOf(me).Length, "the segment the dead consumer held is reused");
        Assert.AreEqual((0, 1), LargeMessages.Check(queue.Dequeue(Generous)));
    }

    [TestMethod]
    public void A_dead_consumers_side_segment_is_removed_by_the_sweep_once_its_sender_let_go()
    {
        int me = Environment.ProcessId;
        ShmQueue queue = NewQueue();
        try
        {
            queue.Enqueue(LargeMessages.Make(0, 0, 500_000));
            using ChildProcess child = ChildProcess.Start("large-take-hold", queue.Name);
            Assert.AreEqual("TAKEN 500000", child.WaitForLine("TAKEN", Generous));
            child.Kill9();
            child.WaitForExit(Generous);
        }
        finally
        {
            queue.Dispose();
        }

        ShmMaintenance.RemoveStaleSegments();
        Assert.AreEqual(0, LargeMessages.SideFilesOf(me).Length);
    }

    /// <summary>1 GiB with SHMIPC_STRESS=1; CI runs the bounded form, 256 MiB.</summary>
    [TestMethod]
    [TestCategory("Stress")]
    public void A_message_of_a_gibibyte_arrives_whole()
    {
        int length = Environment.GetEnvironmentVariable("SHMIPC_STRESS") == "1" ? 1 << 30 : 256 << 20;
        using ShmQueue queue = NewQueue();
        using ChildProcess child = ChildProcess.Start("large-produce", queue.Name, "5", "1", S(length), S(length));
        Assert.IsTrue(queue.TryDequeue(static (span, _) => (span.Length, LargeMessages.Check(span)), 0, TimeSpan.FromMinutes(5), out var got));
        Assert.AreEqual((length, (5, 0)), got);
        Assert.AreEqual(0, child.WaitForExit(Generous), child.StandardError);
    }
}
