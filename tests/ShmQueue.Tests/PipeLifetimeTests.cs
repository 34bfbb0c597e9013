using System.Diagnostics;
using ShmIpc.Tests.Common;

namespace ShmIpc.Tests;

/// <summary>A pipe end's life within one process: connecting late, the peer closing, disposal during blocked calls, handover. Cross-process: <see cref="PipeProcessTests"/>.</summary>
[TestClass]
public sealed class PipeLifetimeTests
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(10);

    [TestMethod]
    public void Receive_before_the_second_end_connects_just_waits()
    {
        using (var pipe = new TempPipe("early", TestPipes.Options()))
        {
            (string name, ShmConnection a) = (pipe.Name, pipe.A);
            var clock = Stopwatch.StartNew();
            Assert.IsFalse(a.TryReceive(out _, TimeSpan.FromMilliseconds(150)), "no peer yet is not a closed peer");
            Assert.IsTrue(clock.Elapsed >= TimeSpan.FromMilliseconds(149));
            Assert.IsFalse(a.IsPeerConnected);
            a.Send([7]);
            using ShmConnection b = ShmPipe.Connect(name, TestPipes.Options());
            Assert.IsTrue(a.IsPeerConnected && b.IsPeerConnected);
            CollectionAssert.AreEqual(new byte[] { 7 }, b.Receive(), "sent before the peer connected, delivered after");
        }
    }

    [TestMethod]
    public void A_closed_peer_delivers_what_it_sent_then_receive_and_send_throw_peer_closed()
    {
        using TempSegment<ShmConnection> pipe = TempSegment.Create("closed", static name => ShmPipe.Create(name, TestPipes.Options()));
        (string name, ShmConnection a) = (pipe.Name, pipe.Object);
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
        var receiver = BlockedCall.Start(() => pair.B.Receive());
        Until.True(() => view.DataSleepers(1) > 0, Generous, "the receiver sleeps");
        var clock = Stopwatch.StartNew();
        pair.A.Close();
        Assert.IsTrue(receiver.Join(Generous));
        Assert.IsInstanceOfType<ShmPeerClosedException>(receiver.Exception);
        Assert.IsTrue(clock.Elapsed < TimeSpan.FromSeconds(2), $"woken by the post, not by the 5 s slice: {clock.Elapsed}");
    }

    [TestMethod]
    public void Dispose_during_a_blocked_receive_ends_it_with_ObjectDisposedException()
    {
        using var pair = new PipePair("disp-r");
        using var view = new PipeFileView(pair.Name);
        var receiver = BlockedCall.Start(() => pair.B.Receive());
        Until.True(() => view.DataSleepers(1) > 0, Generous, "the receiver sleeps");
        pair.B.Dispose();
        Assert.IsTrue(receiver.Join(Generous), "the receive ended");
        Assert.IsInstanceOfType<ObjectDisposedException>(receiver.Exception);
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

        var sender = BlockedCall.Start(() => pair.A.Send(new byte[200]));
        Until.True(() => view.SpaceSleepers(1) > 0, Generous, "the sender sleeps");
        pair.A.Dispose();
        Assert.IsTrue(sender.Join(Generous));
        Assert.IsInstanceOfType<ObjectDisposedException>(sender.Exception);
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
        using TempSegment<ShmConnection> pipe = TempSegment.Create("twice", static name => ShmPipe.Create(name, TestPipes.Options()));
        (string name, ShmConnection a) = (pipe.Name, pipe.Object);
        ShmConnection b = ShmPipe.Connect(name, TestPipes.Options());
        b.Dispose();
        b.Dispose();
        Assert.IsTrue(File.Exists("/dev/shm/shmipc." + name), "the connector removes nothing");
        Assert.ThrowsExactly<ShmPeerClosedException>(() => a.Receive());
        a.Dispose();
        a.Dispose();
        Assert.AreEqual(0, TestNames.ShmFilesOf(name).Length);
    }
}
