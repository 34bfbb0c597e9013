using System.Diagnostics;
using ShmIpc.Tests.Common;

namespace ShmIpc.Tests;

/// <summary>ShmWait over queues and pipe ends: readiness without consuming, timeouts, wake-ups, the argument rules.</summary>
[TestClass]
public sealed class ShmWaitTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(20);

    private static ShmQueue NewQueue() => ShmQueue.Create(TestNames.Unique("wq"), new ShmQueueOptions { Capacity = 4096 });

    private static (ShmConnection Mine, ShmConnection Theirs) NewPipe()
    {
        string name = TestNames.Unique("wp");
        ShmConnection mine = ShmPipe.Create(name);
        return (mine, ShmPipe.Connect(name));
    }

    [TestMethod]
    public void Nothing_ready_returns_minus_one_after_the_timeout_and_a_zero_timeout_looks_once()
    {
        using ShmQueue queue = NewQueue();
        (ShmConnection mine, ShmConnection theirs) = NewPipe();
        using (mine)
        using (theirs)
        {
            IShmWaitable[] items = [queue, mine];
            var stopwatch = Stopwatch.StartNew();
            Assert.AreEqual(-1, ShmWait.WaitAny(items, TimeSpan.FromMilliseconds(150)));
            Assert.IsGreaterThanOrEqualTo(TimeSpan.FromMilliseconds(140), stopwatch.Elapsed);
            Assert.AreEqual(-1, ShmWait.WaitAny(items, TimeSpan.Zero));
            Assert.IsEmpty(ShmWait.WaitReady(items, TimeSpan.FromMilliseconds(20)));
        }
    }

    [TestMethod]
    public void A_ready_queue_and_a_ready_pipe_end_are_reported_by_index_and_nothing_is_consumed()
    {
        using ShmQueue queue = NewQueue();
        using ShmQueue<string> typed = ShmQueue<string>.Create(TestNames.Unique("wq-typed"));
        (ShmConnection mine, ShmConnection theirs) = NewPipe();
        using (mine)
        using (theirs)
        {
            IShmWaitable[] items = [queue, typed, mine];
            theirs.Send([5]);
            Assert.AreEqual(2, ShmWait.WaitAny(items, Deadline));
            Assert.AreEqual(2, ShmWait.WaitAny(items, Deadline), "looking again finds it again: it was not consumed");
            typed.Enqueue("hi");
            Assert.AreEqual(1, ShmWait.WaitAny(items, Deadline), "the lowest ready index wins");
            queue.Enqueue([1]);
            Assert.AreEqual(0, ShmWait.WaitAny(items, TimeSpan.Zero));
            CollectionAssert.AreEqual(items, ShmWait.WaitReady(items, Deadline).ToArray(), "Python's wait: every ready object, in order");

            Assert.AreEqual(1, queue.Count);
            CollectionAssert.AreEqual(new byte[] { 1 }, queue.Dequeue());
            Assert.AreEqual("hi", typed.Dequeue());
            CollectionAssert.AreEqual(new byte[] { 5 }, mine.Receive());
            Assert.AreEqual(-1, ShmWait.WaitAny(items, TimeSpan.Zero));
        }
    }

    [TestMethod]
    public void A_wait_in_progress_wakes_when_another_thread_makes_an_item_ready()
    {
        using ShmQueue first = NewQueue();
        using ShmQueue second = NewQueue();
        using var ready = new ManualResetEventSlim();
        var waiter = Task.Factory.StartNew(() =>
        {
            ready.Set();
            var stopwatch = Stopwatch.StartNew();
            int index = ShmWait.WaitAny([first, second], Deadline);
            return (index, stopwatch.Elapsed);
        }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        Assert.IsTrue(ready.Wait(Deadline));
        Assert.IsFalse(waiter.Wait(TimeSpan.FromMilliseconds(50)), "nothing is ready yet");

        second.Enqueue([1]);

        Assert.IsTrue(waiter.Wait(Deadline));
        Assert.AreEqual(1, waiter.Result.index);
        Assert.IsLessThan(Deadline, waiter.Result.Elapsed);
    }

    [TestMethod]
    public void A_shut_down_queue_and_a_pipe_end_whose_peer_closed_are_ready()
    {
        using ShmQueue queue = NewQueue();
        (ShmConnection mine, ShmConnection theirs) = NewPipe();
        using (mine)
        {
            IShmWaitable[] items = [queue, mine];
            queue.Enqueue([1]);
            queue.Shutdown();
            Assert.AreEqual(0, ShmWait.WaitAny(items, Deadline), "shut down with a message left: a dequeue returns it");
            queue.Dequeue();
            Assert.AreEqual(0, ShmWait.WaitAny(items, Deadline), "shut down and drained: a dequeue throws at once, it does not wait");

            using ShmQueue open = NewQueue();
            theirs.Dispose();
            Assert.AreEqual(1, ShmWait.WaitAny([open, mine], Deadline), "the peer closed its end: a receive throws at once");
            Assert.ThrowsExactly<ShmPeerClosedException>(() => mine.Receive());
        }
    }

    [TestMethod]
    public void Cancellation_ends_the_wait()
    {
        using ShmQueue queue = NewQueue();
        using var cancellation = new CancellationTokenSource();
        var waiter = Task.Factory.StartNew(() => ShmWait.WaitAny([queue], cancellation.Token), CancellationToken.None,
            TaskCreationOptions.LongRunning, TaskScheduler.Default);
        Assert.IsFalse(waiter.Wait(TimeSpan.FromMilliseconds(50)));

        cancellation.Cancel();

        var thrown = Assert.ThrowsExactly<AggregateException>(() => waiter.Wait(Deadline));
        Assert.IsInstanceOfType<OperationCanceledException>(thrown.InnerException);
        Assert.ThrowsExactly<OperationCanceledException>(() => ShmWait.WaitReady([queue], Deadline, cancellation.Token));
    }

    [TestMethod]
    public void Bad_lists_and_disposed_items_are_refused()
    {
        using ShmQueue queue = NewQueue();
        Assert.ThrowsExactly<ArgumentException>(() => ShmWait.WaitAny([], TimeSpan.Zero));
        Assert.ThrowsExactly<ArgumentException>(() => ShmWait.WaitAny([queue, queue], TimeSpan.Zero));
        Assert.ThrowsExactly<ArgumentException>(() => ShmWait.WaitAny([queue, null!], TimeSpan.Zero));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ShmWait.WaitAny([queue], TimeSpan.FromSeconds(-2)));

        string name = TestNames.Unique("wp-oneway");
        using ShmConnection receiver = ShmPipe.Create(name, new ShmPipeOptions { Duplex = false });
        using ShmConnection sender = ShmPipe.Connect(name);
        Assert.ThrowsExactly<ArgumentException>(() => ShmWait.WaitAny([queue, sender], TimeSpan.Zero), "an end that only sends has nothing to wait for");
        Assert.AreEqual(-1, ShmWait.WaitAny([queue, receiver], TimeSpan.Zero), "the guards taken for the refused wait were given back");

        ShmQueue disposed = NewQueue();
        disposed.Dispose();
        Assert.ThrowsExactly<ObjectDisposedException>(() => ShmWait.WaitAny([queue, disposed], TimeSpan.Zero));
    }

    [TestMethod]
    public void Disposing_an_item_during_a_wait_ends_it_with_ObjectDisposedException()
    {
        ShmQueue queue = NewQueue();
        using ShmQueue other = NewQueue();
        var waiter = Task.Factory.StartNew(() => ShmWait.WaitAny([other, queue], Deadline), CancellationToken.None,
            TaskCreationOptions.LongRunning, TaskScheduler.Default);
        Assert.IsFalse(waiter.Wait(TimeSpan.FromMilliseconds(50)));

        queue.Dispose();

        var thrown = Assert.ThrowsExactly<AggregateException>(() => waiter.Wait(Deadline));
        Assert.IsInstanceOfType<ObjectDisposedException>(thrown.InnerException);
    }
}
