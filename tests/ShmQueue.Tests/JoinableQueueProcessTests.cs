using System.Diagnostics;
using ShmIpc.Tests.Common;

namespace ShmIpc.Tests;

/// <summary>Joinable queues across real processes: the count is shared, any process may call TaskDone.</summary>
[TestClass]
public sealed class JoinableQueueProcessTests
{
    private static readonly TimeSpan Long = TimeSpan.FromSeconds(60);

    private static TempSegment<ShmQueue> NewQueue() =>
        TempSegment.Create("qjoinx", n => ShmQueue.Create(n, new ShmQueueOptions { Capacity = 1 << 14, Joinable = true }));

    [TestMethod]
    public async Task Join_returns_when_a_child_marks_the_last_message_done_and_not_before()
    {
        using TempSegment<ShmQueue> fixture = NewQueue();
        ShmQueue queue = fixture.Object;
        using var children = new ChildProcesses();
        ChildProcess producer = children.StartReady("join-put", fixture.Name, "3");
        producer.WaitForLine("DONE", Long);
        Assert.AreEqual(0, producer.WaitForExit(Long), producer.StandardError);
        Assert.AreEqual(3, queue.UnfinishedTasks, "another process's puts count here");

        ChildProcess worker = children.StartReady("join-work", fixture.Name, "3");
        Assert.AreEqual("HELD 1", worker.WaitForLine("HELD", Long), "two TaskDone calls landed, one message is still being worked on");
        Assert.AreEqual(1, queue.UnfinishedTasks);

        var clock = Stopwatch.StartNew();
        Assert.IsFalse(queue.Join(TimeSpan.FromMilliseconds(300)));
        Assert.IsTrue(clock.Elapsed >= TimeSpan.FromMilliseconds(290), $"Join(300 ms) gave up after {clock.Elapsed}");
        Task<bool> join = Task.Run(() => queue.Join(Long));
        Task joinAsync = queue.JoinAsync();
        Assert.IsFalse(join.Wait(TimeSpan.FromMilliseconds(100)), "Join returned before the last TaskDone");
        Assert.IsFalse(joinAsync.IsCompleted, "JoinAsync completed before the last TaskDone");

        worker.WriteLine("done");
        Assert.IsTrue(await join.WaitAsync(Long), "Join must return once the child's last TaskDone landed");
        await joinAsync.WaitAsync(Long);
        worker.WaitForLine("DONE", Long);
        Assert.AreEqual(0, worker.WaitForExit(Long), worker.StandardError);
        Assert.AreEqual(0, queue.UnfinishedTasks);
        Assert.ThrowsExactly<InvalidOperationException>(queue.TaskDone);
    }

    [TestMethod]
    public void A_consumer_killed_before_its_TaskDone_leaves_the_message_unfinished_until_someone_marks_it_done()
    {
        using TempSegment<ShmQueue> fixture = NewQueue();
        ShmQueue queue = fixture.Object;
        queue.Enqueue([1]);
        using var children = new ChildProcesses();
        ChildProcess worker = children.StartReady("join-work", fixture.Name, "1");
        Assert.AreEqual("HELD 1", worker.WaitForLine("HELD", Long));
        worker.Kill9();
        worker.WaitForExit(Long);

        // As Python's JoinableQueue: the count is not tied to the consumer (an acknowledged queue is, for crash safety).
        Assert.IsFalse(queue.Join(TimeSpan.FromMilliseconds(200)));
        Assert.AreEqual(1, queue.UnfinishedTasks);
        Assert.AreEqual(0, queue.Count, "the message itself was dequeued");
        queue.TaskDone();
        Assert.IsTrue(queue.Join(TimeSpan.Zero));
    }
}
