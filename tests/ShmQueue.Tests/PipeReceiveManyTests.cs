using ShmIpc.Tests.Common;

namespace ShmIpc.Tests;

/// <summary>ReceiveMany: batches, limits, handlers that throw, reply on a full ring or dispose their end. Cross-process: <see cref="PipeProcessTests"/>.</summary>
[TestClass]
public sealed class PipeReceiveManyTests
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(10);

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
}
