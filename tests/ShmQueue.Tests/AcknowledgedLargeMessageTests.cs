using ShmIpc.Tests.Common;

namespace ShmIpc.Tests;

/// <summary>Acknowledged queues take no side-segment messages: refused at Enqueue, nothing written, the queue serves on.</summary>
[TestClass]
public sealed class AcknowledgedLargeMessageTests
{
    [TestMethod]
    public void A_message_longer_than_MaxMessageLength_is_refused_on_an_acknowledged_queue_and_the_queue_serves_on()
    {
        using TempSegment<ShmQueue> fixture = TempSegment.Create("qackl", n => ShmQueue.Create(n, new ShmQueueOptions
        {
            Capacity = 1 << 14,
            Acknowledged = true,
        }));
        ShmQueue queue = fixture.Object;
        byte[] large = new byte[queue.MaxMessageLength + 1];

        ArgumentException refused = Assert.ThrowsExactly<ArgumentException>(() => queue.Enqueue(large));
        StringAssert.Contains(refused.Message, fixture.Name);
        StringAssert.Contains(refused.Message, "acknowledged");
        Assert.ThrowsExactly<ArgumentException>(() => queue.TryEnqueue(large));
        Assert.AreEqual(0, queue.Count, "nothing was written");

        queue.Enqueue(new byte[queue.MaxMessageLength]);
        using ShmDelivery delivery = queue.Take(TimeSpan.FromSeconds(5));
        Assert.AreEqual(queue.MaxMessageLength, delivery.Span.Length);
        delivery.Ack();
        Assert.IsTrue(queue.Join(TimeSpan.FromSeconds(5)));
    }
}
