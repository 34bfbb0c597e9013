using System.Diagnostics;
using ShmIpc.Tests.Common;

namespace ShmIpc.Tests;

/// <summary>Acknowledged delivery in one process: take, ack, nack, redelivery counts, dead letters, Join.</summary>
[TestClass]
public sealed class AcknowledgedQueueTests
{
    private static TempSegment<ShmQueue> NewQueue(int? maxDeliveries = null, string? deadLetters = null) =>
        TempSegment.Create("qack", n => ShmQueue.Create(n, new ShmQueueOptions
        {
            Capacity = 1 << 14,
            Acknowledged = true,
            MaxDeliveries = maxDeliveries,
            DeadLetterQueue = deadLetters,
        }));

    [TestMethod]
    public void Take_then_ack_removes_the_message_and_the_opener_reads_the_mode_from_the_queue()
    {
        using TempSegment<ShmQueue> fixture = NewQueue();
        ShmQueue queue = fixture.Object;
        using ShmQueue opened = ShmQueue.Open(fixture.Name); // no Acknowledged in its options
        Assert.IsTrue(opened.IsAcknowledged);
        queue.Enqueue([1, 2, 3]);

        ShmDelivery delivery = opened.Take(TimeSpan.FromSeconds(5));
        CollectionAssert.AreEqual(new byte[] { 1, 2, 3 }, delivery.ToArray());
        Assert.AreEqual(1, delivery.DeliveryCount);
        Assert.AreEqual(0, queue.Count);
        Assert.AreEqual(1, queue.InFlight);
        Assert.AreEqual(1, queue.UnfinishedTasks);

        delivery.Ack();
        Assert.AreEqual(0, queue.InFlight);
        Assert.AreEqual(0, queue.UnfinishedTasks);
        Assert.IsFalse(queue.TryTake(out _));
        Assert.ThrowsExactly<InvalidOperationException>(() => delivery.Ack());
        Assert.ThrowsExactly<InvalidOperationException>(() => _ = delivery.Span.Length);
    }

    [TestMethod]
    public void A_nacked_message_is_delivered_again_with_a_higher_count_before_later_ones_are_not_lost()
    {
        using TempSegment<ShmQueue> fixture = NewQueue();
        ShmQueue queue = fixture.Object;
        queue.Enqueue([1]);
        queue.Enqueue([2]);

        ShmDelivery first = queue.Take(TimeSpan.FromSeconds(5));
        Assert.AreEqual(1, first.Span[0]);
        first.Nack();
        Assert.AreEqual(2, queue.Count, "a released message counts as waiting again");

        ShmDelivery again = queue.Take(TimeSpan.FromSeconds(5));
        Assert.AreEqual(1, again.Span[0]);
        Assert.AreEqual(2, again.DeliveryCount);
        again.Dispose(); // Dispose without Ack is a Nack

        ShmDelivery third = queue.Take(TimeSpan.FromSeconds(5));
        Assert.AreEqual(1, third.Span[0]);
        Assert.AreEqual(3, third.DeliveryCount);
        third.Ack();

        ShmDelivery second = queue.Take(TimeSpan.FromSeconds(5));
        Assert.AreEqual(2, second.Span[0]);
        Assert.AreEqual(1, second.DeliveryCount);
        second.Ack();
        Assert.AreEqual(0, queue.UnfinishedTasks);
    }

    [TestMethod]
    public void Dequeue_on_an_acknowledged_queue_takes_and_acks_and_picks_up_released_messages()
    {
        using TempSegment<ShmQueue> fixture = NewQueue();
        ShmQueue queue = fixture.Object;
        queue.Enqueue([7]);
        queue.Take(TimeSpan.FromSeconds(5)).Nack();

        Assert.IsTrue(queue.TryDequeue(out byte[]? message, TimeSpan.FromSeconds(5)));
        CollectionAssert.AreEqual(new byte[] { 7 }, message);
        Assert.AreEqual(0, queue.UnfinishedTasks);
        Assert.AreEqual(0, queue.Count);
    }

    [TestMethod]
    public void Take_on_a_plain_queue_says_why_it_cannot()
    {
        using TempSegment<ShmQueue> fixture = TempSegment.Create("qplain", n => ShmQueue.Create(n, new ShmQueueOptions { Capacity = 4096 }));
        var error = Assert.ThrowsExactly<InvalidOperationException>(() => fixture.Object.Take(TimeSpan.Zero));
        StringAssert.Contains(error.Message, "not acknowledged");
        Assert.ThrowsExactly<ArgumentException>(() => ShmQueue.Create(TestNames.Unique("qbad"), new ShmQueueOptions { MaxDeliveries = 2 }));
    }

    [TestMethod]
    public void Nack_without_requeue_and_MaxDeliveries_send_the_message_to_the_dead_letter_queue_and_the_queue_keeps_flowing()
    {
        using TempSegment<ShmQueue> fixture = NewQueue(maxDeliveries: 2);
        ShmQueue queue = fixture.Object;
        string deadName = fixture.Name + ".dead";
        try
        {
            queue.Enqueue([1]);
            queue.Enqueue([2]);
            queue.Enqueue([3]);

            queue.Take(TimeSpan.FromSeconds(5)).Nack(requeue: false); // 1: dead-lettered at once
            ShmDelivery two = queue.Take(TimeSpan.FromSeconds(5));
            Assert.AreEqual(2, two.Span[0]);
            two.Nack();
            ShmDelivery twoAgain = queue.Take(TimeSpan.FromSeconds(5));
            Assert.AreEqual(2, twoAgain.Span[0]);
            Assert.AreEqual(2, twoAgain.DeliveryCount);
            twoAgain.Nack(); // its second delivery without an ack: the next take sends it to the dead letters

            ShmDelivery three = queue.Take(TimeSpan.FromSeconds(5));
            Assert.AreEqual(3, three.Span[0]);
            three.Ack();
            Assert.IsFalse(queue.TryTake(out _, TimeSpan.FromMilliseconds(50)));
            Assert.AreEqual(0, queue.UnfinishedTasks);

            // Dead letters keep their counts: the dead-letter queue is made acknowledged, and its Take reports them.
            using ShmQueue dead = ShmQueue.Open(deadName);
            Assert.IsTrue(dead.IsAcknowledged);
            ShmDelivery d1 = dead.Take(TimeSpan.FromSeconds(5));
            Assert.AreEqual((1, 1), (d1.Span[0], d1.DeliveryCount), "nacked without requeue on its first delivery");
            d1.Ack();
            ShmDelivery d2 = dead.Take(TimeSpan.FromSeconds(5));
            Assert.AreEqual((2, 2), (d2.Span[0], d2.DeliveryCount), "delivered MaxDeliveries (2) times");
            d2.Nack();
            ShmDelivery d2Again = dead.Take(TimeSpan.FromSeconds(5));
            Assert.AreEqual((2, 3), (d2Again.Span[0], d2Again.DeliveryCount), "given back on the dead-letter queue, the count goes on");
            d2Again.Ack();
            Assert.IsFalse(dead.TryDequeue(out _));
        }
        finally
        {
            fixture.Release();
            foreach (string file in TestNames.ShmFilesOf(deadName))
            {
                File.Delete(file);
            }
        }
    }

    [TestMethod]
    public void Join_times_out_while_a_delivery_is_held_and_returns_when_it_is_acked()
    {
        using TempSegment<ShmQueue> fixture = NewQueue();
        ShmQueue queue = fixture.Object;
        Assert.IsTrue(queue.Join(TimeSpan.Zero), "an empty queue has nothing unfinished");
        queue.Enqueue([1]);
        ShmDelivery delivery = queue.Take(TimeSpan.FromSeconds(5));

        var clock = Stopwatch.StartNew();
        Assert.IsFalse(queue.Join(TimeSpan.FromMilliseconds(200)));
        Assert.IsTrue(clock.Elapsed >= TimeSpan.FromMilliseconds(190), $"waited only {clock.Elapsed}");

        using var acked = new ManualResetEventSlim();
        var acker = new Thread(() =>
        {
            acked.Wait();
            delivery.Ack();
        });
        acker.Start();
        Task<bool> join = Task.Run(() => queue.Join(TimeSpan.FromSeconds(30)));
        Assert.IsFalse(join.Wait(TimeSpan.FromMilliseconds(100)), "Join returned before the ack");
        acked.Set();
        Assert.IsTrue(join.Result);
        acker.Join();
    }

    [TestMethod]
    public void Disposing_an_unsettled_delivery_gives_it_back_and_typed_deliveries_carry_the_value()
    {
        using TempSegment<ShmQueue> fixture = NewQueue();
        using ShmQueue<string> typed = ShmQueue<string>.Open(fixture.Name);
        typed.Queue.Enqueue("hello"u8);

        using (ShmQueue other = ShmQueue.Open(fixture.Name))
        {
            using ShmDelivery unsettled = other.Take(TimeSpan.FromSeconds(5));
            Assert.IsFalse(unsettled.IsSettled);
        }

        ShmDelivery<string> again = typed.Take(TimeSpan.FromSeconds(5));
        Assert.AreEqual("hello", again.Value);
        Assert.AreEqual(2, again.DeliveryCount);
        again.Ack();
        Assert.AreEqual(0, typed.Queue.UnfinishedTasks);
    }

    [TestMethod]
    public async Task TakeAsync_completes_when_a_message_arrives()
    {
        using TempSegment<ShmQueue> fixture = NewQueue();
        ShmQueue queue = fixture.Object;
        ValueTask<ShmDelivery> pending = queue.TakeAsync();
        queue.Enqueue([5]);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        ShmDelivery delivery = await pending.AsTask().WaitAsync(timeout.Token);
        Assert.AreEqual(5, delivery.Span[0]);
        delivery.Ack();
        await queue.JoinAsync(timeout.Token);
    }
}
