using System.Diagnostics;
using System.Runtime.InteropServices;
using ShmIpc.Endpoints;
using ShmIpc.Layout;
using ShmIpc.Tests.Common;

namespace ShmIpc.Tests;

/// <summary>
/// The per-message path of the queue after issue 16's diet: the call guard without interlocked instructions (a thread's
/// slot, seen by Dispose through a process-wide barrier), the deadline computed only when a dequeue has to wait, and the
/// reclaim's vectorized stamps.
/// </summary>
[TestClass]
public sealed class QueueCallPathTests
{
    [TestMethod]
    [DataRow(0L, 32L)]
    [DataRow(0L, 96L)]
    [DataRow(4096L, 65568L)]
    [DataRow(-131072L, 131072L, DisplayName = "the whole ring for lap 0, as Initialize stamps it")]
    [DataRow(131072L + 4064L, 32L * 17)]
    [DataRow((1L << 40) + 96L, 32L * 5)]
    public unsafe void StampFree_writes_the_words_a_unit_by_unit_stamp_writes(long position, long size)
    {
        const long Capacity = 128 << 10;
        byte* data = (byte*)NativeMemory.AlignedAlloc((nuint)Capacity, 64);
        try
        {
            new Span<byte>(data, (int)Capacity).Fill(0xA5);
            QueueDescriptor.StampFree(data, Capacity - 1, Capacity, position, size);
            for (long x = position; x < position + size; x += QueueDescriptor.RecordAlignment)
            {
                byte* unit = data + (x & (Capacity - 1));
                long next = x + Capacity;
                Assert.AreEqual(QueueDescriptor.FreeStamp(next), *(ulong*)(unit + QueueDescriptor.ClaimOffset), $"Claim at {x}");
                Assert.AreEqual(QueueDescriptor.StateWord(next, QueueDescriptor.StateWriting), *(ulong*)(unit + QueueDescriptor.StateOffset), $"State at {x}");
                Assert.AreEqual(QueueDescriptor.FreeStamp(next), *(ulong*)(unit + QueueDescriptor.ReaderOffset), $"Reader at {x}");
                Assert.AreEqual(0UL, *(ulong*)(unit + QueueDescriptor.ProducerIdentityOffset), $"ProducerIdentity at {x}");
            }

            // Nothing outside the range was touched.
            long begin = position & (Capacity - 1);
            long end = begin + size;
            for (long offset = 0; offset < Capacity; offset++)
            {
                if (size < Capacity && (offset < begin || offset >= end))
                {
                    Assert.AreEqual((byte)0xA5, data[offset], $"byte {offset} outside the stamped range");
                }
            }
        }
        finally
        {
            NativeMemory.AlignedFree(data);
        }
    }

    [TestMethod]
    public void Dispose_waits_for_calls_on_other_threads_and_each_ends_with_ObjectDisposedException()
    {
        // Threads enqueue and dequeue without pause (every call through its thread's slot, no interlocked count) while
        // another thread disposes: each must leave with ObjectDisposedException, none may touch the unmapped memory (it
        // would crash the test process), and the queue's segment must be gone (Dispose did unmap and unlink).
        string name = TestNames.Unique("q-diet-dispose");
        ShmQueue queue = ShmQueue.Create(name, new ShmQueueOptions { Capacity = 64 << 10, MaxMessageLength = 64 });
        long operations = 0;
        var workers = new Task[4];
        for (int w = 0; w < workers.Length; w++)
        {
            bool producer = w % 2 == 0;
            workers[w] = Task.Factory.StartNew(() =>
            {
                byte[] message = new byte[64];
                byte[] buffer = new byte[64];
                while (true)
                {
                    if (producer)
                    {
                        queue.TryEnqueue(message);
                    }
                    else
                    {
                        queue.TryDequeue(buffer, out _, TimeSpan.FromMilliseconds(1));
                    }

                    Interlocked.Increment(ref operations);
                }
            }, TaskCreationOptions.LongRunning);
        }

        var deadline = Stopwatch.StartNew();
        while (Interlocked.Read(ref operations) < 20_000 && deadline.Elapsed < TimeSpan.FromSeconds(60))
        {
            Thread.Yield();
        }

        Assert.IsTrue(Interlocked.Read(ref operations) >= 20_000, "the workers ran");
        queue.Dispose();
        foreach (Task worker in workers)
        {
            var e = Assert.ThrowsExactly<AggregateException>(() => worker.Wait(TimeSpan.FromSeconds(60)));
            Assert.IsInstanceOfType<ObjectDisposedException>(e.InnerException);
        }

        Assert.IsFalse(File.Exists("/dev/shm/shmipc." + name), "Dispose unlinked the segment (it did not give up waiting for calls)");
    }

    [TestMethod]
    public void An_enqueue_through_the_cached_call_slot_wakes_a_consumer_asleep_in_Dequeue()
    {
        // Enqueue on the thread whose slot the queue object caches (EnterCall: no thread-local read) looks for sleepers with
        // the same fence as any other and wakes one. The consumer sleeps in 10 s slices on its own object, so only that wake
        // can bring the message to it within the 5 s the test waits.
        string name = TestNames.Unique("q-cached-wake");
        using ShmQueue queue = ShmQueue.Create(name, new ShmQueueOptions { Capacity = 64 << 10, MaxMessageLength = 64 });
        using ShmQueue sleeper = ShmQueue.Open(name, new ShmQueueOptions { WaitStrategy = ShmWaitStrategy.Default with { SleepSlice = TimeSpan.FromSeconds(10) } });
        Assert.IsTrue(queue.TryEnqueue([1])); // this thread enters the producer's object: its slot becomes the write cache
        Assert.IsTrue(queue.TryDequeue(out _)); // (and takes its message back)
        var consumer = Task.Factory.StartNew(() => sleeper.Dequeue(TimeSpan.FromSeconds(60)), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        Assert.IsTrue(SpinWait.SpinUntil(() => queue.SleepingConsumers > 0 || consumer.IsCompleted, TimeSpan.FromSeconds(30)), "the consumer sleeps");
        Assert.IsFalse(consumer.IsCompleted, "the queue is empty: the consumer must wait");
        ThreadCallSlot mine = ThreadCallSlot.ForCurrentThread;
        if (mine.KnowsOwner)
        {
            Assert.AreSame(mine, queue.RecentWriteSlot, "this thread entered the producer's object first: Enqueue enters through the cache");
        }

        queue.Enqueue([42]);
        Assert.IsTrue(consumer.Wait(TimeSpan.FromSeconds(5)), "the enqueue woke the sleeping consumer (its slice is 10 s)");
        CollectionAssert.AreEqual(new byte[] { 42 }, consumer.Result);
        if (!mine.KnowsOwner)
        {
            Assert.Inconclusive("The consumer was woken, but through the thread-static path: ThreadStack describes threads on Linux only.");
        }
    }

    [TestMethod]
    public void An_enqueue_with_a_cancelled_token_throws_and_writes_nothing_even_when_there_is_room()
    {
        // The token is looked at before anything else: no path may write first and throw after.
        using ShmQueue queue = ShmQueue.Create(TestNames.Unique("q-cancel"), new ShmQueueOptions { Capacity = 4096 });
        queue.Enqueue([1]);
        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();
        Assert.ThrowsExactly<OperationCanceledException>(() => queue.Enqueue([2], cancelled.Token));
        CollectionAssert.AreEqual(new byte[] { 1 }, queue.Dequeue(TimeSpan.FromSeconds(10)));
        Assert.IsFalse(queue.TryDequeue(out _), "the cancelled message was not written");
    }

    [TestMethod]
    public void A_call_nested_in_a_reader_callback_uses_the_queue_and_Dispose_after_it_does_not_wait()
    {
        // The reader callback runs inside the dequeue's guard; a queue call made from it finds the thread's slot taken
        // and counts itself instead. Both must be released: Dispose afterwards returns at once (it would wait 10 s and
        // leave the mapping in place if a guard were left behind, and the segment would still exist).
        string name = TestNames.Unique("q-diet-nested");
        ShmQueue queue = ShmQueue.Create(name, new ShmQueueOptions { Capacity = 4096 });
        using ShmQueue other = ShmQueue.Create(TestNames.Unique("q-diet-other"), new ShmQueueOptions { Capacity = 4096 });
        queue.Enqueue([1, 2, 3]);
        Assert.IsTrue(queue.TryDequeue((message, q) =>
        {
            q.Enqueue(message); // the same queue, nested
            other.Enqueue(message); // another queue, nested
            return message.Length;
        }, queue, TimeSpan.FromSeconds(10), out int length));
        Assert.AreEqual(3, length);
        CollectionAssert.AreEqual(new byte[] { 1, 2, 3 }, queue.Dequeue(TimeSpan.FromSeconds(10)));
        CollectionAssert.AreEqual(new byte[] { 1, 2, 3 }, other.Dequeue(TimeSpan.FromSeconds(10)));

        var disposing = Stopwatch.StartNew();
        queue.Dispose();
        Assert.IsTrue(disposing.Elapsed < TimeSpan.FromSeconds(8), $"Dispose took {disposing.Elapsed}: a call guard was left behind");
        Assert.IsFalse(File.Exists("/dev/shm/shmipc." + name));
        Assert.ThrowsExactly<ObjectDisposedException>(() => queue.TryEnqueue([1]));
    }

    [TestMethod]
    public void A_dequeue_with_a_timeout_checks_the_timeout_even_when_a_message_is_there_and_waits_at_least_the_timeout_when_none_is()
    {
        using ShmQueue queue = ShmQueue.Create(TestNames.Unique("q-diet-timeout"), new ShmQueueOptions { Capacity = 4096 });
        queue.Enqueue([7]);
        byte[] buffer = new byte[16];
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => queue.TryDequeue(buffer, out _, TimeSpan.FromMilliseconds(-2)));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => queue.TryDequeue(out byte[]? _, TimeSpan.FromMilliseconds(-2)));
        Assert.IsTrue(queue.TryDequeue(buffer, out int written, TimeSpan.FromMilliseconds(1)), "the message was left by the refused calls");
        Assert.AreEqual(1, written);

        var waited = Stopwatch.StartNew();
        Assert.IsFalse(queue.TryDequeue(buffer, out written, TimeSpan.FromMilliseconds(200)));
        Assert.IsTrue(waited.Elapsed >= TimeSpan.FromMilliseconds(190), $"waited {waited.Elapsed}, at least the timeout expected");
        Assert.AreEqual(0, written);
        Assert.ThrowsExactly<TimeoutException>(() => queue.Dequeue(buffer, TimeSpan.FromMilliseconds(20)));
    }
}
