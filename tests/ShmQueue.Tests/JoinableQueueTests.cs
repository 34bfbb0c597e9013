using System.Diagnostics;
using ShmIpc.Tests.Common;

namespace ShmIpc.Tests;

/// <summary>Joinable queues in one process: puts count, TaskDone counts down, Join and JoinAsync wait for zero.</summary>
[TestClass]
public sealed class JoinableQueueTests
{
    private static readonly TimeSpan Long = TimeSpan.FromSeconds(30);

    private static TempSegment<ShmQueue> NewQueue(long capacity = 1 << 14) =>
        TempSegment.Create("qjoin", n => ShmQueue.Create(n, new ShmQueueOptions { Capacity = capacity, Joinable = true, MaxMessageLength = 256 }));

    [TestMethod]
    public void Every_kind_of_put_counts_until_TaskDone_and_an_extra_TaskDone_throws()
    {
        using TempSegment<ShmQueue> fixture = NewQueue();
        ShmQueue queue = fixture.Object;
        Assert.IsTrue(queue.IsJoinable);
        Assert.IsFalse(queue.IsAcknowledged);
        Assert.AreEqual(0, queue.UnfinishedTasks);
        Assert.IsTrue(queue.Join(TimeSpan.Zero), "nothing was put");

        queue.Enqueue([1]);
        Assert.IsTrue(queue.TryEnqueue([2]));
        using (ShmLoan loan = queue.Loan(16, Long))
        {
            loan.Span[0] = 3;
            loan.Commit(1);
        }

        queue.Enqueue(new byte[1000]); // longer than the ring takes: a side-segment record, one message all the same
        Assert.AreEqual(4, queue.UnfinishedTasks);

        for (int i = 0; i < 4; i++)
        {
            Assert.IsTrue(queue.TryDequeue(out _, Long));
        }

        Assert.AreEqual(4, queue.UnfinishedTasks, "dequeuing does not finish a message; TaskDone does");
        var clock = Stopwatch.StartNew();
        Assert.IsFalse(queue.Join(TimeSpan.FromMilliseconds(200)));
        Assert.IsTrue(clock.Elapsed >= TimeSpan.FromMilliseconds(190), $"Join(200 ms) gave up after {clock.Elapsed}");

        for (int i = 0; i < 4; i++)
        {
            queue.TaskDone();
        }

        Assert.AreEqual(0, queue.UnfinishedTasks);
        Assert.IsTrue(queue.Join(TimeSpan.Zero));
        var e = Assert.ThrowsExactly<InvalidOperationException>(queue.TaskDone);
        StringAssert.Contains(e.Message, queue.Name);
        StringAssert.Contains(e.Message, "more times than messages were put");
        Assert.AreEqual(0, queue.UnfinishedTasks, "a refused TaskDone changes nothing");

        using ShmQueue opener = ShmQueue.Open(fixture.Name);
        Assert.IsTrue(opener.IsJoinable, "an opener reads the mode from the queue");
    }

    [TestMethod]
    public void A_put_refused_because_the_queue_is_full_or_shut_down_is_not_counted()
    {
        using TempSegment<ShmQueue> fixture = NewQueue(capacity: 4096);
        ShmQueue queue = fixture.Object;
        int written = 0;
        while (queue.TryEnqueue(new byte[100]))
        {
            written++;
        }

        Assert.IsTrue(written > 0);
        Assert.AreEqual(written, queue.UnfinishedTasks);
        queue.Shutdown();
        Assert.ThrowsExactly<ShmQueueShutDownException>(() => queue.TryEnqueue([1]));
        Assert.AreEqual(written, queue.UnfinishedTasks);
    }

    [TestMethod]
    public void TaskDone_says_why_on_plain_and_acknowledged_queues_and_the_options_refuse_both_modes()
    {
        using TempSegment<ShmQueue> plain = TempSegment.Create("qjoinp", n => ShmQueue.Create(n, new ShmQueueOptions { Capacity = 4096 }));
        Assert.IsFalse(plain.Object.IsJoinable);
        StringAssert.Contains(Assert.ThrowsExactly<InvalidOperationException>(plain.Object.TaskDone).Message, "Joinable = true");

        using TempSegment<ShmQueue> acknowledged = TempSegment.Create("qjoina", n => ShmQueue.Create(n, new ShmQueueOptions { Capacity = 4096, Acknowledged = true }));
        StringAssert.Contains(Assert.ThrowsExactly<InvalidOperationException>(acknowledged.Object.TaskDone).Message, "Ack is TaskDone");

        string name = TestNames.Unique("qjoinboth");
        var e = Assert.ThrowsExactly<ArgumentException>(() => ShmQueue.Create(name, new ShmQueueOptions { Acknowledged = true, Joinable = true }));
        Assert.AreEqual("Joinable", e.ParamName);
        Assert.IsFalse(File.Exists("/dev/shm/shmipc." + name));
    }

    [TestMethod]
    public async Task JoinAsync_completes_when_the_last_TaskDone_lands_and_can_be_cancelled()
    {
        using TempSegment<ShmQueue> fixture = NewQueue();
        ShmQueue queue = fixture.Object;
        await queue.JoinAsync().WaitAsync(Long); // nothing unfinished: at once

        queue.Enqueue([1]);
        queue.Enqueue([2]);
        _ = queue.Dequeue(Long);
        _ = queue.Dequeue(Long);
        Task join = queue.JoinAsync();
        queue.TaskDone();
        Assert.IsFalse(join.Wait(TimeSpan.FromMilliseconds(100)), "one message is still unfinished");
        queue.TaskDone();
        await join.WaitAsync(Long);

        queue.Enqueue([3]);
        using var cts = new CancellationTokenSource();
        Task cancelled = queue.JoinAsync(cts.Token);
        cts.Cancel();
        await Assert.ThrowsAsync<OperationCanceledException>(() => cancelled.WaitAsync(Long));
        Assert.AreEqual(1, queue.UnfinishedTasks);
    }

    [TestMethod]
    public async Task JoinAsync_faults_when_the_queue_is_disposed_and_typed_queues_forward_the_count()
    {
        string name = TestNames.Unique("qjoint");
        try
        {
            var typed = ShmQueue<int>.Create(name, new ShmQueueOptions { Capacity = 4096, Joinable = true });
            Assert.IsTrue(typed.IsJoinable);
            typed.Enqueue(7);
            Assert.AreEqual(7, typed.Dequeue(Long));
            Assert.AreEqual(1, typed.UnfinishedTasks);
            Task join = typed.JoinAsync();
            typed.TaskDone();
            await join.WaitAsync(Long);

            typed.Enqueue(8);
            Task pending = typed.JoinAsync();
            typed.Dispose();
            await Assert.ThrowsExactlyAsync<ObjectDisposedException>(() => pending.WaitAsync(Long));
        }
        finally
        {
            foreach (string file in TestNames.ShmFilesOf(name))
            {
                File.Delete(file);
            }
        }
    }

    [TestMethod]
    public async Task JoinAsync_on_an_acknowledged_queue_completes_when_the_delivery_is_acked()
    {
        using TempSegment<ShmQueue> fixture = TempSegment.Create("qjoinack", n => ShmQueue.Create(n, new ShmQueueOptions { Capacity = 4096, Acknowledged = true }));
        ShmQueue queue = fixture.Object;
        queue.Enqueue([1]);
        ShmDelivery delivery = queue.Take(Long);
        Task join = queue.JoinAsync();
        Assert.IsFalse(join.Wait(TimeSpan.FromMilliseconds(100)), "the delivery is held");
        delivery.Ack();
        await join.WaitAsync(Long);
    }
}
