using System.Buffers.Binary;
using ShmIpc.Tests.Common;

namespace ShmIpc.Tests;

/// <summary>A draining shutdown of an acknowledged queue is over only when no delivery is held any more.</summary>
[TestClass]
public sealed class AcknowledgedDrainTests
{
    private static readonly TimeSpan Long = TimeSpan.FromSeconds(60);

    private static TempSegment<ShmQueue> NewQueue() =>
        TempSegment.Create("qackdrain", n => ShmQueue.Create(n, new ShmQueueOptions { Capacity = 1 << 14, Acknowledged = true }));

    [TestMethod]
    public async Task Take_waits_while_a_delivery_is_held_gets_it_when_it_is_nacked_and_throws_once_all_is_acked()
    {
        using TempSegment<ShmQueue> fixture = NewQueue();
        ShmQueue queue = fixture.Object;
        queue.Enqueue([1]);
        ShmDelivery held = queue.Take(Long);
        queue.Shutdown();

        Assert.IsFalse(queue.TryTake(out _, TimeSpan.FromMilliseconds(100)), "nothing to take yet, and the drain is not over");
        Task<ShmDelivery> waiting = Task.Run(() => queue.Take(Long));
        Assert.IsFalse(waiting.Wait(TimeSpan.FromMilliseconds(100)), "the held delivery may come back: Take must wait");
        held.Nack();
        ShmDelivery again = await waiting.WaitAsync(Long);
        Assert.AreEqual(1, again.Span[0]);
        Assert.AreEqual(2, again.DeliveryCount);

        Task<ShmDelivery> last = Task.Run(() => queue.Take(Long));
        Assert.IsFalse(last.Wait(TimeSpan.FromMilliseconds(100)));
        again.Ack();
        await Assert.ThrowsExactlyAsync<ShmQueueShutDownException>(() => last.WaitAsync(Long));
        Assert.ThrowsExactly<ShmQueueShutDownException>(() => queue.Dequeue(Long), "the plain dequeue drains the same way");
    }

    [TestMethod]
    public void A_delivery_held_by_a_consumer_killed_during_the_drain_is_still_delivered()
    {
        using TempSegment<ShmQueue> fixture = NewQueue();
        ShmQueue queue = fixture.Object;
        byte[] message = new byte[8];
        BinaryPrimitives.WriteInt32LittleEndian(message, 77);
        queue.Enqueue(message);
        using var children = new ChildProcesses();
        ChildProcess holder = children.StartReady("ack-take-hold", fixture.Name);
        Assert.AreEqual("TAKEN 1 77", holder.WaitForLine("TAKEN", Long));
        queue.Shutdown();
        holder.Kill9();

        ShmDelivery back = queue.Take(Long);
        Assert.AreEqual(77, BinaryPrimitives.ReadInt32LittleEndian(back.Span));
        Assert.AreEqual(2, back.DeliveryCount);
        back.Ack();
        Assert.ThrowsExactly<ShmQueueShutDownException>(() => queue.Take(Long));
    }
}
