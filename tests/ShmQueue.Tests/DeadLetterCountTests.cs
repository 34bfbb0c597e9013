using ShmIpc.Tests.Common;

namespace ShmIpc.Tests;

/// <summary>Dead letters arrive with the delivery count they had, readable by the dead-letter consumer's Take.</summary>
[TestClass]
public sealed class DeadLetterCountTests
{
    private static readonly TimeSpan Long = TimeSpan.FromSeconds(10);

    private static void Remove(string name)
    {
        foreach (string file in TestNames.ShmFilesOf(name))
        {
            File.Delete(file);
        }
    }

    [TestMethod]
    public void Nacked_and_overdelivered_messages_reach_the_dead_letter_queue_with_their_delivery_counts()
    {
        using TempSegment<ShmQueue> fixture = TempSegment.Create("qdlc", n => ShmQueue.Create(n, new ShmQueueOptions
        {
            Capacity = 1 << 14,
            Acknowledged = true,
            MaxDeliveries = 3,
        }));
        ShmQueue queue = fixture.Object;
        string deadName = fixture.Name + ".dead";
        try
        {
            queue.Enqueue([1]);
            queue.Enqueue([2]);
            queue.Enqueue([3]);

            queue.Take(Long).Nack(requeue: false); // 1: its first delivery, dead-lettered at once
            ShmDelivery two = queue.Take(Long);
            two.Nack();
            ShmDelivery twoAgain = queue.Take(Long);
            Assert.AreEqual(2, twoAgain.DeliveryCount);
            twoAgain.Nack(requeue: false); // 2: after two deliveries

            ShmDelivery three = queue.Take(Long);
            for (int delivery = 1; delivery < 3; delivery++)
            {
                three.Nack();
                three = queue.Take(Long);
            }

            Assert.AreEqual(3, three.DeliveryCount);
            three.Nack(); // 3: its third delivery was not acked either; the next take sends it on with 3
            Assert.IsFalse(queue.TryTake(out _, TimeSpan.FromMilliseconds(50)));
            Assert.AreEqual(0, queue.UnfinishedTasks);

            using ShmQueue dead = ShmQueue.Open(deadName);
            Assert.IsTrue(dead.IsAcknowledged, "the dead-letter queue is made acknowledged, so it can carry the counts");
            var counts = new Dictionary<byte, int>();
            for (int i = 0; i < 3; i++)
            {
                ShmDelivery letter = dead.Take(Long);
                counts.Add(letter.Span[0], letter.DeliveryCount);
                if (letter.Span[0] == 2 && letter.DeliveryCount == 2)
                {
                    // Given back on the dead-letter queue too: the count goes on from there.
                    letter.Nack();
                    ShmDelivery again = dead.Take(Long);
                    Assert.AreEqual(2, again.Span[0]);
                    Assert.AreEqual(3, again.DeliveryCount);
                    again.Ack();
                    continue;
                }

                letter.Ack();
            }

            Assert.AreEqual(1, counts[1]);
            Assert.AreEqual(2, counts[2]);
            Assert.AreEqual(3, counts[3]);
            Assert.IsFalse(dead.TryTake(out _));
        }
        finally
        {
            fixture.Release();
            Remove(deadName);
        }
    }

    [TestMethod]
    public void A_plain_dead_letter_queue_made_beforehand_still_receives_the_message()
    {
        string deadName = TestNames.Unique("qdlplain");
        using ShmQueue plainDead = ShmQueue.Create(deadName, new ShmQueueOptions { Capacity = 1 << 14 });
        try
        {
            using TempSegment<ShmQueue> fixture = TempSegment.Create("qdlp", n => ShmQueue.Create(n, new ShmQueueOptions
            {
                Capacity = 1 << 14,
                Acknowledged = true,
                DeadLetterQueue = deadName,
            }));
            fixture.Object.Enqueue([9]);
            fixture.Object.Take(Long).Nack(requeue: false);
            Assert.IsTrue(plainDead.TryDequeue(out byte[]? letter));
            Assert.AreEqual(9, letter[0]);
        }
        finally
        {
            plainDead.Unlink();
        }
    }
}
