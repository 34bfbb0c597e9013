using ShmIpc.Layout;
using System.Buffers;
using System.Diagnostics;
using ShmIpc.Tests.Common;

namespace ShmIpc.Tests;

[TestClass]
public sealed class QueueTests
{
    private static ShmQueue NewQueue(long capacity = 4096, int? maxLength = null) =>
        ShmQueue.Create(TestNames.Unique("q"), new ShmQueueOptions { Capacity = capacity, MaxMessageLength = maxLength });

    private static byte[] Message(int length, int seed)
    {
        byte[] bytes = new byte[length];
        for (int i = 0; i < length; i++)
        {
            bytes[i] = (byte)(seed * 31 + i);
        }

        return bytes;
    }

    [TestMethod]
    [DataRow(0, DisplayName = "killed after stamping the later units of a record")]
    [DataRow(1, DisplayName = "killed after stamping a whole record")]
    [DataRow(2, DisplayName = "killed after three whole records and the first Claim of a fourth")]
    public unsafe void A_reclaimer_killed_half_way_leaves_a_queue_the_next_reclaimer_finishes(int stoppedAt)
    {
        // What a reclaimer SIGKILLed in the middle of its stamps leaves behind (it holds the lock, Head has not
        // moved): the next producer that needs room breaks the dead holder's lock and must finish the job from Head.
        // (Stamping a record first unit first, a killed reclaimer left it without its size and the queue threw
        // "invalid claim word behind the read position" on every reclaim after.)
        string name = TestNames.Unique("q-reclaim");
        const long Capacity = 16 << 10;
        using ShmQueue queue = ShmQueue.Create(name, new ShmQueueOptions { Capacity = Capacity });
        byte[] message = new byte[100];
        for (int i = 0; i < 20; i++)
        {
            queue.Enqueue(Message(100, i));
        }

        for (int i = 0; i < 10; i++)
        {
            Assert.IsTrue(queue.TryDequeue(out byte[]? _));
        }

        using var file = System.IO.MemoryMappedFiles.MemoryMappedFile.CreateFromFile("/dev/shm/shmipc." + name, FileMode.Open, null, 0, System.IO.MemoryMappedFiles.MemoryMappedFileAccess.ReadWrite);
        using var view = file.CreateViewAccessor();
        byte* segment = null;
        view.SafeMemoryMappedViewHandle.AcquirePointer(ref segment);
        try
        {
            segment += view.PointerOffset;
            byte* control = segment + SegmentHeaderDescriptor.HeaderSize;
            byte* data = control + *(long*)(segment + SegmentHeaderDescriptor.ControlSizeOffset);
            long head = *(long*)(control + QueueDescriptor.HeadOffset);
            long size = QueueDescriptor.RecordSize(100);
            Assert.IsTrue(size > QueueDescriptor.RecordAlignment, "a record of several units");
            ulong dead = new ShmIpc.Memory.ProcessIdentity(4_000_000, 12345).ToWord(); // a pid above pid_max: never alive
            *(ulong*)(control + QueueDescriptor.ReclaimLockOffset) = dead;
            switch (stoppedAt)
            {
                case 0:
                    QueueDescriptor.StampFree(data, Capacity - 1, Capacity, head + QueueDescriptor.RecordAlignment, size - QueueDescriptor.RecordAlignment);
                    break;
                case 1:
                    QueueDescriptor.StampFree(data, Capacity - 1, Capacity, head, size);
                    break;
                default:
                    QueueDescriptor.StampFree(data, Capacity - 1, Capacity, head, 3 * size);
                    QueueDescriptor.StampFree(data, Capacity - 1, Capacity, head + (4 * size) - QueueDescriptor.RecordAlignment, QueueDescriptor.RecordAlignment);
                    QueueDescriptor.StampFree(data, Capacity - 1, Capacity, head + (3 * size) + QueueDescriptor.RecordAlignment, size - (2 * QueueDescriptor.RecordAlignment));
                    *(ulong*)(data + ((head + (3 * size)) & (Capacity - 1))) = QueueDescriptor.FreeStamp(head + (3 * size) + Capacity);
                    break;
            }

            // The queue flows on, in order, through many laps of the ring.
            int next = 10;
            for (int i = 20; i < 1000; i++)
            {
                Assert.IsTrue(queue.TryEnqueue(Message(100, i), TimeSpan.FromSeconds(5)), $"enqueue {i}: {queue.Ring.DescribeState()}");
                Assert.IsTrue(queue.TryDequeue(out byte[]? got, TimeSpan.FromSeconds(5)));
                CollectionAssert.AreEqual(Message(100, next++), got);
            }

            Assert.IsTrue(*(long*)(control + QueueDescriptor.HeadOffset) > head, "Head moved on");
            Assert.AreNotEqual(dead, *(ulong*)(control + QueueDescriptor.ReclaimLockOffset), "the dead holder's lock was broken");
        }
        finally
        {
            view.SafeMemoryMappedViewHandle.ReleasePointer();
        }
    }

    [TestMethod]
    public void Messages_come_out_whole_and_in_order_across_many_wraps_with_odd_sizes()
    {
        using ShmQueue queue = NewQueue();
        var rng = new Random(7);
        int next = 0;
        int expected = 0;
        for (int round = 0; round < 2000; round++)
        {
            int burst = rng.Next(1, 8);
            for (int i = 0; i < burst; i++)
            {
                if (!queue.TryEnqueue(Message(rng.Next(0, 300), next)))
                {
                    break;
                }

                next++;
            }

            int take = rng.Next(1, 8);
            for (int i = 0; i < take && queue.TryDequeue(out byte[]? got); i++)
            {
                CollectionAssert.AreEqual(Message(got.Length, expected), got, $"message {expected}");
                expected++;
            }
        }

        while (queue.TryDequeue(out byte[]? got))
        {
            CollectionAssert.AreEqual(Message(got.Length, expected), got);
            expected++;
        }

        Assert.AreEqual(expected, next);
        Assert.IsTrue(next > 1000, "the test should push enough to wrap many times");
        Assert.AreEqual(0, queue.Count);
    }

    [TestMethod]
    public void Full_and_empty_boundaries()
    {
        using ShmQueue queue = NewQueue(4096, 64);
        Assert.IsTrue(queue.IsEmpty);
        Assert.IsFalse(queue.TryDequeue(out _));

        // 64-byte messages take 96 bytes: 4096 / 96 = 42 fit.
        int accepted = 0;
        while (queue.TryEnqueue(Message(64, accepted)))
        {
            accepted++;
        }

        Assert.AreEqual(42, accepted);
        Assert.AreEqual(42, queue.Count);
        Assert.IsTrue(queue.TryDequeue(out byte[]? first));
        CollectionAssert.AreEqual(Message(64, 0), first);
        Assert.IsTrue(queue.TryEnqueue(Message(64, 42)), "space freed by one dequeue is reused");
        Assert.IsFalse(queue.TryEnqueue(Message(64, 43)));
        for (int i = 1; i <= 42; i++)
        {
            Assert.IsTrue(queue.TryDequeue(out byte[]? got));
            CollectionAssert.AreEqual(Message(64, i), got);
        }

        Assert.IsFalse(queue.TryDequeue(out _));
    }

    [TestMethod]
    public void Zero_length_and_maximum_length_messages()
    {
        using ShmQueue queue = NewQueue(8192);
        int max = queue.MaxMessageLength;
        Assert.IsTrue(queue.TryEnqueue(ReadOnlySpan<byte>.Empty));
        Assert.IsTrue(queue.TryEnqueue(Message(max, 1)));
        Assert.IsTrue(queue.TryDequeue(out byte[]? empty));
        Assert.AreEqual(0, empty.Length);
        Assert.IsTrue(queue.TryDequeue(out byte[]? big));
        CollectionAssert.AreEqual(Message(max, 1), big);
    }

    [TestMethod]
    public void An_oversized_message_is_refused_and_nothing_is_written()
    {
        // Longer than MaxMessageLength goes through a side segment (LargeMessageTests); longer than MaxLargeMessageLength is refused.
        using ShmQueue queue = ShmQueue.Create(TestNames.Unique("q"), new ShmQueueOptions { Capacity = 4096, MaxMessageLength = 100, MaxLargeMessageLength = 150 });
        var e = Assert.ThrowsExactly<ArgumentException>(() => queue.TryEnqueue(new byte[151]));
        StringAssert.Contains(e.Message, "151 bytes");
        StringAssert.Contains(e.Message, queue.Name);
        Assert.AreEqual(0, queue.Count);
        Assert.IsFalse(queue.TryDequeue(out _));
    }

    [TestMethod]
    public void Dequeue_into_a_span_a_buffer_writer_and_in_place()
    {
        using ShmQueue queue = NewQueue();
        queue.Enqueue(Message(10, 1));
        queue.Enqueue(Message(20, 2));
        queue.Enqueue(Message(30, 3));
        queue.Enqueue(Message(40, 4));

        var tooSmall = Assert.ThrowsExactly<ArgumentException>(() => queue.TryDequeue(new byte[5], out _));
        StringAssert.Contains(tooSmall.Message, "left in the queue");

        byte[] buffer = new byte[64];
        Assert.IsTrue(queue.TryDequeue(buffer, out int written));
        CollectionAssert.AreEqual(Message(10, 1), buffer[..written]);

        var writer = new ArrayBufferWriter<byte>();
        Assert.IsTrue(queue.TryDequeue(writer));
        CollectionAssert.AreEqual(Message(20, 2), writer.WrittenSpan.ToArray());

        Assert.IsTrue(queue.TryDequeue(static (span, seed) => span.Length * 1000 + span[0] + seed, 5, out int folded));
        Assert.AreEqual(30 * 1000 + Message(30, 3)[0] + 5, folded);

        Assert.AreEqual(40, queue.Dequeue(buffer, TimeSpan.FromSeconds(1)));
        Assert.IsFalse(queue.TryDequeue(buffer, out int none, TimeSpan.FromMilliseconds(10)), "empty: false on timeout, as every TryX");
        Assert.AreEqual(0, none);
    }

    [TestMethod]
    public void Timed_waits_end_at_their_deadline()
    {
        using ShmQueue queue = NewQueue(4096, 1000);
        var clock = Stopwatch.StartNew();
        Assert.IsFalse(queue.TryDequeue(out _, TimeSpan.FromMilliseconds(120)));
        Assert.IsTrue(clock.Elapsed >= TimeSpan.FromMilliseconds(119) && clock.Elapsed < TimeSpan.FromSeconds(5), clock.Elapsed.ToString());
        Assert.ThrowsExactly<TimeoutException>(() => queue.Dequeue(TimeSpan.FromMilliseconds(20)));

        while (queue.TryEnqueue(new byte[1000]))
        {
        }

        clock.Restart();
        Assert.IsFalse(queue.TryEnqueue(new byte[1000], TimeSpan.FromMilliseconds(120)));
        Assert.IsTrue(clock.Elapsed >= TimeSpan.FromMilliseconds(119) && clock.Elapsed < TimeSpan.FromSeconds(5), clock.Elapsed.ToString());
        Assert.ThrowsExactly<TimeoutException>(() => queue.Enqueue(new byte[1000], TimeSpan.FromMilliseconds(20)));
    }

    [TestMethod]
    public void Cancellation_ends_a_blocked_dequeue_and_enqueue()
    {
        using ShmQueue queue = NewQueue(4096, 1000);
        using (var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(50)))
        {
            Assert.ThrowsExactly<OperationCanceledException>(() => queue.Dequeue(cts.Token));
        }

        while (queue.TryEnqueue(new byte[1000]))
        {
        }

        using (var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(50)))
        {
            Assert.ThrowsExactly<OperationCanceledException>(() => queue.Enqueue(new byte[1000], cts.Token));
        }
    }

    [TestMethod]
    public void A_blocked_dequeue_wakes_when_another_thread_enqueues()
    {
        using ShmQueue queue = NewQueue();
        using var started = new ManualResetEventSlim();
        Task<byte[]> reader = Task.Run(() =>
        {
            started.Set();
            return queue.Dequeue(TimeSpan.FromSeconds(30));
        });
        started.Wait();
        queue.Enqueue(Message(12, 9));
        Assert.IsTrue(reader.Wait(TimeSpan.FromSeconds(30)));
        CollectionAssert.AreEqual(Message(12, 9), reader.Result);
    }

    [TestMethod]
    public void A_sleeping_consumer_wakes_when_the_next_message_follows_a_wrap_padding_record()
    {
        // 3 x 1056-byte records leave 928 bytes before the wrap: the 4th message needs a padding record
        // first, and the sleeping consumer's read position then sits on that padding.
        using ShmQueue queue = NewQueue(4096, 1000);
        for (int i = 0; i < 3; i++)
        {
            queue.Enqueue(Message(1000, i));
            Assert.IsTrue(queue.TryDequeue(out _));
        }

        Task<byte[]> consumer = Task.Run(() => queue.Dequeue(TimeSpan.FromSeconds(20)));
        long deadline = Stopwatch.GetTimestamp() + (20 * Stopwatch.Frequency);
        while (queue.SleepingConsumers == 0 && Stopwatch.GetTimestamp() < deadline)
        {
            Thread.Yield();
        }

        Assert.AreEqual(1, queue.SleepingConsumers, "the consumer should be asleep before the message comes");
        var clock = Stopwatch.StartNew();
        queue.Enqueue(Message(1000, 3));
        Assert.IsTrue(consumer.Wait(TimeSpan.FromSeconds(20)));

        // Woken by the post, not rescued by its own deadline (20 s) at the end.
        Assert.IsTrue(clock.Elapsed < TimeSpan.FromSeconds(10), $"the consumer slept through the message: {clock.Elapsed}");
        CollectionAssert.AreEqual(Message(1000, 3), consumer.Result);
    }

    [TestMethod]
    public void The_semaphore_count_stays_bounded_however_many_messages_pass()
    {
        // A consumer that never spins sleeps before nearly every message: the worst case for posts.
        using ShmQueue queue = NewQueue(1 << 16);
        using ShmQueue sleepy = ShmQueue.Open(queue.Name, new ShmQueueOptions { WaitStrategy = ShmWaitStrategy.NoSpin });
        const int Messages = 20_000;
        int maxCount = 0;
        Task consumer = Task.Run(() =>
        {
            for (int i = 0; i < Messages; i++)
            {
                Assert.AreEqual(i, BitConverter.ToInt32(sleepy.Dequeue(TimeSpan.FromSeconds(30))));
            }
        });
        for (int i = 0; i < Messages; i++)
        {
            queue.Enqueue(BitConverter.GetBytes(i));
            if (i % 64 == 0)
            {
                maxCount = Math.Max(maxCount, queue.DataSemaphoreCount);
            }
        }

        Assert.IsTrue(consumer.Wait(TimeSpan.FromSeconds(60)));
        maxCount = Math.Max(maxCount, queue.DataSemaphoreCount);

        // One post per sleeping registration at most: the count never piles up with the traffic.
        Assert.IsTrue(maxCount <= 2, $"semaphore count reached {maxCount}");
    }

    [TestMethod]
    public void A_padding_record_whose_producer_died_before_advancing_the_tail_is_skipped_without_passing_the_tail()
    {
        // 64-byte messages take 96 bytes: after 42 of them the tail sits 64 bytes before the wrap.
        using ShmQueue queue = NewQueue(4096, 64);
        for (int i = 0; i < 42; i++)
        {
            queue.Enqueue(Message(64, i));
            Assert.IsTrue(queue.TryDequeue(out _));
        }

        Assert.IsTrue(queue.Ring.ClaimPaddingAsIfKilled(pid: 999_999));
        Assert.IsFalse(queue.TryDequeue(out _));
        var (head, read, tail) = queue.Ring.Positions;
        Assert.IsTrue(head <= read && read <= tail, $"head {head}, read {read}, tail {tail}");

        // The queue keeps flowing, across the wrap and over many laps.
        for (int i = 0; i < 200; i++)
        {
            queue.Enqueue(Message(64, i), TimeSpan.FromSeconds(5));
            CollectionAssert.AreEqual(Message(64, i), queue.Dequeue(TimeSpan.FromSeconds(5)));
        }
    }

    [TestMethod]
    public unsafe void An_unknown_record_state_is_reported_as_corruption_naming_the_queue()
    {
        using ShmQueue queue = NewQueue();
        queue.Enqueue([1, 2, 3]);
        string path = "/dev/shm/shmipc." + queue.Name;
        using (var file = new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite))
        {
            // The first record's State word: keep its position tag, set state 7.
            long stateOffset = Layout.SegmentHeaderDescriptor.HeaderSize + Layout.QueueDescriptor.ControlSize + Layout.QueueDescriptor.StateOffset;
            file.Position = stateOffset;
            file.Write(BitConverter.GetBytes(7));
        }

        var e = Assert.ThrowsExactly<ShmCorruptionException>(() => queue.TryDequeue(out _));
        Assert.AreEqual(queue.Name, e.SegmentName);
        StringAssert.Contains(e.Message, "unknown record state 7");
    }

    [TestMethod]
    public void Dispose_ends_a_wait_on_another_thread_with_ObjectDisposedException()
    {
        ShmQueue queue = NewQueue();
        using var started = new ManualResetEventSlim();
        Task waiter = Task.Run(() =>
        {
            started.Set();
            queue.Dequeue();
        });
        started.Wait();
        queue.Dispose();
        var e = Assert.ThrowsExactly<AggregateException>(() => waiter.Wait(TimeSpan.FromSeconds(30)));
        Assert.IsInstanceOfType<ObjectDisposedException>(e.InnerException);
        Assert.ThrowsExactly<ObjectDisposedException>(() => queue.TryEnqueue(new byte[1]));
    }

    [TestMethod]
    public async Task Async_enqueue_and_dequeue_complete_when_the_other_side_acts()
    {
        using ShmQueue queue = NewQueue(4096, 1000);
        ValueTask<byte[]> pending = queue.DequeueAsync();
        Assert.IsFalse(pending.IsCompleted);
        queue.Enqueue(Message(3, 3));
        CollectionAssert.AreEqual(Message(3, 3), await pending.AsTask().WaitAsync(TimeSpan.FromSeconds(30)));

        while (queue.TryEnqueue(new byte[1000]))
        {
        }

        ValueTask blocked = queue.EnqueueAsync(Message(1000, 4));
        Assert.IsFalse(blocked.IsCompleted);
        Assert.IsTrue(queue.TryDequeue(out _));
        await blocked.AsTask().WaitAsync(TimeSpan.FromSeconds(30));

        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(50));
        using ShmQueue empty = NewQueue();
        await Assert.ThrowsAsync<OperationCanceledException>(async () => await empty.DequeueAsync(cts.Token));
    }

    [TestMethod]
    public async Task ReadAllAsync_streams_messages()
    {
        using ShmQueue queue = NewQueue();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        Task producer = Task.Run(() =>
        {
            for (int i = 0; i < 100; i++)
            {
                queue.Enqueue(BitConverter.GetBytes(i));
            }
        });
        int expected = 0;
        await foreach (byte[] message in queue.ReadAllAsync(cts.Token))
        {
            Assert.AreEqual(expected++, BitConverter.ToInt32(message));
            if (expected == 100)
            {
                break;
            }
        }

        await producer;
    }

    [TestMethod]
    public void Typed_queues_carry_structs_and_strings()
    {
        using var numbers = ShmQueue<(int, double)>.Create(TestNames.Unique("qt"));
        numbers.Enqueue((1, 2.5));
        Assert.AreEqual((1, 2.5), numbers.Dequeue(TimeSpan.FromSeconds(1)));

        using var words = ShmQueue<string>.Create(TestNames.Unique("qs"));
        words.Enqueue("héllo");
        Assert.IsTrue(words.TryDequeue(out string? word));
        Assert.AreEqual("héllo", word);
        var e = Assert.ThrowsExactly<ArgumentException>(() => ShmQueue<List<int>>.Create(TestNames.Unique("ql")));
        StringAssert.Contains(e.Message, "serializer");
    }

    [TestMethod]
    public void Many_threads_produce_and_consume_every_message_exactly_once()
    {
        using ShmQueue queue = NewQueue(16384);
        const int Producers = 3, PerProducer = 20_000;
        var seen = new int[Producers * PerProducer];
        var lastSeqPerConsumer = new int[3, Producers];
        Task[] producers = Enumerable.Range(0, Producers).Select(p => Task.Run(() =>
        {
            byte[] message = new byte[40];
            for (int i = 0; i < PerProducer; i++)
            {
                BitConverter.TryWriteBytes(message, p);
                BitConverter.TryWriteBytes(message.AsSpan(4), i);
                queue.Enqueue(message.AsSpan(0, 8 + (i % 32)));
            }
        })).ToArray();
        int total = 0;
        Task[] consumers = Enumerable.Range(0, 3).Select(c => Task.Run(() =>
        {
            for (int p = 0; p < Producers; p++)
            {
                lastSeqPerConsumer[c, p] = -1;
            }

            while (Volatile.Read(ref total) < Producers * PerProducer)
            {
                if (queue.TryDequeue(out byte[]? m, TimeSpan.FromMilliseconds(20)))
                {
                    int p = BitConverter.ToInt32(m), i = BitConverter.ToInt32(m, 4);
                    Assert.AreEqual(8 + (i % 32), m.Length);
                    Assert.IsTrue(i > lastSeqPerConsumer[c, p], "per-producer order");
                    lastSeqPerConsumer[c, p] = i;
                    Interlocked.Increment(ref seen[p * PerProducer + i]);
                    Interlocked.Increment(ref total);
                }
            }
        })).ToArray();
        Assert.IsTrue(Task.WaitAll(producers.Concat(consumers).ToArray(), TimeSpan.FromSeconds(120)));
        Assert.IsTrue(seen.All(n => n == 1), "every message exactly once");
    }

    [TestMethod]
    public void Open_sees_the_creators_queue_and_refuses_a_pipe_or_a_corrupted_control_block()
    {
        using ShmQueue created = NewQueue(8192, 500);
        using (ShmQueue opened = ShmQueue.Open(created.Name))
        {
            Assert.AreEqual(8192, opened.Capacity);
            Assert.AreEqual(500, opened.MaxMessageLength);
            opened.Enqueue(Message(5, 5));
            CollectionAssert.AreEqual(Message(5, 5), created.Dequeue(TimeSpan.FromSeconds(1)));
        }

        Assert.IsTrue(File.Exists("/dev/shm/shmipc." + created.Name), "an opener's dispose does not unlink");
        Assert.ThrowsExactly<FileNotFoundException>(() => ShmQueue.Open(TestNames.Unique("nothing")));
    }

    [TestMethod]
    [DataRow(QueueBytes.Capacity, 5000L, DisplayName = "capacity not a power of two")]
    [DataRow(QueueBytes.MaxLength, 1L << 40, DisplayName = "max length too large")]
    [DataRow(QueueBytes.Alignment, 8L, DisplayName = "record alignment")]
    [DataRow(QueueBytes.Tail, 100L, DisplayName = "tail unaligned")]
    [DataRow(QueueBytes.Head, 4096L, DisplayName = "head past read position")]
    [DataRow(QueueBytes.SemaphoreCount, 1L, DisplayName = "semaphore count")]
    public unsafe void A_corrupted_queue_control_block_is_refused_on_open(int field, long value)
    {
        using ShmQueue queue = NewQueue(8192);
        string path = "/dev/shm/shmipc." + queue.Name;
        using (var file = new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite))
        {
            byte[] bytes = new byte[file.Length];
            file.ReadExactly(bytes);
            int control = Layout.SegmentHeaderDescriptor.HeaderSize;
            switch (field)
            {
                case QueueBytes.SemaphoreCount:
                    BitConverter.TryWriteBytes(bytes.AsSpan(Layout.SegmentHeaderDescriptor.SemaphoreCountOffset), (uint)value);
                    BitConverter.TryWriteBytes(bytes.AsSpan(Layout.SegmentHeaderDescriptor.ChecksumOffset),
                        Layout.SegmentHeaderDescriptor.Checksum(bytes.AsSpan(0, Layout.SegmentHeaderDescriptor.HeaderSize)));
                    break;
                case QueueBytes.MaxLength:
                case QueueBytes.Alignment:
                    BitConverter.TryWriteBytes(bytes.AsSpan(control + field), (int)Math.Min(value, int.MaxValue));
                    break;
                default:
                    BitConverter.TryWriteBytes(bytes.AsSpan(control + field), value);
                    break;
            }

            file.Position = 0;
            file.Write(bytes);
        }

        var e = Assert.ThrowsExactly<ShmInvalidSegmentException>(() => ShmQueue.Open(queue.Name));
        Assert.AreEqual(ShmSegmentError.Corrupted, e.Error, e.Message);
    }

    /// <summary>Control-block offsets used by the corruption test (the header's semaphore count is special-cased).</summary>
    private static class QueueBytes
    {
        public const int Capacity = Layout.QueueDescriptor.CapacityOffset;
        public const int MaxLength = Layout.QueueDescriptor.MaxMessageLengthOffset;
        public const int Alignment = Layout.QueueDescriptor.RecordAlignmentOffset;
        public const int Tail = Layout.QueueDescriptor.TailOffset;
        public const int Head = Layout.QueueDescriptor.HeadOffset;
        public const int SemaphoreCount = -1;
    }

    [TestMethod]
    public void OpenOrCreate_creates_once_then_opens()
    {
        string name = TestNames.Unique("qoc");
        using ShmQueue first = ShmQueue.OpenOrCreate(name);
        using ShmQueue second = ShmQueue.OpenOrCreate(name);
        first.Enqueue([1, 2, 3]);
        CollectionAssert.AreEqual(new byte[] { 1, 2, 3 }, second.Dequeue(TimeSpan.FromSeconds(1)));
    }

    [TestMethod]
    public void Bad_options_are_refused_with_the_rule()
    {
        var e = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ShmQueue.Create(TestNames.Unique("bad"), new ShmQueueOptions { Capacity = 5000 }));
        StringAssert.Contains(e.Message, "power of two");
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ShmQueue.Create(TestNames.Unique("bad"), new ShmQueueOptions { Capacity = 4096, MaxMessageLength = 4000 }));
    }
}
