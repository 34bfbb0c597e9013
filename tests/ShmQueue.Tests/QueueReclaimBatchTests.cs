using ShmIpc.Tests.Common;

namespace ShmIpc.Tests;

/// <summary>
/// A producer that waits on a full queue reclaims in batches while it spins (ShmQueue.TryEnqueueAfterBatch), and takes
/// any finished record once it is about to sleep: nothing is lost, nothing reordered, and a single dequeue still lets a
/// waiting producer in.
/// </summary>
[TestClass]
public sealed class QueueReclaimBatchTests
{
    private static readonly TimeSpan Long = TimeSpan.FromSeconds(30);

    private static TempSegment<ShmQueue> NewQueue(long capacity, TimeSpan? spin = null) =>
        TempSegment.Create("qbatch", name => ShmQueue.Create(name, new ShmQueueOptions
        {
            Capacity = capacity,
            MaxMessageLength = 256,
            WaitStrategy = new ShmWaitStrategy { SleepSlice = TimeSpan.FromMilliseconds(50), SpinDuration = spin ?? TimeSpan.FromMicroseconds(50) },
        }));

    private static int FillUp(ShmQueue queue, int length)
    {
        int count = 0;
        byte[] message = new byte[length];
        while (queue.TryEnqueue(message))
        {
            count++;
        }

        return count;
    }

    [TestMethod]
    [DataRow(0)]
    [DataRow(50)]
    public void A_producer_waiting_on_a_full_queue_gets_in_after_one_dequeue_smaller_than_a_batch(int spinMicroseconds)
    {
        // 64 KiB: a batch is 8 KiB; one 64 B message frees 96 bytes.
        using TempSegment<ShmQueue> temp = NewQueue(64 * 1024, TimeSpan.FromMicroseconds(spinMicroseconds));
        ShmQueue queue = temp.Object;
        int full = FillUp(queue, 64);
        Assert.IsTrue(full > 600, $"only {full} messages fit");

        Task<bool> producer = Task.Run(() => queue.TryEnqueue(new byte[] { 7 }, Long));
        Assert.IsFalse(producer.Wait(TimeSpan.FromMilliseconds(20)), "the queue is full: the producer must wait");

        Assert.AreEqual(64, queue.Dequeue(Long).Length);
        Assert.IsTrue(producer.Wait(Long), "one dequeue, less than a batch, must let the waiting producer in");
        Assert.IsTrue(producer.Result);
        Assert.AreEqual(full, queue.Count, "the waiting message took the one freed place");
    }

    [TestMethod]
    public void A_non_waiting_enqueue_uses_any_finished_record()
    {
        using TempSegment<ShmQueue> temp = NewQueue(64 * 1024);
        ShmQueue queue = temp.Object;
        FillUp(queue, 64);
        Assert.IsFalse(queue.TryEnqueue(new byte[64]));

        queue.Dequeue(Long);
        Assert.IsTrue(queue.TryEnqueue(new byte[64]), "TryEnqueue reports full only when no finished record makes room");
        Assert.IsFalse(queue.TryEnqueue(new byte[64]));
    }

    [TestMethod]
    public void A_zero_timeout_enqueue_uses_any_finished_record()
    {
        using TempSegment<ShmQueue> temp = NewQueue(64 * 1024);
        ShmQueue queue = temp.Object;
        FillUp(queue, 64);
        Assert.IsFalse(queue.TryEnqueue(new byte[64], TimeSpan.Zero));

        queue.Dequeue(Long);
        Assert.IsTrue(queue.TryEnqueue(new byte[64], TimeSpan.Zero), "a call that will not wait does not hold out for a batch");
        Assert.IsFalse(queue.TryEnqueue(new byte[64], TimeSpan.Zero));
    }

    [TestMethod]
    public void A_producer_beside_a_consumer_slower_than_a_batch_gets_every_message_through()
    {
        // 64 KiB: a batch is 8 KiB (~85 messages of 64 B); the consumer takes one message at a time with a pause between,
        // so no batch is ever finished within the producer's batch wait: it must fall back to what is finished.
        const int Messages = 3_000;
        using TempSegment<ShmQueue> temp = NewQueue(64 * 1024);
        ShmQueue queue = temp.Object;
        Task producer = Task.Run(() =>
        {
            byte[] message = new byte[64];
            for (int i = 0; i < Messages; i++)
            {
                BitConverter.TryWriteBytes(message, i);
                queue.Enqueue(message, Long);
            }
        });

        byte[] buffer = new byte[256];
        for (int i = 0; i < Messages; i++)
        {
            Assert.IsTrue(queue.TryDequeue(buffer, out _, Long), $"message {i} never came");
            Assert.AreEqual(i, BitConverter.ToInt32(buffer));
            Thread.SpinWait(200); // a slow consumer: the work it does per message, not a wait for anything
        }

        Assert.IsTrue(producer.Wait(Long));
    }

    [TestMethod]
    [DataRow(4096L)]
    [DataRow(64L * 1024)]
    public void A_producer_faster_than_its_consumer_loses_and_reorders_nothing(long capacity)
    {
        const int Messages = 100_000;
        using TempSegment<ShmQueue> temp = NewQueue(capacity);
        ShmQueue queue = temp.Object;
        Task producer = Task.Run(() =>
        {
            byte[] message = new byte[40];
            for (int i = 0; i < Messages; i++)
            {
                BitConverter.TryWriteBytes(message, i);
                message[39] = (byte)i;
                queue.Enqueue(message, Long);
            }
        });

        byte[] buffer = new byte[256];
        for (int i = 0; i < Messages; i++)
        {
            Assert.IsTrue(queue.TryDequeue(buffer, out int length, Long), $"message {i} never came");
            Assert.AreEqual(40, length);
            Assert.AreEqual(i, BitConverter.ToInt32(buffer), "out of order or lost");
            Assert.AreEqual((byte)i, buffer[39]);
        }

        Assert.IsTrue(producer.Wait(Long));
        Assert.AreEqual(0, queue.Count);
        (long head, long read, long tail) = queue.Ring.Positions;
        Assert.IsTrue(head <= read && read == tail, $"head {head}, read {read}, tail {tail}");
    }
}
