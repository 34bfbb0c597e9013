using System.Diagnostics;
using ShmIpc.Layout;
using ShmIpc.Tests.Common;

namespace ShmIpc.Tests;

/// <summary>The pipe within one process: the ring, the API, corruption, disposal. Cross-process: <see cref="PipeProcessTests"/>.</summary>
[TestClass]
public sealed class PipeTests
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
    public void An_oversized_message_is_refused_before_anything_is_written()
    {
        using var pair = new PipePair("oversize");
        using var view = new PipeFileView(pair.Name);
        long tail = view.Tail(1);
        var e = Assert.ThrowsExactly<ArgumentException>(() => pair.A.Send(new byte[pair.A.MaxMessageLength + 1]));
        StringAssert.Contains(e.Message, pair.Name);
        Assert.AreEqual(tail, view.Tail(1), "tail unchanged");
        Assert.IsFalse(pair.B.Poll(TimeSpan.Zero), "nothing arrived");
        pair.A.Send(new byte[pair.A.MaxMessageLength]);
        Assert.AreEqual(pair.A.MaxMessageLength, pair.B.Receive().Length, "the maximum itself is fine");
    }

    [TestMethod]
    public void ReceiveInto_a_buffer_too_small_throws_and_leaves_the_message_unread()
    {
        using var pair = new PipePair("small");
        pair.A.Send(PipeMessages.Make(1, 100));
        Assert.ThrowsExactly<ArgumentException>(() => pair.B.ReceiveInto(new byte[99]));
        var buffer = new byte[200];
        Assert.AreEqual(100, pair.B.ReceiveInto(buffer));
        Assert.IsTrue(PipeMessages.Matches(1, buffer.AsSpan(0, 100)));
    }

    [TestMethod]
    public void A_second_connect_is_refused_naming_the_pipe()
    {
        using var pair = new PipePair("second");
        var e = Assert.ThrowsExactly<InvalidOperationException>(() => ShmPipe.Connect(pair.Name));
        StringAssert.Contains(e.Message, pair.Name);
        StringAssert.Contains(e.Message, Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture));
        pair.A.Send([1, 2, 3]);
        CollectionAssert.AreEqual(new byte[] { 1, 2, 3 }, pair.B.Receive(), "the refused attempt disturbed nothing");
    }

    [TestMethod]
    public void Receive_before_the_second_end_connects_just_waits()
    {
        string name = TestNames.Unique("early");
        using (ShmConnection a = ShmPipe.Create(name, TestPipes.Options()))
        {
            var clock = Stopwatch.StartNew();
            Assert.IsFalse(a.TryReceive(out _, TimeSpan.FromMilliseconds(150)), "no peer yet is not a closed peer");
            Assert.IsTrue(clock.Elapsed >= TimeSpan.FromMilliseconds(149));
            Assert.IsFalse(a.IsPeerConnected);
            a.Send([7]);
            using ShmConnection b = ShmPipe.Connect(name, TestPipes.Options());
            Assert.IsTrue(a.IsPeerConnected && b.IsPeerConnected);
            CollectionAssert.AreEqual(new byte[] { 7 }, b.Receive(), "sent before the peer connected, delivered after");
        }

        Assert.AreEqual(0, TestNames.ShmFilesOf(name).Length);
    }

    [TestMethod]
    public void A_closed_peer_delivers_what_it_sent_then_receive_and_send_throw_peer_closed()
    {
        string name = TestNames.Unique("closed");
        ShmConnection a = ShmPipe.Create(name, TestPipes.Options());
        using ShmConnection b = ShmPipe.Connect(name, TestPipes.Options());
        a.Send([1]);
        a.Send([2]);
        a.Dispose();
        Assert.AreEqual(0, TestNames.ShmFilesOf(name).Length, "the creator unlinked; the connected end keeps working");
        Assert.IsFalse(b.IsPeerConnected);
        Assert.IsTrue(b.Poll(TimeSpan.Zero), "end of file is readable, as in Python");
        CollectionAssert.AreEqual(new byte[] { 1 }, b.Receive());
        CollectionAssert.AreEqual(new byte[] { 2 }, b.Receive());
        var e = Assert.ThrowsExactly<ShmPeerClosedException>(() => b.Receive());
        Assert.AreEqual(name, e.Name);
        Assert.IsInstanceOfType<EndOfStreamException>(e);
        Assert.ThrowsExactly<ShmPeerClosedException>(() => b.Send([3]));
    }

    [TestMethod]
    public void Closing_wakes_a_peer_blocked_in_receive_at_once()
    {
        ShmPipeOptions options = TestPipes.Options();
        options.WaitStrategy = new ShmWaitStrategy { SleepSlice = TimeSpan.FromSeconds(5) };
        using var pair = new PipePair("wake", options);
        using var view = new PipeFileView(pair.Name);
        Exception? seen = null;
        var receiver = new Thread(() =>
        {
            try
            {
                pair.B.Receive();
            }
            catch (Exception e)
            {
                seen = e;
            }
        });
        receiver.Start();
        Until.True(() => view.DataSleepers(1) > 0, Generous, "the receiver sleeps");
        var clock = Stopwatch.StartNew();
        pair.A.Close();
        Assert.IsTrue(receiver.Join(Generous));
        Assert.IsInstanceOfType<ShmPeerClosedException>(seen);
        Assert.IsTrue(clock.Elapsed < TimeSpan.FromSeconds(2), $"woken by the post, not by the 5 s slice: {clock.Elapsed}");
    }

    [TestMethod]
    public void Dispose_during_a_blocked_receive_ends_it_with_ObjectDisposedException()
    {
        using var pair = new PipePair("disp-r");
        using var view = new PipeFileView(pair.Name);
        Exception? seen = null;
        var receiver = new Thread(() =>
        {
            try
            {
                pair.B.Receive();
            }
            catch (Exception e)
            {
                seen = e;
            }
        });
        receiver.Start();
        Until.True(() => view.DataSleepers(1) > 0, Generous, "the receiver sleeps");
        pair.B.Dispose();
        Assert.IsTrue(receiver.Join(Generous), "the receive ended");
        Assert.IsInstanceOfType<ObjectDisposedException>(seen);
        Assert.ThrowsExactly<ObjectDisposedException>(() => pair.B.Receive());
        Assert.ThrowsExactly<ShmPeerClosedException>(() => pair.A.Send([1]), "the disposed end counts as closed for its peer");
    }

    [TestMethod]
    public void Dispose_during_a_blocked_send_ends_it_with_ObjectDisposedException()
    {
        using var pair = new PipePair("disp-s", TestPipes.Options(capacity: 1024));
        using var view = new PipeFileView(pair.Name);
        while (pair.A.TrySend(new byte[200], TimeSpan.Zero))
        {
        }

        Exception? seen = null;
        var sender = new Thread(() =>
        {
            try
            {
                pair.A.Send(new byte[200]);
            }
            catch (Exception e)
            {
                seen = e;
            }
        });
        sender.Start();
        Until.True(() => view.SpaceSleepers(1) > 0, Generous, "the sender sleeps");
        pair.A.Dispose();
        Assert.IsTrue(sender.Join(Generous));
        Assert.IsInstanceOfType<ObjectDisposedException>(seen);
    }

    [TestMethod]
    public void Concurrent_receives_on_one_end_take_turns_and_each_gets_one_message()
    {
        using var pair = new PipePair("conc");
        using var view = new PipeFileView(pair.Name);
        byte[]?[] got = new byte[2][];
        Exception?[] errors = new Exception?[2];
        Thread Receiver(int k) => new(() =>
        {
            try
            {
                _ = pair.B.TryReceive(out got[k], Generous);
            }
            catch (Exception e)
            {
                errors[k] = e;
            }
        });
        Thread first = Receiver(0), second = Receiver(1);
        first.Start();
        Until.True(() => view.DataSleepers(1) > 0, Generous, "the first receiver sleeps");
        second.Start();
        pair.A.Send([1]);
        pair.A.Send([2]);
        Assert.IsTrue(first.Join(Generous) && second.Join(Generous));
        Assert.IsTrue(errors[0] is null && errors[1] is null, $"{errors[0]} {errors[1]}");
        CollectionAssert.AreEquivalent(new byte[] { 1, 2 }, new[] { got[0]![0], got[1]![0] });
    }

    [TestMethod]
    public void Poll_returns_within_its_timeout_and_sees_a_message()
    {
        using var pair = new PipePair("poll");
        var clock = Stopwatch.StartNew();
        Assert.IsFalse(pair.B.Poll(TimeSpan.FromMilliseconds(120)));
        Assert.IsTrue(clock.Elapsed >= TimeSpan.FromMilliseconds(119) && clock.Elapsed < TimeSpan.FromSeconds(2), $"{clock.Elapsed}");
        pair.A.Send([5]);
        Assert.IsTrue(pair.B.Poll(TimeSpan.Zero));
        Assert.IsTrue(pair.B.Poll(TimeSpan.FromSeconds(1)), "polling consumes nothing");
        CollectionAssert.AreEqual(new byte[] { 5 }, pair.B.Receive());
    }

    [TestMethod]
    public void WaitAny_reports_the_ready_connections_and_times_out_when_none_is()
    {
        using var one = new PipePair("any1");
        using var two = new PipePair("any2");
        using var three = new PipePair("any3");
        ShmConnection[] readers = [one.B, two.B, three.A];

        var clock = Stopwatch.StartNew();
        Assert.AreEqual(0, ShmConnection.WaitAny(readers, TimeSpan.FromMilliseconds(100)).Count);
        Assert.IsTrue(clock.Elapsed >= TimeSpan.FromMilliseconds(99) && clock.Elapsed < TimeSpan.FromSeconds(2), $"{clock.Elapsed}");

        two.A.Send([2]);
        three.B.Send([3]);
        CollectionAssert.AreEqual(new[] { two.B, three.A }, ShmConnection.WaitAny(readers, TimeSpan.FromSeconds(5)).ToArray());

        two.B.Receive();
        three.A.Receive();
        one.A.Dispose();
        CollectionAssert.AreEqual(new[] { one.B }, ShmConnection.WaitAny(readers, TimeSpan.FromSeconds(5)).ToArray(), "a closed peer is ready (end of file)");
    }

    [TestMethod]
    public void WaitAny_wakes_for_a_message_sent_by_another_thread_while_it_sleeps()
    {
        using var one = new PipePair("anyw1");
        using var two = new PipePair("anyw2");
        using var view = new PipeFileView(one.Name);
        var sender = new Thread(() =>
        {
            Until.True(() => view.DataSleepers(1) > 0, Generous, "WaitAny sleeps");
            two.A.Send([9]);
        });
        sender.Start();
        var clock = Stopwatch.StartNew();
        IReadOnlyList<ShmConnection> ready = ShmConnection.WaitAny([one.B, two.B], Generous);
        Assert.IsTrue(sender.Join(Generous));
        CollectionAssert.AreEqual(new[] { two.B }, ready.ToArray());
        Assert.IsTrue(clock.Elapsed < TimeSpan.FromSeconds(2), $"{clock.Elapsed}");
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
        Assert.ThrowsExactly<ArgumentException>(() => pair.A.Send(new string('x', pair.A.MaxMessageLength + 1)));
    }

    [TestMethod]
    public async Task Async_send_and_receive_complete_and_cancel()
    {
        using var pair = new PipePair("async", TestPipes.Options(capacity: 1024));
        await pair.A.SendAsync(new byte[] { 1 });
        CollectionAssert.AreEqual(new byte[] { 1 }, await pair.B.ReceiveAsync());

        ValueTask<byte[]> pending = pair.B.ReceiveAsync();
        Assert.IsFalse(pending.IsCompleted);
        await pair.A.SendAsync(new byte[] { 2 });
        CollectionAssert.AreEqual(new byte[] { 2 }, await pending.AsTask().WaitAsync(Generous));

        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(50));
        await Assert.ThrowsAsync<OperationCanceledException>(async () => await pair.B.ReceiveAsync(cts.Token).AsTask().WaitAsync(Generous));

        while (pair.A.TrySend(new byte[200], TimeSpan.Zero))
        {
        }

        ValueTask send = pair.A.SendAsync(new byte[200]);
        Assert.IsFalse(send.IsCompleted, "full: waits");
        Assert.AreEqual(200, pair.B.Receive().Length);
        await send.AsTask().WaitAsync(Generous);
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

        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 10_000; i++)
        {
            pair.A.Send(message);
            pair.B.ReceiveInto(buffer);
        }

        Assert.AreEqual(0, GC.GetAllocatedBytesForCurrentThread() - before);
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
    public void Invalid_options_are_refused()
    {
        string name = TestNames.Unique("opts");
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ShmPipe.Create(name, new ShmPipeOptions { Capacity = 3000 }));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ShmPipe.Create(name, new ShmPipeOptions { Capacity = 512 }));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ShmPipe.Create(name, new ShmPipeOptions { Capacity = 4096, MaxMessageLength = 2041 }));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ShmPipe.Create(name, new ShmPipeOptions { MaxMessageLength = -1 }));
        Assert.ThrowsExactly<ArgumentException>(() => ShmPipe.Create("bad/name"));
        Assert.ThrowsExactly<FileNotFoundException>(() => ShmPipe.Connect(name));
        Assert.AreEqual(0, TestNames.ShmFilesOf(name).Length);
    }

    [TestMethod]
    [DataRow(SpscRingDescriptor.LengthOffset, 100_000, DisplayName = "length beyond the maximum")]
    [DataRow(SpscRingDescriptor.LengthOffset, -8, DisplayName = "negative length")]
    [DataRow(SpscRingDescriptor.LengthOffset, 64, DisplayName = "length beyond the tail")]
    [DataRow(SpscRingDescriptor.TypeOffset, 7, DisplayName = "unknown record type")]
    [DataRow(SpscRingDescriptor.TypeOffset, SpscRingDescriptor.PaddingType, DisplayName = "padding in the middle")]
    public unsafe void A_corrupted_record_header_throws_ShmCorruptionException_and_consumes_nothing(int offset, int value)
    {
        using var pair = new PipePair("corrupt");
        using var view = new PipeFileView(pair.Name);
        pair.A.Send(PipeMessages.Make(0, 16));
        pair.A.Send(PipeMessages.Make(1, 16));
        Assert.AreEqual(48, view.Tail(1));
        *(int*)(view.RingData(1) + 24 + offset) = value;

        pair.B.Receive();
        var e = Assert.ThrowsExactly<ShmCorruptionException>(() => pair.B.Receive());
        Assert.AreEqual(pair.Name, e.SegmentName);
        Assert.AreEqual(24, e.Position);
        StringAssert.Contains(e.Message, pair.Name);
        Assert.AreEqual(24, view.Head(1), "nothing consumed");
        Assert.ThrowsExactly<ShmCorruptionException>(() => pair.B.ReceiveInto(new byte[100]));
    }

    [TestMethod]
    [DataRow(12L, DisplayName = "unaligned tail")]
    [DataRow(8192L, DisplayName = "tail more than a ring ahead")]
    [DataRow(-64L, DisplayName = "tail behind head")]
    public unsafe void A_corrupted_tail_throws_ShmCorruptionException(long tail)
    {
        using var pair = new PipePair("ctail");
        using var view = new PipeFileView(pair.Name);
        MappedAtomics.WriteInt64Release(view.RingControl(1) + SpscRingDescriptor.TailOffset, tail);
        var e = Assert.ThrowsExactly<ShmCorruptionException>(() => pair.B.Receive());
        Assert.AreEqual(tail, e.Position);
    }

    [TestMethod]
    public unsafe void A_corrupted_head_throws_ShmCorruptionException_in_the_sender()
    {
        using var pair = new PipePair("chead", TestPipes.Options(capacity: 1024));
        using var view = new PipeFileView(pair.Name);
        MappedAtomics.WriteInt64Release(view.RingControl(1) + SpscRingDescriptor.HeadOffset, 4096);
        Assert.ThrowsExactly<ShmCorruptionException>(() =>
        {
            for (int i = 0; i < 20; i++)
            {
                pair.A.Send(new byte[100]);
            }
        });
    }

    [TestMethod]
    [DataRow(PipeDescriptor.CapacityOffset, 3000L, DisplayName = "capacity not a power of two")]
    [DataRow(PipeDescriptor.CapacityOffset, 8192L, DisplayName = "capacity larger than the data region")]
    [DataRow(PipeDescriptor.MaxMessageLengthOffset, 4000L, DisplayName = "maximum message beyond half the ring")]
    [DataRow(PipeDescriptor.RingCountOffset, 3L, DisplayName = "ring count")]
    [DataRow(PipeDescriptor.RingsOffset + SpscRingDescriptor.TailOffset, 5000L, DisplayName = "tail beyond a ring")]
    public unsafe void Connect_refuses_an_invalid_control_block(int offset, long value)
    {
        string name = TestNames.Unique("cblock");
        using ShmConnection a = ShmPipe.Create(name, TestPipes.Options());
        using (var view = new PipeFileView(name))
        {
            if (offset == PipeDescriptor.RingCountOffset)
            {
                *(int*)(view.Control + offset) = (int)value;
            }
            else
            {
                *(long*)(view.Control + offset) = value;
            }
        }

        var e = Assert.ThrowsExactly<ShmInvalidSegmentException>(() => ShmPipe.Connect(name));
        Assert.AreEqual(ShmSegmentError.Corrupted, e.Error);
        StringAssert.Contains(e.Message, name);
    }

    [TestMethod]
    public void Deferred_messages_are_seen_only_after_a_flush_or_a_send_and_in_order()
    {
        using var pair = new PipePair("defer");
        pair.A.SendDeferred([1]);
        pair.A.SendDeferred([2]);
        Assert.IsFalse(pair.B.Poll(TimeSpan.Zero), "deferred: not published yet");
        Assert.IsFalse(pair.B.TryReceive(out _, TimeSpan.FromMilliseconds(20)));
        pair.A.Flush();
        CollectionAssert.AreEqual(new byte[] { 1 }, pair.B.Receive());
        CollectionAssert.AreEqual(new byte[] { 2 }, pair.B.Receive());

        pair.A.SendDeferred([3]);
        pair.A.Send([4]);
        CollectionAssert.AreEqual(new byte[] { 3 }, pair.B.Receive(), "a plain Send publishes what was deferred before it");
        CollectionAssert.AreEqual(new byte[] { 4 }, pair.B.Receive());
        pair.A.Flush();
        Assert.IsFalse(pair.B.Poll(TimeSpan.Zero), "a flush with nothing pending sends nothing");
    }

    [TestMethod]
    public void Deferred_messages_publish_themselves_at_a_quarter_of_the_ring_and_when_it_is_full()
    {
        using var pair = new PipePair("defer-full", TestPipes.Options(capacity: 4096));
        int sent = 0;
        while (!pair.B.Poll(TimeSpan.Zero))
        {
            pair.A.SendDeferred(PipeMessages.Make(sent++, 100));
            Assert.IsTrue(sent <= 4096 / 4 / 100 + 1, $"still unpublished after {sent} messages of 100 B");
        }

        // A sender that fills the ring with deferred messages must publish them to get room (or it would wait forever).
        var sender = Task.Run(() =>
        {
            for (int i = sent; i < 200; i++)
            {
                pair.A.SendDeferred(PipeMessages.Make(i, 100));
            }

            pair.A.Flush();
        });
        for (int i = 0; i < 200; i++)
        {
            byte[] message = pair.B.TryReceive(out byte[] m, Generous) ? m : throw new AssertFailedException($"message {i} never came");
            CollectionAssert.AreEqual(PipeMessages.Make(i, 100), message);
        }

        Assert.IsTrue(sender.Wait(Generous));
    }

    [TestMethod]
    public void Deferred_messages_of_any_size_arrive_whole_and_in_order_across_many_wraps()
    {
        // Staged messages go into the ring in runs (a padding record at the ring's end), messages longer than the
        // staging buffer (an eighth of this 4 KiB ring) directly; both kinds, interleaved, keep their order.
        using var pair = new PipePair("defer-wrap", TestPipes.Options(capacity: 4096, maxMessageLength: 1000));
        const int Count = 3000;
        var rng = new Random(11);
        int[] lengths = Enumerable.Range(0, Count).Select(_ => rng.Next(10) == 0 ? rng.Next(600, 1001) : rng.Next(0, 200)).ToArray();
        var sender = Task.Run(() =>
        {
            for (int i = 0; i < Count; i++)
            {
                pair.A.SendDeferred(PipeMessages.Make(i, lengths[i]));
                if (i % 37 == 36)
                {
                    pair.A.Flush();
                }
            }

            pair.A.Flush();
        });
        for (int i = 0; i < Count; i++)
        {
            Assert.IsTrue(pair.B.TryReceive(out byte[] got, Generous), $"message {i} never came");
            CollectionAssert.AreEqual(PipeMessages.Make(i, lengths[i]), got, $"message {i}");
        }

        Assert.IsTrue(sender.Wait(Generous));
        Assert.IsFalse(pair.B.Poll(TimeSpan.Zero));
    }

    [TestMethod]
    public void A_flush_wakes_a_receiver_asleep_on_the_semaphore_and_closing_delivers_deferred_messages()
    {
        string name = TestNames.Unique("defer-sleep");
        ShmPipeOptions options = TestPipes.Options();
        options.WaitStrategy = ShmWaitStrategy.NoSpin;
        using ShmConnection a = ShmPipe.Create(name, options);
        using ShmConnection b = ShmPipe.Connect(name, options);
        using var view = new PipeFileView(name);
        byte[]? got = null;
        var receiver = new Thread(() => got = b.Receive());
        receiver.Start();
        Until.True(() => view.DataSleepers(0) + view.DataSleepers(1) > 0, Generous, "the receiver sleeps");
        a.SendDeferred([7]);
        Assert.IsFalse(receiver.Join(50), "a deferred message wakes nobody");
        a.Flush();
        Assert.IsTrue(receiver.Join(Generous), "the flush woke it");
        CollectionAssert.AreEqual(new byte[] { 7 }, got);

        a.SendDeferred([8]);
        a.SendDeferred([9]);
        a.Dispose();
        CollectionAssert.AreEqual(new byte[] { 8 }, b.Receive(), "closing publishes what was deferred");
        CollectionAssert.AreEqual(new byte[] { 9 }, b.Receive());
        Assert.ThrowsExactly<ShmPeerClosedException>(() => b.Receive());
    }

    [TestMethod]
    public void ReceiveMany_hands_every_waiting_message_to_the_handler_in_order_up_to_a_limit()
    {
        using var pair = new PipePair("many", TestPipes.Options(capacity: 4096));
        var seen = new List<int>();
        Assert.AreEqual(0, pair.B.ReceiveMany(static (m, s) => s.Add(m[0]), seen, 10, TimeSpan.Zero), "nothing waiting");
        Assert.AreEqual(0, pair.B.ReceiveMany(static (m, s) => s.Add(m[0]), seen, 10, TimeSpan.FromMilliseconds(20)));
        for (int i = 0; i < 25; i++)
        {
            byte[] message = new byte[64];
            message[0] = (byte)i;
            pair.A.SendDeferred(message);
        }

        pair.A.Flush();
        Assert.AreEqual(10, pair.B.ReceiveMany(static (m, s) => s.Add(m[0]), seen, 10, Generous));
        Assert.AreEqual(15, pair.B.ReceiveMany(static (m, s) => s.Add(m[0]), seen, 100, Generous));
        CollectionAssert.AreEqual(Enumerable.Range(0, 25).ToArray(), seen.ToArray());
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => pair.B.ReceiveMany(static (m, s) => { }, 0, 0, TimeSpan.Zero));

        // The space comes back at the end of the call: the sender can fill the whole ring again.
        int fitted = 0;
        while (pair.A.TrySend(PipeMessages.Make(fitted, 64), TimeSpan.Zero))
        {
            fitted++;
        }

        Assert.IsTrue(fitted >= 4096 / 80 - 1, $"only {fitted} messages fitted after the drain");
    }

    [TestMethod]
    public void A_handler_that_throws_ends_the_batch_its_message_counts_as_received()
    {
        using var pair = new PipePair("many-throw");
        for (int i = 0; i < 5; i++)
        {
            pair.A.Send([(byte)i]);
        }

        var seen = new List<int>();
        var e = Assert.ThrowsExactly<InvalidOperationException>(() => pair.B.ReceiveMany(static (m, s) =>
        {
            s.Add(m[0]);
            if (m[0] == 2)
            {
                throw new InvalidOperationException("handler failed");
            }
        }, seen, 100, Generous));
        Assert.AreEqual("handler failed", e.Message);
        CollectionAssert.AreEqual(new[] { 0, 1, 2 }, seen.ToArray());
        CollectionAssert.AreEqual(new byte[] { 3 }, pair.B.Receive(), "the batch ended after the throwing message");
        Assert.AreEqual(1, pair.B.ReceiveMany(static (m, s) => s.Add(m[0]), seen, 100, Generous));
        Assert.AreEqual(4, seen[^1]);
    }

    [TestMethod]
    public void A_ReceiveMany_handler_that_replies_on_a_full_ring_gives_back_the_space_it_handled()
    {
        // A sends 600 small messages before it reads any reply (the ring holds 585); B answers each with a 4 KiB
        // reply (16 fit). B's 17th reply waits for A, and A waits for room for its last messages: room B has
        // handled but, inside a batch, not yet given back. The handler's waiting send gives it back.
        using var pair = new PipePair("many-reply", TestPipes.Options(capacity: 64 << 10, maxMessageLength: 4096));
        const int Count = 600;
        var replier = Task.Run(() =>
        {
            int handled = 0;
            while (handled < Count)
            {
                handled += pair.B.ReceiveMany(static (m, b) => b.Send(new byte[4096]), pair.B, 1000, Generous);
            }
        });
        for (int i = 0; i < Count; i++)
        {
            Assert.IsTrue(pair.A.TrySend(new byte[100], Generous), $"send {i} found no room: the two ends wait on each other");
        }

        for (int i = 0; i < Count; i++)
        {
            Assert.AreEqual(4096, pair.A.Receive().Length);
        }

        Assert.IsTrue(replier.Wait(Generous));
    }

    [TestMethod]
    public void A_ReceiveMany_handler_may_dispose_its_end_the_batch_stops_and_the_end_closes()
    {
        using var pair = new PipePair("many-close");
        for (int i = 0; i < 5; i++)
        {
            pair.A.Send([(byte)i]);
        }

        var seen = new List<int>();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        int count = pair.B.ReceiveMany(static (m, s) =>
        {
            s.Seen.Add(m[0]);
            if (m[0] == 1)
            {
                s.End.Dispose();
            }
        }, (Seen: seen, End: pair.B), 100, Generous);
        Assert.AreEqual(2, count, "the batch stopped after the message whose handler disposed");
        CollectionAssert.AreEqual(new[] { 0, 1 }, seen.ToArray());
        Assert.IsTrue(clock.Elapsed < TimeSpan.FromSeconds(2), $"took {clock.Elapsed} (a dispose waiting on its own receive waits 10 s)");
        Assert.ThrowsExactly<ObjectDisposedException>(() => pair.B.Receive());
        Assert.IsFalse(pair.A.IsPeerConnected, "the peer sees the end closed");
    }

    [TestMethod]
    public void A_deferred_request_staged_behind_a_full_ring_still_goes_out_while_its_sender_waits_for_the_answer()
    {
        // The ring toward B is full when A defers its request and waits for the answer: the request cannot be
        // placed yet, and B's reading makes room without any signal to A's receive. A's wait retries it.
        using var pair = new PipePair("defer-full-wait", TestPipes.Options(capacity: 4096));
        int filler = 0;
        while (pair.A.TrySend(new byte[100], TimeSpan.Zero))
        {
            filler++;
        }

        byte[] request = new byte[100];
        request[0] = 42;
        pair.A.SendDeferred(request); // as long as the fillers: it cannot fit until B reads
        var responder = Task.Run(() =>
        {
            for (int i = 0; i < filler; i++)
            {
                Assert.AreEqual(0, pair.B.Receive()[0]);
            }

            pair.B.Send(pair.B.Receive());
        });
        Assert.IsTrue(pair.A.TryReceive(out byte[] answer, Generous), "the staged request reached the responder");
        CollectionAssert.AreEqual(request, answer);
        Assert.IsTrue(responder.Wait(Generous));
    }

    [TestMethod]
    public void A_receive_that_must_wait_first_publishes_what_its_end_deferred()
    {
        // Request/response with a forgotten Flush: the request still goes out when the requester waits for the answer.
        using var pair = new PipePair("defer-wait");
        var responder = Task.Run(() => pair.B.Send(pair.B.Receive()));
        pair.A.SendDeferred([42]);
        Assert.IsTrue(pair.A.TryReceive(out byte[] answer, Generous), "the deferred request reached the responder");
        CollectionAssert.AreEqual(new byte[] { 42 }, answer);
        Assert.IsTrue(responder.Wait(Generous));
    }

    [TestMethod]
    public void A_handover_in_one_process_moves_the_end_and_the_token_works_once()
    {
        using var pair = new PipePair("hand");
        pair.A.Send([1]);
        pair.B.SendDeferred([5]);
        string token = pair.B.ReleaseForHandover();
        CollectionAssert.AreEqual(new byte[] { 5 }, pair.A.Receive(), "a deferred message is published when its end is handed over");
        StringAssert.Contains(token, pair.Name);
        Assert.ThrowsExactly<ObjectDisposedException>(() => pair.B.Receive());
        Assert.IsTrue(pair.A.IsPeerConnected, "an end in transit is still connected");
        Assert.ThrowsExactly<InvalidOperationException>(() => ShmPipe.Connect(pair.Name));

        using ShmConnection moved = ShmConnection.AcquireHandover(token, TestPipes.Options());
        CollectionAssert.AreEqual(new byte[] { 1 }, moved.Receive(), "what was in flight stays");
        moved.Send([2]);
        CollectionAssert.AreEqual(new byte[] { 2 }, pair.A.Receive());
        Assert.ThrowsExactly<InvalidOperationException>(() => ShmConnection.AcquireHandover(token));
        Assert.ThrowsExactly<FormatException>(() => ShmConnection.AcquireHandover("nonsense"));
    }

    [TestMethod]
    public void Disposing_twice_and_disposing_the_connector_first_are_fine()
    {
        string name = TestNames.Unique("twice");
        ShmConnection a = ShmPipe.Create(name, TestPipes.Options());
        ShmConnection b = ShmPipe.Connect(name, TestPipes.Options());
        b.Dispose();
        b.Dispose();
        Assert.IsTrue(File.Exists("/dev/shm/shmipc." + name), "the connector removes nothing");
        Assert.ThrowsExactly<ShmPeerClosedException>(() => a.Receive());
        a.Dispose();
        a.Dispose();
        Assert.AreEqual(0, TestNames.ShmFilesOf(name).Length);
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

        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 1000; i++)
        {
            b.Send(buffer.AsSpan(0, 8));
            a.TryReceiveInto(buffer, out _, TimeSpan.FromSeconds(5));
        }

        Assert.AreEqual(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }
}
