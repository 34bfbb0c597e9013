using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using ShmIpc.Layout;
using ShmIpc.Tests.Common;

namespace ShmIpc.Tests;

/// <summary>Python 3.13's Queue.shutdown: refused enqueues, drain-then-throw, immediate discard, prompt wake-ups, in every process.</summary>
[TestClass]
public sealed class QueueShutdownTests
{
    private static readonly TimeSpan ChildStart = TimeSpan.FromSeconds(30);

    /// <summary>
    /// How soon a sleeper must notice a shutdown. The children sleep in 10 s slices, so only the shutdown's own
    /// wake-up can beat this; the bound is loose for a loaded 2-core machine (the point: it does not hang).
    /// </summary>
    private static readonly TimeSpan Prompt = TimeSpan.FromSeconds(2);

    private const string LongSliceMs = "10000";

    private static string S(int value) => value.ToString(CultureInfo.InvariantCulture);

    private static ShmQueue NewQueue(long capacity = 4096) =>
        ShmQueue.Create(TestNames.Unique("qshut"), new ShmQueueOptions { Capacity = capacity });

    private static void WaitUntil(Func<bool> condition, string what)
    {
        if (!SpinWait.SpinUntil(condition, ChildStart))
        {
            Assert.Fail($"Timed out waiting until {what}.");
        }
    }

    [TestMethod]
    public void After_shutdown_enqueues_are_refused_and_dequeues_drain_what_is_left_then_throw()
    {
        using ShmQueue queue = NewQueue();
        using ShmQueue other = ShmQueue.Open(queue.Name);
        queue.Enqueue([1]);
        queue.Enqueue([2]);
        queue.Enqueue([3]);
        Assert.IsFalse(other.IsShutDown);

        queue.Shutdown();

        Assert.IsTrue(queue.IsShutDown);
        Assert.IsTrue(other.IsShutDown, "the state is in shared memory: every handle sees it");
        var refused = Assert.ThrowsExactly<ShmQueueShutDownException>(() => other.Enqueue([9]));
        Assert.AreEqual(queue.Name, refused.QueueName);
        StringAssert.Contains(refused.Message, queue.Name);
        Assert.ThrowsExactly<ShmQueueShutDownException>(() => other.TryEnqueue([9]));
        Assert.ThrowsExactly<ShmQueueShutDownException>(() => other.TryEnqueue([9], TimeSpan.FromSeconds(1)));
        Assert.AreEqual(3, other.Count, "the refused messages were not written");

        CollectionAssert.AreEqual(new byte[] { 1 }, other.Dequeue());
        Assert.IsTrue(other.TryDequeue(out byte[]? second));
        CollectionAssert.AreEqual(new byte[] { 2 }, second);
        CollectionAssert.AreEqual(new byte[] { 3 }, queue.Dequeue(TimeSpan.FromSeconds(5)));

        // Drained: every form throws instead of waiting or answering "empty".
        var stopwatch = Stopwatch.StartNew();
        Assert.ThrowsExactly<ShmQueueShutDownException>(() => other.Dequeue());
        Assert.ThrowsExactly<ShmQueueShutDownException>(() => other.TryDequeue(out _));
        Assert.ThrowsExactly<ShmQueueShutDownException>(() => other.TryDequeue(out _, TimeSpan.FromSeconds(30)));
        Assert.ThrowsExactly<ShmQueueShutDownException>(() => other.Dequeue(new byte[16], TimeSpan.FromSeconds(30)));
        Assert.IsLessThan(TimeSpan.FromSeconds(5), stopwatch.Elapsed, "a drained queue throws at once, it does not wait");
        Assert.AreEqual(0, queue.Count);

        queue.Shutdown(); // again: harmless
        Assert.IsTrue(queue.IsShutDown);
    }

    [TestMethod]
    public void Immediate_shutdown_discards_what_is_queued()
    {
        using ShmQueue queue = NewQueue();
        using ShmQueue other = ShmQueue.Open(queue.Name);
        for (int i = 0; i < 5; i++)
        {
            queue.Enqueue([(byte)i]);
        }

        queue.Shutdown(); // draining first...
        CollectionAssert.AreEqual(new byte[] { 0 }, other.Dequeue());

        other.Shutdown(immediate: true); // ...then immediate: the four left are discarded

        Assert.AreEqual(0, queue.Count);
        Assert.IsTrue(queue.IsEmpty);
        Assert.ThrowsExactly<ShmQueueShutDownException>(() => queue.Dequeue());
        Assert.ThrowsExactly<ShmQueueShutDownException>(() => other.TryDequeue(out _));
        Assert.ThrowsExactly<ShmQueueShutDownException>(() => other.Enqueue([1]));
        queue.Shutdown(); // a later draining shutdown does not undo it
        Assert.ThrowsExactly<ShmQueueShutDownException>(() => queue.TryDequeue(out _));
    }

    [TestMethod]
    public void A_producer_blocked_on_a_full_queue_throws_at_shutdown()
    {
        using ShmQueue queue = NewQueue();
        byte[] message = new byte[200];
        while (queue.TryEnqueue(message))
        {
        }

        var producer = Task.Factory.StartNew(() => queue.Enqueue(message), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        WaitUntil(() => queue.SleepingProducers > 0 || producer.IsCompleted, "the producer sleeps on the full queue");
        Assert.IsFalse(producer.IsCompleted, "the queue is full: the producer must wait");

        queue.Shutdown();

        var thrown = Assert.ThrowsExactly<AggregateException>(() => producer.Wait(Prompt));
        Assert.IsInstanceOfType<ShmQueueShutDownException>(thrown.InnerException);
    }

    [TestMethod]
    public async Task Async_calls_fail_after_shutdown_and_ReadAllAsync_completes_after_the_drain()
    {
        using ShmQueue queue = NewQueue();
        ValueTask<byte[]> pending = queue.DequeueAsync();
        Assert.IsFalse(pending.IsCompleted);
        queue.Enqueue([7]);
        CollectionAssert.AreEqual(new byte[] { 7 }, await pending.AsTask().WaitAsync(ChildStart));

        // A dequeue waiting in the pump fails when the queue is shut down.
        Task<byte[]> waiting = queue.DequeueAsync().AsTask();
        Assert.IsFalse(waiting.IsCompleted);
        queue.Enqueue([8]);
        CollectionAssert.AreEqual(new byte[] { 8 }, await waiting.WaitAsync(ChildStart));
        Task<byte[]> second = queue.DequeueAsync().AsTask();
        Assert.IsFalse(second.IsCompleted);
        queue.Enqueue([10]);
        queue.Enqueue([11]);
        CollectionAssert.AreEqual(new byte[] { 10 }, await second.WaitAsync(ChildStart));

        queue.Shutdown();
        await Assert.ThrowsExactlyAsync<ShmQueueShutDownException>(async () => await queue.EnqueueAsync(new byte[] { 1 }));

        var drained = new List<byte>();
        await foreach (byte[] message in queue.ReadAllAsync().WithCancellation(CancellationToken.None))
        {
            drained.Add(message[0]);
        }

        CollectionAssert.AreEqual(new byte[] { 11 }, drained, "ReadAllAsync yields what is left, then ends");
        await Assert.ThrowsExactlyAsync<ShmQueueShutDownException>(async () => await queue.DequeueAsync());
    }

    [TestMethod]
    public async Task A_dequeue_and_an_enqueue_waiting_in_the_async_pump_fail_at_shutdown()
    {
        using ShmQueue empty = NewQueue();
        Task<byte[]> dequeue = empty.DequeueAsync().AsTask();
        using ShmQueue full = NewQueue();
        byte[] message = new byte[200];
        while (full.TryEnqueue(message))
        {
        }

        Task enqueue = full.EnqueueAsync(message).AsTask();
        Assert.IsFalse(dequeue.IsCompleted);
        Assert.IsFalse(enqueue.IsCompleted);

        empty.Shutdown();
        full.Shutdown();

        await Assert.ThrowsExactlyAsync<ShmQueueShutDownException>(() => dequeue.WaitAsync(Prompt));
        await Assert.ThrowsExactlyAsync<ShmQueueShutDownException>(() => enqueue.WaitAsync(Prompt));
        Assert.IsGreaterThan(0, full.Count, "a draining shutdown keeps what is queued");
    }

    [TestMethod]
    public async Task A_typed_queue_shuts_down_the_same_way()
    {
        using ShmQueue<string> queue = ShmQueue<string>.Create(TestNames.Unique("qshut-typed"));
        using ShmQueue<string> other = ShmQueue<string>.Open(queue.Name);
        queue.Enqueue("a");
        queue.Enqueue("b");
        queue.Enqueue("c");

        other.Shutdown();

        Assert.IsTrue(queue.IsShutDown);
        Assert.ThrowsExactly<ShmQueueShutDownException>(() => queue.Enqueue("d"));
        Assert.ThrowsExactly<ShmQueueShutDownException>(() => queue.TryEnqueue("d"));
        await Assert.ThrowsExactlyAsync<ShmQueueShutDownException>(async () => await queue.EnqueueAsync("d"));
        Assert.AreEqual("a", queue.Dequeue());
        Assert.IsTrue(queue.TryDequeue(out string? b));
        Assert.AreEqual("b", b);
        var rest = new List<string>();
        await foreach (string value in other.ReadAllAsync())
        {
            rest.Add(value);
        }

        CollectionAssert.AreEqual(new[] { "c" }, rest);
        Assert.ThrowsExactly<ShmQueueShutDownException>(() => queue.Dequeue(TimeSpan.FromSeconds(30)));
        Assert.ThrowsExactly<ShmQueueShutDownException>(() => queue.TryDequeue(out _));
    }

    [TestMethod]
    public void A_shutdown_word_out_of_range_is_refused_on_open()
    {
        using ShmQueue queue = NewQueue();
        using (var file = new FileStream($"/dev/shm/shmipc.{queue.Name}", FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite))
        {
            byte[] word = new byte[4];
            BinaryPrimitives.WriteInt32LittleEndian(word, 7);
            file.Position = SegmentHeaderDescriptor.HeaderSize + QueueDescriptor.ShutdownOffset;
            file.Write(word);
        }

        var refused = Assert.ThrowsExactly<ShmInvalidSegmentException>(() => ShmQueue.Open(queue.Name));
        Assert.AreEqual(ShmSegmentError.Corrupted, refused.Error);
        StringAssert.Contains(refused.Message, "shutdown");
    }

    // ---- In every process -----------------------------------------------------------------------------------

    [TestMethod]
    public void A_consumer_asleep_in_another_process_drains_then_stops_promptly_and_can_no_longer_enqueue()
    {
        using ShmQueue queue = NewQueue();
        queue.Enqueue([1]);
        queue.Enqueue([2]);
        queue.Enqueue([3]);
        using ChildProcess consumer = ChildProcess.Start("queue-drain-until-shutdown", queue.Name, LongSliceMs);
        Assert.AreEqual("READY", consumer.ReadLine(ChildStart));
        WaitUntil(() => queue.SleepingConsumers > 0, "the consumer has drained the three messages and sleeps");
        Assert.AreEqual(0, queue.Count);

        var stopwatch = Stopwatch.StartNew();
        queue.Shutdown();
        string line = consumer.ReadLine(Prompt);

        Assert.AreEqual("SHUTDOWN 3 REFUSED", line);
        Assert.IsLessThan(Prompt, stopwatch.Elapsed, $"the sleeper must be woken by the shutdown, not by the end of its 10 s slice ({stopwatch.Elapsed})");
        Assert.AreEqual(0, consumer.WaitForExit(ChildStart), consumer.StandardError);
    }

    [TestMethod]
    public void A_producer_blocked_in_another_process_throws_promptly_and_what_it_enqueued_is_drained()
    {
        using ShmQueue queue = NewQueue();
        using ChildProcess producer = ChildProcess.Start("queue-fill-until-shutdown", queue.Name, LongSliceMs, "100");
        Assert.AreEqual("READY", producer.ReadLine(ChildStart));
        WaitUntil(() => queue.SleepingProducers > 0, "the producer has filled the queue and sleeps");

        var stopwatch = Stopwatch.StartNew();
        queue.Shutdown();
        string line = producer.ReadLine(Prompt);

        Assert.IsLessThan(Prompt, stopwatch.Elapsed, $"the blocked producer must be woken by the shutdown ({stopwatch.Elapsed})");
        StringAssert.StartsWith(line, "SHUTDOWN ");
        int sent = int.Parse(line["SHUTDOWN ".Length..], CultureInfo.InvariantCulture);
        Assert.IsGreaterThan(0, sent);
        for (int i = 0; i < sent; i++)
        {
            byte[] message = queue.Dequeue(TimeSpan.FromSeconds(5));
            Assert.AreEqual(i, BinaryPrimitives.ReadInt32LittleEndian(message), "the drain delivers every message the producer enqueued, in order");
        }

        Assert.ThrowsExactly<ShmQueueShutDownException>(() => queue.Dequeue(), "the message the producer was blocked on was not written");
        Assert.AreEqual(0, producer.WaitForExit(ChildStart), producer.StandardError);
    }

    [TestMethod]
    public void A_process_that_opens_a_queue_shut_down_immediately_gets_nothing_of_what_was_queued()
    {
        using ShmQueue queue = NewQueue();
        queue.Enqueue([1]);
        queue.Enqueue([2]);
        queue.Shutdown(immediate: true);

        using ChildProcess consumer = ChildProcess.Start("queue-drain-until-shutdown", queue.Name, LongSliceMs);
        Assert.AreEqual("READY", consumer.ReadLine(ChildStart));

        Assert.AreEqual("SHUTDOWN 0 REFUSED", consumer.ReadLine(ChildStart));
        Assert.AreEqual(0, consumer.WaitForExit(ChildStart), consumer.StandardError);
    }

    [TestMethod]
    public void Concurrent_producers_and_a_shutdown_lose_nothing_accepted_and_deliver_nothing_refused()
    {
        // Every enqueue that returned is delivered by the drain; every one that threw is not. Two threads race the
        // shutdown, so some enqueues are claimed at the moment the word is set (the abandon path of MpmcRing).
        using ShmQueue queue = NewQueue(capacity: 1 << 16);
        var accepted = new int[2];
        var producers = new Task[2];
        using var start = new ManualResetEventSlim();
        for (int p = 0; p < 2; p++)
        {
            int id = p;
            producers[p] = Task.Factory.StartNew(() =>
            {
                byte[] message = new byte[8];
                start.Wait();
                try
                {
                    for (int i = 0; ; i++)
                    {
                        BinaryPrimitives.WriteInt32LittleEndian(message, id);
                        BinaryPrimitives.WriteInt32LittleEndian(message.AsSpan(4), i);
                        queue.Enqueue(message);
                        accepted[id] = i + 1;
                    }
                }
                catch (ShmQueueShutDownException)
                {
                }
            }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        }

        var next = new int[2];
        start.Set();
        int received = 0;
        try
        {
            while (true)
            {
                byte[] message = queue.Dequeue(TimeSpan.FromSeconds(10));
                int id = BinaryPrimitives.ReadInt32LittleEndian(message);
                Assert.AreEqual(next[id]++, BinaryPrimitives.ReadInt32LittleEndian(message.AsSpan(4)), "in order, none lost");
                if (++received == 5_000)
                {
                    queue.Shutdown();
                }
            }
        }
        catch (ShmQueueShutDownException)
        {
        }

        Assert.IsTrue(Task.WaitAll(producers, ChildStart));
        CollectionAssert.AreEqual(accepted, next, "exactly the accepted messages were delivered");
    }
}
