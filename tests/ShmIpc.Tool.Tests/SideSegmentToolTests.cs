using System.Text.Json;
using ShmIpc.Tests.Common;
using static ShmIpc.Tool.Tests.ToolRunner;

namespace ShmIpc.Tool.Tests;

/// <summary>
/// Side segments (messages longer than the ring, LAYOUT.md §8) are listed as such, with their state, owner and size, and
/// `shmipc clean` removes one whose owner is gone.
/// </summary>
[TestClass]
public sealed class SideSegmentToolTests
{
    private const int Length = 3 << 20;

    private static string SideOf(int pid, string[] before) =>
        Path.GetFileName(Directory.GetFiles("/dev/shm", $"shmipc.side-{pid}-*").Except(before).Single())["shmipc.".Length..];

    [TestMethod]
    public void A_side_segment_is_listed_and_inspected_with_its_state_owner_size_and_host()
    {
        string queueName = TestNames.Unique("tside");
        string[] before = Directory.GetFiles("/dev/shm", $"shmipc.side-{Environment.ProcessId}-*");
        using ShmQueue queue = ShmQueue.Create(queueName, new ShmQueueOptions { Capacity = 1 << 16 });
        queue.Enqueue(new byte[Length]);
        string side = SideOf(Environment.ProcessId, before);

        JsonElement listed = ObjectNamed(Json("list"), side);
        Assert.AreEqual("side-segment", listed.GetProperty("kind").GetString());
        Assert.AreEqual(Environment.ProcessId, listed.GetProperty("creator").GetProperty("pid").GetInt32());

        JsonElement waiting = Json("inspect", side).GetProperty("sideSegment");
        Assert.AreEqual("published", waiting.GetProperty("state").GetString());
        Assert.AreEqual("host", waiting.GetProperty("owner").GetString(), "a published message belongs to the queue that carries its record");
        Assert.AreEqual(Length, waiting.GetProperty("messageLength").GetInt64());
        Assert.IsTrue(waiting.GetProperty("capacityBytes").GetInt64() >= Length);
        Assert.IsTrue(waiting.GetProperty("retained").GetBoolean());
        Assert.AreEqual($"shmipc.{queueName}", waiting.GetProperty("host").GetString());
        Assert.IsTrue(waiting.GetProperty("hostExists").GetBoolean());
        (int code, string text, _) = Run("inspect", side);
        Assert.AreEqual(0, code, text);
        StringAssert.StartsWith(text, $"side-segment {side}");
        StringAssert.Contains(text, $"the host: its message waits in shmipc.{queueName}");
        Assert.AreEqual("ok", ObjectNamed(Json("doctor", side), side).GetProperty("health").GetString());

        Assert.AreEqual(Length, queue.Dequeue(TimeSpan.FromSeconds(10)).Length);
        JsonElement read = Json("inspect", side).GetProperty("sideSegment");
        Assert.AreEqual("free", read.GetProperty("state").GetString(), "read: handed back to its sender");
        Assert.AreEqual("sender", read.GetProperty("owner").GetString());
    }

    [TestMethod]
    public void Clean_removes_a_side_segment_whose_queue_is_gone_and_keeps_one_whose_message_still_waits()
    {
        string gone = TestNames.Unique("tside-gone"), kept = TestNames.Unique("tside-kept");
        int me = Environment.ProcessId;
        string[] before = Directory.GetFiles("/dev/shm", $"shmipc.side-{me}-*");
        using ShmQueue keptQueue = ShmQueue.Create(kept, new ShmQueueOptions { Capacity = 1 << 16 });
        keptQueue.Enqueue(new byte[Length]);
        string keptSide = SideOf(me, before);
        string goneSide;
        using (ShmQueue goneQueue = ShmQueue.Create(gone, new ShmQueueOptions { Capacity = 1 << 16 }))
        {
            goneQueue.Enqueue(new byte[Length]);
            goneSide = SideOf(me, [.. before, $"/dev/shm/shmipc.{keptSide}"]);
        }

        // Its message was never read and its queue is gone: nobody will read it; its sender let go of it at Dispose. The
        // automatic sweep of another ShmIpc process (the suite's other assemblies run meanwhile) may remove it first; else clean does.
        if (File.Exists($"/dev/shm/shmipc.{goneSide}"))
        {
            JsonElement doctor = Json("doctor", goneSide, keptSide);
            Assert.AreEqual("stale", ObjectNamed(doctor, goneSide).GetProperty("health").GetString());
            Assert.AreEqual("ok", ObjectNamed(doctor, keptSide).GetProperty("health").GetString());

            JsonElement cleaned = Json("clean", goneSide, keptSide);
            foreach (JsonElement removed in cleaned.GetProperty("removed").EnumerateArray()) // none only if a sweep won the race
            {
                Assert.AreEqual(goneSide, removed.GetProperty("name").GetString());
                Assert.AreEqual("side-segment", removed.GetProperty("kind").GetString());
            }

            StringAssert.Contains(cleaned.GetProperty("kept").EnumerateArray().Single().GetProperty("reason").GetString(), $"still queued in shmipc.{kept}");
        }

        Assert.IsFalse(File.Exists($"/dev/shm/shmipc.{goneSide}"), "the side segment of the gone queue is removed");
        Assert.IsTrue(File.Exists($"/dev/shm/shmipc.{keptSide}"), "the one whose message waits stays");
        Assert.AreEqual(Length, keptQueue.Dequeue(TimeSpan.FromSeconds(10)).Length, "and its message is delivered whole");
    }
}
