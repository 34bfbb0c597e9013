using ShmIpc.Layout;
using ShmIpc.Tests.Common;

namespace ShmIpc.Tests;

/// <summary>The pipe within one process: the layout, round trips of every size, a full ring, both directions at once, empty, typed and one-way messages, allocation. Cross-process: <see cref="PipeProcessTests"/>.</summary>
[TestClass]
public sealed class PipeBasicsTests
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(10);

    [TestMethod]
    public void Layout_puts_hot_words_on_their_own_128_byte_lines()
    {
        // (Constant relations - ControlSize 1152 = 9 lines, Head 128 after Tail, sleepers 128 after Head -
        // are stated in the descriptors; here the computed offsets.)
        Assert.AreEqual(128, PipeDescriptor.EndSlotOffset(0));
        Assert.AreEqual(256, PipeDescriptor.EndSlotOffset(1));
        Assert.AreEqual(384, PipeDescriptor.RingControlOffset(0));
        Assert.AreEqual(768, PipeDescriptor.RingControlOffset(1));
        Assert.AreEqual(8, SpscRingDescriptor.RecordSize(0));
        Assert.AreEqual(16, SpscRingDescriptor.RecordSize(1));
        Assert.AreEqual(16, SpscRingDescriptor.RecordSize(8));
        Assert.AreEqual(24, SpscRingDescriptor.RecordSize(9));
        Assert.AreEqual(2040, SpscRingDescriptor.MaxMessageLengthFor(4096));
    }

    [TestMethod]
    public void Messages_of_every_size_round_trip_in_both_directions_across_many_wraps()
    {
        using var pair = new PipePair("sizes", TestPipes.Options(capacity: 1024, maxMessageLength: SpscRingDescriptor.MaxMessageLengthFor(1024)));
        int max = pair.A.MaxMessageLength;
        Assert.AreEqual(504, max);
        var buffer = new byte[max];
        for (int i = 0; i < 3000; i++)
        {
            byte[] message = PipeMessages.Make(i, PipeMessages.LengthOf(i, max));
            pair.A.Send(message);
            CollectionAssert.AreEqual(message, pair.B.Receive(), $"message {i} A->B");
            pair.B.Send(message);
            int length = pair.A.ReceiveInto(buffer);
            Assert.AreEqual(message.Length, length);
            Assert.IsTrue(PipeMessages.Matches(i, buffer.AsSpan(0, length)), $"message {i} B->A");
        }

        using var view = new PipeFileView(pair.Name);
        Assert.IsTrue(view.Tail(1) > 100 * 1024, $"ring 1 wrapped many times (tail {view.Tail(1)})");
        Assert.AreEqual(view.Tail(1), view.Head(1), "all consumed");
    }

    [TestMethod]
    public void A_full_ring_refuses_until_the_consumer_frees_space_and_keeps_order()
    {
        using var pair = new PipePair("full", TestPipes.Options(capacity: 1024));
        int sent = 0;
        while (pair.A.TrySend(PipeMessages.Make(sent, 100), TimeSpan.Zero))
        {
            sent++;
        }

        Assert.AreEqual(1024 / 112, sent, "records of 8 + 104 bytes");
        Assert.IsFalse(pair.A.TrySend(PipeMessages.Make(sent, 100), TimeSpan.FromMilliseconds(60)), "still full after a timed wait");
        for (int i = 0; i < sent; i++)
        {
            Assert.IsTrue(PipeMessages.Matches(i, pair.B.Receive()));
            Assert.IsTrue(pair.A.TrySend(PipeMessages.Make(sent + i, 100), TimeSpan.Zero), "one record freed, one fits");
        }

        for (int i = 0; i < sent; i++)
        {
            Assert.IsTrue(PipeMessages.Matches(sent + i, pair.B.Receive()));
        }
    }

    [TestMethod]
    public void Both_ends_sending_more_than_the_capacity_while_reading_do_not_deadlock()
    {
        using var pair = new PipePair("duplex", TestPipes.Options(capacity: 1024));
        const int Count = 4000;
        Exception? failure = null;
        void Run(ShmConnection connection)
        {
            try
            {
                int sent = 0, received = 0;
                while (sent < Count || received < Count)
                {
                    // One thread per end, alternating: a blocking Send on both sides would deadlock.
                    while (sent < Count && connection.TrySend(PipeMessages.Make(sent, PipeMessages.LengthOf(sent, 200)), TimeSpan.Zero))
                    {
                        sent++;
                    }

                    while (received < Count && connection.TryReceive(out byte[] message, received < sent ? TimeSpan.FromMilliseconds(1) : TimeSpan.Zero))
                    {
                        Assert.AreEqual(PipeMessages.LengthOf(received, 200), message.Length);
                        Assert.IsTrue(PipeMessages.Matches(received, message));
                        received++;
                    }
                }
            }
            catch (Exception e)
            {
                failure = e;
            }
        }

        var a = new Thread(() => Run(pair.A));
        var b = new Thread(() => Run(pair.B));
        a.Start();
        b.Start();
        Assert.IsTrue(a.Join(Generous) & b.Join(Generous), "both ends finished");
        Assert.IsNull(failure, failure?.ToString());
    }

    [TestMethod]
    public void Empty_messages_are_messages()
    {
        using var pair = new PipePair("empty");
        pair.A.Send([]);
        pair.A.Send(ReadOnlySpan<byte>.Empty);
        Assert.IsTrue(pair.B.Poll(TimeSpan.Zero));
        Assert.AreEqual(0, pair.B.Receive().Length);
        Assert.AreEqual(0, pair.B.ReceiveInto(Span<byte>.Empty));
        Assert.IsFalse(pair.B.Poll(TimeSpan.Zero));
    }

    [TestMethod]
    public void Typed_messages_use_the_built_in_serializers()
    {
        using var pair = new PipePair("typed");
        pair.A.Send("héllo, pipe");
        pair.A.Send(42L);
        pair.A.Send(new byte[] { 1, 2 });
        Assert.AreEqual("héllo, pipe", pair.B.Receive<string>());
        Assert.AreEqual(42L, pair.B.Receive<long>());
        CollectionAssert.AreEqual(new byte[] { 1, 2 }, pair.B.Receive<byte[]>());

        pair.A.Send(7);
        Assert.ThrowsExactly<InvalidDataException>(() => pair.B.Receive<long>(), "4 bytes are not a long");
        Assert.IsFalse(pair.B.Poll(TimeSpan.Zero), "the bad message was consumed");

        Assert.ThrowsExactly<ArgumentException>(() => pair.A.Send(new List<int>()));
        Assert.ThrowsExactly<ArgumentException>(() => pair.B.Receive<List<int>>());
        string longer = new('x', pair.A.MaxMessageLength + 1);
        pair.A.Send(longer);
        Assert.AreEqual(longer, pair.B.Receive<string>(), "longer than the ring: through a side segment (issue 17)");
    }

    [TestMethod]
    public void Send_and_ReceiveInto_allocate_nothing()
    {
        using var pair = new PipePair("alloc");
        byte[] message = PipeMessages.Make(1, 64);
        var buffer = new byte[64];
        for (int i = 0; i < 100; i++)
        {
            pair.A.Send(message);
            pair.B.ReceiveInto(buffer);
        }

        var (quietest, all) = AllocationWindows.Measure(10, 1_000, () =>
        {
            pair.A.Send(message);
            pair.B.ReceiveInto(buffer);
        });
        Assert.AreEqual(0, quietest, $"bytes allocated by 1,000 round trips in the quietest of 10 windows (all: {all})");
    }

    [TestMethod]
    public void A_one_way_pipe_sends_from_the_connector_to_the_creator_only()
    {
        using var pair = new PipePair("oneway", TestPipes.Options(duplex: false));
        Assert.IsTrue(pair.A.CanReceive && !pair.A.CanSend);
        Assert.IsTrue(pair.B.CanSend && !pair.B.CanReceive);
        Assert.AreEqual(3, TestNames.ShmFilesOf(pair.Name).Length, "segment + 2 semaphores");
        pair.B.Send([4]);
        CollectionAssert.AreEqual(new byte[] { 4 }, pair.A.Receive());
        Assert.ThrowsExactly<InvalidOperationException>(() => pair.A.Send([1]));
        Assert.ThrowsExactly<InvalidOperationException>(() => pair.B.Receive());
    }

    [TestMethod]
    public void Sleeping_ping_pong_leaves_no_surplus_posts_in_the_semaphores()
    {
        // Both ends never spin: nearly every message meets a registered sleeper. Posts must match
        // registrations exactly, or the counts climb and "sleeping" waits return at once.
        string name = TestNames.Unique("p-nospin");
        var options = new ShmPipeOptions { WaitStrategy = ShmWaitStrategy.NoSpin };
        using ShmConnection a = ShmPipe.Create(name, options);
        using ShmConnection b = ShmPipe.Connect(name, options);
        const int RoundTrips = 20_000;
        Task echo = Task.Run(() =>
        {
            byte[] buffer = new byte[8];
            for (int i = 0; i < RoundTrips; i++)
            {
                int n = b.ReceiveInto(buffer);
                b.Send(buffer.AsSpan(0, n));
            }
        });
        byte[] reply = new byte[8];
        int maxCount = 0;
        for (int i = 0; i < RoundTrips; i++)
        {
            a.Send(BitConverter.GetBytes((long)i));
            Assert.AreEqual(8, a.ReceiveInto(reply));
            Assert.AreEqual(i, BitConverter.ToInt64(reply));
            if (i % 100 == 0)
            {
                maxCount = Math.Max(maxCount, a.MaxSemaphoreCount);
            }
        }

        Assert.IsTrue(echo.Wait(TimeSpan.FromSeconds(30)));
        Assert.IsTrue(maxCount <= 2, $"a semaphore count reached {maxCount}");
    }

    [TestMethod]
    public void TryReceiveInto_returns_at_once_or_at_its_deadline_and_allocates_nothing()
    {
        string name = TestNames.Unique("p-tri");
        using ShmConnection a = ShmPipe.Create(name);
        using ShmConnection b = ShmPipe.Connect(name);
        byte[] buffer = new byte[16];
        Assert.IsFalse(a.TryReceiveInto(buffer, out int none, TimeSpan.Zero));
        Assert.AreEqual(0, none);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        Assert.IsFalse(a.TryReceiveInto(buffer, out _, TimeSpan.FromMilliseconds(50)));
        Assert.IsTrue(clock.Elapsed >= TimeSpan.FromMilliseconds(49), clock.Elapsed.ToString());

        b.Send([1, 2, 3]);
        Assert.IsTrue(a.TryReceiveInto(buffer, out int length, TimeSpan.FromSeconds(5)));
        CollectionAssert.AreEqual(new byte[] { 1, 2, 3 }, buffer[..length]);

        b.Send(new byte[32]);
        Assert.ThrowsExactly<ArgumentException>(() => a.TryReceiveInto(buffer, out _, TimeSpan.FromSeconds(5)));
        Assert.IsTrue(a.TryReceiveInto(new byte[32], out int big, TimeSpan.Zero), "a message too big for the buffer stays in the pipe");
        Assert.AreEqual(32, big);

        // Warm, then count: the span path allocates nothing.
        for (int i = 0; i < 100; i++)
        {
            b.Send(buffer.AsSpan(0, 8));
            a.TryReceiveInto(buffer, out _, TimeSpan.FromSeconds(5));
        }

        var (quietest, all) = AllocationWindows.Measure(10, 200, () =>
        {
            b.Send(buffer.AsSpan(0, 8));
            a.TryReceiveInto(buffer, out _, TimeSpan.FromSeconds(5));
        });
        Assert.AreEqual(0, quietest, $"bytes allocated by 200 span round trips in the quietest of 10 windows (all: {all})");
    }
}
