using ShmIpc.Tests.Common;

namespace ShmIpc.Tests;

/// <summary>Deferred sends: when staged messages are published (flush, send, a quarter of the ring, a full ring, a waiting receive, close). Cross-process: <see cref="PipeProcessTests"/>.</summary>
[TestClass]
public sealed class PipeDeferredTests
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(10);

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
}
