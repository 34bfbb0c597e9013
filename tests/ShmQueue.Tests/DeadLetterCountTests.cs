using ShmIpc.Tests.Common;

namespace ShmIpc.Tests;

/// <summary>
/// Dead letters into a plain dead-letter queue made beforehand (the counts travel only into an acknowledged one:
/// AcknowledgedQueueTests, AcknowledgedProcessTests).
/// </summary>
[TestClass]
public sealed class DeadLetterCountTests
{
    private static readonly TimeSpan Long = TimeSpan.FromSeconds(10);

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
