using System.Collections.Concurrent;
using System.Globalization;
using ShmIpc.Layout;
using ShmIpc.Memory;
using ShmIpc.Tests.Common;

namespace ShmIpc.Tests;

/// <summary>
/// One pipe end held by several threads and several processes (ShmConnection.Shared.cs). The child sides are in
/// tests/ShmTestHost/SharedPipeScenarios.cs.
/// </summary>
[TestClass]
public sealed unsafe class PipeSharedTests
{
    private static readonly TimeSpan ChildStart = TimeSpan.FromSeconds(20);
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(20);

    /// <summary>A dead holder must be noticed within one 50 ms sleep slice (or lock liveness check); this is that plus room for a loaded machine.</summary>
    private static readonly TimeSpan DeathBound = TimeSpan.FromSeconds(2);

    private static string Text(int i) => i.ToString(CultureInfo.InvariantCulture);

    [TestMethod]
    public void Several_threads_send_on_one_end_and_every_message_arrives_whole_in_each_threads_order()
    {
        const int Threads = 4;
        const int PerThread = 3000;
        using (var pipe = new TempPipe("sh-thr", TestPipes.Options(capacity: 4096)))
        using (ShmConnection b = ShmPipe.Connect(pipe.Name, TestPipes.Options(capacity: 4096)))
        {
            ShmConnection a = pipe.A;
            var errors = new ConcurrentQueue<Exception>();
            var senders = Enumerable.Range(0, Threads).Select(t => new Thread(() =>
            {
                try
                {
                    for (int i = 0; i < PerThread; i++)
                    {
                        // Mixed: plain sends, and deferred ones flushed now and then, of lengths that wrap the ring often.
                        byte[] message = PipeMessages.Tagged("t" + Text(t), i, 8 + ((i * 37) % 300));
                        if (i % 3 == 0)
                        {
                            b.SendDeferred(message);
                        }
                        else
                        {
                            b.Send(message);
                        }
                    }

                    b.Flush();
                }
                catch (Exception e)
                {
                    errors.Enqueue(e);
                }
            })).ToList();
            senders.ForEach(static s => s.Start());

            var next = new int[Threads];
            for (int n = 0; n < Threads * PerThread && errors.IsEmpty; n++)
            {
                Assert.IsTrue(a.TryReceive(out byte[] message, Generous), $"message {n} arrived ({string.Join("; ", errors)})");
                var parsed = PipeMessages.ParseTagged(message, message.Length);
                Assert.IsNotNull(parsed, $"message {n} is whole");
                int t = int.Parse(parsed.Value.Tag.AsSpan(1), CultureInfo.InvariantCulture);
                Assert.AreEqual(8 + ((next[t] * 37) % 300), message.Length);
                Assert.AreEqual(next[t]++, parsed.Value.Index, $"thread {t}'s messages in its order");
            }

            senders.ForEach(s => Assert.IsTrue(s.Join(Generous)));
            Assert.IsTrue(errors.IsEmpty, string.Join("\n", errors));
            Assert.IsFalse(a.TryReceive(out _, TimeSpan.Zero), "nothing more");
        }
    }

    [TestMethod]
    public void Several_threads_receive_from_one_end_and_each_message_goes_to_exactly_one()
    {
        const int Count = 6000;
        using (var pipe = new TempPipe("sh-thrr", TestPipes.Options(capacity: 4096)))
        using (ShmConnection b = ShmPipe.Connect(pipe.Name, TestPipes.Options(capacity: 4096)))
        {
            ShmConnection a = pipe.A;
            var got = new ConcurrentBag<int>();
            var errors = new ConcurrentQueue<Exception>();
            var receivers = Enumerable.Range(0, 3).Select(_ => new Thread(() =>
            {
                try
                {
                    while (true)
                    {
                        got.Add(BitConverter.ToInt32(b.Receive()));
                    }
                }
                catch (ShmPeerClosedException)
                {
                }
                catch (Exception e)
                {
                    errors.Enqueue(e);
                }
            })).ToList();
            receivers.ForEach(static r => r.Start());
            for (int i = 0; i < Count; i++)
            {
                a.Send(BitConverter.GetBytes(i));
            }

            a.Dispose();
            receivers.ForEach(r => Assert.IsTrue(r.Join(Generous)));
            Assert.IsTrue(errors.IsEmpty, string.Join("\n", errors));
            CollectionAssert.AreEqual(Enumerable.Range(0, Count).ToList(), got.Order().ToList(), "each message exactly once");
        }
    }

    [TestMethod]
    public void Three_processes_send_on_one_shared_end_and_every_message_arrives_whole()
    {
        const int PerChild = 2000;
        using (var pipe = new TempPipe("sh-send", TestPipes.Options(capacity: 4096)))
        {
            (string name, ShmConnection a) = (pipe.Name, pipe.A);
            using (var children = new ChildProcesses())
            {
                ShmConnection b = ShmPipe.Connect(name, TestPipes.Options(capacity: 4096));
                var senders = new List<ChildProcess>();
                for (int c = 0; c < 3; c++)
                {
                    senders.Add(children.Start("pipe-shared-send", b.Share(), "c" + Text(c), Text(PerChild), Text(16 + (c * 150))));
                }

                Assert.IsTrue(b.IsShared);

                // The parent's copy stays usable and sends between the children's messages (from a thread: this one receives).
                var parentSender = new Thread(() =>
                {
                    using (b)
                    {
                        for (int i = 0; i < 500; i++)
                        {
                            b.Send(PipeMessages.Tagged("p", i, 40));
                        }
                    }
                });
                parentSender.Start();

                var next = new Dictionary<string, int>();
                for (int n = 0; n < (3 * PerChild) + 500; n++)
                {
                    Assert.IsTrue(a.TryReceive(out byte[] message, Generous), $"message {n} arrived");
                    var parsed = PipeMessages.ParseTagged(message, message.Length);
                    Assert.IsNotNull(parsed, $"message {n} is whole: {Convert.ToHexString(message.AsSpan(0, Math.Min(40, message.Length)))}");
                    int expected = next.GetValueOrDefault(parsed.Value.Tag);
                    Assert.AreEqual(expected, parsed.Value.Index, $"{parsed.Value.Tag}'s messages in order");
                    next[parsed.Value.Tag] = expected + 1;
                }

                Assert.IsTrue(parentSender.Join(Generous));
                foreach (ChildProcess child in senders)
                {
                    Assert.AreEqual(0, child.WaitForExit(ChildStart), child.StandardError);
                }

                // Every holder closed (the parent's copy first, the children at exit): now the peer is gone.
                Assert.ThrowsExactly<ShmPeerClosedException>(() => a.TryReceive(out _, Generous));
            }
        }
    }

    [TestMethod]
    public void Three_processes_receive_from_one_shared_end_and_each_message_goes_to_exactly_one()
    {
        const int Count = 5000;
        using (var pipe = new TempPipe("sh-recv", TestPipes.Options(capacity: 4096)))
        {
            (string name, ShmConnection a) = (pipe.Name, pipe.A);
            using (var children = new ChildProcesses())
            {
                var receivers = new List<ChildProcess>();
                using (ShmConnection b = ShmPipe.Connect(name, TestPipes.Options(capacity: 4096)))
                {
                    for (int c = 0; c < 3; c++)
                    {
                        receivers.Add(children.Start("pipe-shared-receive", b.Share()));
                    }
                }

                receivers.ForEach(c => c.WaitForLine("READY", ChildStart));
                for (int i = 0; i < Count; i++)
                {
                    a.Send(BitConverter.GetBytes(i));
                }

                a.Dispose();
                var got = new List<int>();
                foreach (ChildProcess child in receivers)
                {
                    string line = child.WaitForLine("GOT", ChildStart);
                    got.AddRange(line.Length > 4 ? line[4..].Split(',').Select(static s => int.Parse(s, CultureInfo.InvariantCulture)) : []);
                    Assert.AreEqual(0, child.WaitForExit(ChildStart), child.StandardError);
                }

                CollectionAssert.AreEqual(Enumerable.Range(0, Count).ToList(), got.Order().ToList(), "each message to exactly one receiver, none lost");
            }
        }
    }

    [TestMethod]
    public void A_sender_killed_holding_the_send_lock_does_not_wedge_the_other_senders()
    {
        string name = TestNames.Unique("sh-kill");
        using ShmConnection a = ShmPipe.Create(name, TestPipes.Options());
        using ShmConnection b = ShmPipe.Connect(name, TestPipes.Options());
        int sendRing = 1 - PipeDescriptor.ConnectorEnd;
        using (ChildProcess child = ChildProcess.Start("pipe-shared-hold-send-lock", b.Share(), Text(sendRing)))
        {
            child.WaitForLine("HOLDING", ChildStart);
            using var view = new PipeFileView(name);
            Assert.AreEqual(child.Pid, ProcessIdentity.FromWord((ulong)MappedAtomics.ReadInt64Acquire(view.RingControl(sendRing) + SpscRingDescriptor.SendLockOffset)).Pid);
            Assert.IsFalse(b.TrySend([1], TimeSpan.FromMilliseconds(200)), "a live holder of the send lock makes the others wait");

            var sent = new ManualResetEventSlim();
            var sender = new Thread(() =>
            {
                b.Send([2]);
                sent.Set();
            });
            sender.Start();
            child.Kill9();
            var clock = System.Diagnostics.Stopwatch.StartNew();
            Assert.IsTrue(sent.Wait(DeathBound), "the send proceeds once the holder is dead");
            Assert.IsTrue(sender.Join(Generous));
            Assert.IsTrue(clock.Elapsed < DeathBound, $"{clock.Elapsed}");
        }

        CollectionAssert.AreEqual(new byte[] { 2 }, a.Receive(), "the refused send left nothing; the later one arrived");
        b.Send([3]);
        CollectionAssert.AreEqual(new byte[] { 3 }, a.Receive());
    }

    [TestMethod]
    public void A_receiver_killed_inside_a_batch_leaves_its_message_to_the_other_receivers()
    {
        string name = TestNames.Unique("sh-killr");
        using ShmConnection a = ShmPipe.Create(name, TestPipes.Options());
        using ShmConnection b = ShmPipe.Connect(name, TestPipes.Options());
        using (ChildProcess child = ChildProcess.StartReady("pipe-shared-hold-receive-lock", b.Share()))
        {
            a.Send(BitConverter.GetBytes(7));
            Assert.AreEqual("IN-HANDLER 7", child.WaitForLine("IN-HANDLER", ChildStart));
            a.Send(BitConverter.GetBytes(8));
            Assert.IsFalse(b.TryReceive(out _, TimeSpan.FromMilliseconds(200)), "the live receiver's batch holds the receive lock");
            child.Kill9();
            Assert.IsTrue(b.TryReceive(out byte[] first, DeathBound), "the lock is taken over from the dead receiver");
            Assert.AreEqual(7, BitConverter.ToInt32(first), "the message in the dead receiver's hands was not released: it is delivered again");
            Assert.AreEqual(8, BitConverter.ToInt32(b.Receive()));
        }
    }

    [TestMethod]
    public void The_peer_of_a_shared_end_is_gone_only_when_every_holder_closed_or_died()
    {
        string name = TestNames.Unique("sh-gone");
        using ShmConnection a = ShmPipe.Create(name, TestPipes.Options());
        ShmConnection b = ShmPipe.Connect(name, TestPipes.Options());
        using ChildProcess first = ChildProcess.Start("pipe-shared-attach-hold", b.Share());
        using ChildProcess second = ChildProcess.Start("pipe-shared-attach-hold", b.Share());
        first.WaitForLine("READY", ChildStart);
        second.WaitForLine("READY", ChildStart);
        using var view = new PipeFileView(name);

        b.Dispose();
        Assert.AreEqual(0, view.Closed(PipeDescriptor.ConnectorEnd), "two holders are left");
        Assert.IsTrue(a.IsPeerConnected);
        Assert.IsFalse(a.TryReceive(out _, TimeSpan.FromMilliseconds(150)), "still connected: a receive times out");

        first.WriteLine("close");
        first.WaitForLine("CLOSED", ChildStart);
        Assert.AreEqual(0, view.Closed(PipeDescriptor.ConnectorEnd), "one holder is left");
        Assert.IsTrue(a.IsPeerConnected);
        Assert.IsFalse(a.TryReceive(out _, TimeSpan.FromMilliseconds(150)), "still connected: a receive times out");

        second.Kill9();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        Assert.ThrowsExactly<ShmPeerClosedException>(() => a.TryReceive(out _, Generous));
        Assert.IsTrue(clock.Elapsed < DeathBound, $"the last holder's death noticed in {clock.Elapsed}");
        Assert.IsFalse(a.IsPeerConnected);
    }

    [TestMethod]
    public void The_last_holder_to_close_a_shared_end_closes_it_for_the_peer()
    {
        using var pair = new PipePair("sh-last", share: true);
        ShmConnection c = ShmConnection.AcquireHandover(pair.B.Share(), TestPipes.Options());
        using var view = new PipeFileView(pair.Name);
        pair.B.Dispose();
        Assert.AreEqual(0, view.Closed(PipeDescriptor.ConnectorEnd));
        c.Send([5]);
        CollectionAssert.AreEqual(new byte[] { 5 }, pair.A.Receive());
        c.Dispose();
        Assert.AreEqual(1, view.Closed(PipeDescriptor.ConnectorEnd));
        Assert.ThrowsExactly<ShmPeerClosedException>(() => pair.A.Receive());
    }

    [TestMethod]
    public void A_shared_end_takes_at_most_MaxHolders_holders_and_says_so()
    {
        using var pair = new PipePair("sh-full", share: true);
        for (int i = 1; i < PipeDescriptor.MaxHolders; i++)
        {
            _ = pair.B.Share(); // pending tokens count as holders
        }

        var e = Assert.ThrowsExactly<InvalidOperationException>(() => pair.B.Share());
        StringAssert.Contains(e.Message, pair.Name);
        StringAssert.Contains(e.Message, PipeDescriptor.MaxHolders.ToString(CultureInfo.InvariantCulture));
    }

    [TestMethod]
    public void A_share_token_is_used_once_and_a_malformed_one_is_refused()
    {
        using var pair = new PipePair("sh-tok", share: true);
        string token = pair.B.Share();
        using ShmConnection c = ShmConnection.AcquireHandover(token, TestPipes.Options());
        Assert.ThrowsExactly<InvalidOperationException>(() => ShmConnection.AcquireHandover(token, TestPipes.Options()));
        string[] parts = token.Split(':');
        Assert.ThrowsExactly<FormatException>(() => ShmConnection.AcquireHandover(string.Join(':', parts[0], parts[1], "99", parts[3], parts[4], parts[5])));
        Assert.ThrowsExactly<FormatException>(() => ShmConnection.AcquireHandover(string.Join(':', parts[0], parts[1], "1", "0000000000000021", parts[4], parts[5])));
        Assert.ThrowsExactly<FormatException>(() => ShmConnection.AcquireHandover(string.Join(':', parts[0], parts[1], parts[2], parts[3], "7", parts[5])));
    }

    [TestMethod]
    public void Corrupt_lock_holder_position_and_flag_words_of_a_shared_end_are_refused()
    {
        using var pair = new PipePair("sh-bad", share: true);
        _ = pair.B.Share();
        using var view = new PipeFileView(pair.Name);
        int sendRing = 1 - PipeDescriptor.ConnectorEnd;
        byte* sendLock = view.RingControl(sendRing) + SpscRingDescriptor.SendLockOffset;
        byte* receiveLock = view.RingControl(PipeDescriptor.ConnectorEnd) + SpscRingDescriptor.ReceiveLockOffset;

        // A lock word that is neither 0 nor an identity word.
        MappedAtomics.WriteInt64Release(sendLock, unchecked((long)0xDEAD_BEEF_0000_0004UL));
        Assert.ThrowsExactly<ShmCorruptionException>(() => pair.B.Send([1]));
        MappedAtomics.WriteInt64Release(sendLock, 0);
        MappedAtomics.WriteInt64Release(receiveLock, 7);
        pair.A.Send([1]);
        Assert.ThrowsExactly<ShmCorruptionException>(() => pair.B.Receive());
        MappedAtomics.WriteInt64Release(receiveLock, 0);
        CollectionAssert.AreEqual(new byte[] { 1 }, pair.B.Receive(), "nothing was consumed by the refused receive");

        // A Tail far beyond Head: the shared producer reloads and checks it before writing anything.
        byte* tailWord = view.RingControl(sendRing) + SpscRingDescriptor.TailOffset;
        long tail = view.Tail(sendRing);
        MappedAtomics.WriteInt64Release(tailWord, tail + (1L << 40));
        Assert.ThrowsExactly<ShmCorruptionException>(() => pair.B.Send([2]));
        MappedAtomics.WriteInt64Release(tailWord, tail + 4);
        Assert.ThrowsExactly<ShmCorruptionException>(() => pair.B.Send([2]));
        MappedAtomics.WriteInt64Release(tailWord, tail);
        pair.B.Send([3]);
        CollectionAssert.AreEqual(new byte[] { 3 }, pair.A.Receive());

        // A Head misaligned under a shared consumer.
        byte* headWord = view.RingControl(PipeDescriptor.ConnectorEnd) + SpscRingDescriptor.HeadOffset;
        long head = view.Head(PipeDescriptor.ConnectorEnd);
        pair.A.Send([4]);
        MappedAtomics.WriteInt64Release(headWord, head + 3);
        Assert.ThrowsExactly<ShmCorruptionException>(() => pair.B.Receive());
        MappedAtomics.WriteInt64Release(headWord, head);
        CollectionAssert.AreEqual(new byte[] { 4 }, pair.B.Receive());

        // A holder word that is none of 0, an identity or a token: the peer's liveness check refuses it.
        byte* holder = PipeDescriptor.Holder(view.Control + PipeDescriptor.EndSlotOffset(PipeDescriptor.ConnectorEnd), PipeDescriptor.MaxHolders - 1);
        MappedAtomics.WriteInt64Release(holder, 0x7F);
        Assert.ThrowsExactly<ShmCorruptionException>(() => _ = pair.A.IsPeerConnected);
        MappedAtomics.WriteInt64Release(holder, 0);

        // Unknown Flags bits: the pipe is refused when opened.
        byte* flags = view.Control + PipeDescriptor.FlagsOffset;
        int before = *(int*)flags;
        *(int*)flags = before | 0x100;
        Assert.ThrowsExactly<ShmInvalidSegmentException>(() => ShmPipe.Connect(pair.Name, TestPipes.Options()));
        *(int*)flags = before;
    }

    [TestMethod]
    public void An_end_never_shared_keeps_its_exclusive_layout()
    {
        using var pair = new PipePair("sh-excl");
        using var view = new PipeFileView(pair.Name);
        pair.B.Send([1]);
        pair.A.Receive();
        Assert.IsFalse(pair.B.IsShared);
        Assert.AreEqual(0, *(int*)(view.Control + PipeDescriptor.FlagsOffset));
        Assert.IsTrue(ProcessIdentity.IsIdentityWord(view.Owner(PipeDescriptor.ConnectorEnd)));
        Assert.AreEqual(0, MappedAtomics.ReadInt64Acquire(view.RingControl(0) + SpscRingDescriptor.SendLockOffset));
        _ = pair.B.Share();
        Assert.IsTrue(pair.B.IsShared);
        Assert.AreEqual(PipeDescriptor.SharedEndFlag(PipeDescriptor.ConnectorEnd), *(int*)(view.Control + PipeDescriptor.FlagsOffset));
        Assert.AreEqual(PipeDescriptor.SharedOwnerWord, view.Owner(PipeDescriptor.ConnectorEnd));
        Assert.IsFalse(pair.A.IsShared, "the other end stays exclusive");
    }

    [TestMethod]
    public void The_creators_end_shared_with_a_child_is_removed_by_its_last_holder_even_after_the_parent_closed_its_copy()
    {
        // Python's idiom: start the child with the end, close the parent's copy at once.
        string name = TestNames.Unique("sh-unl");
        ShmConnection a = ShmPipe.Create(name, TestPipes.Options());
        using ShmConnection b = ShmPipe.Connect(name, TestPipes.Options());
        string token = a.Share();
        a.Dispose();
        Assert.AreNotEqual(0, TestNames.ShmFilesOf(name).Length, "a token not yet used keeps the names");
        using (ChildProcess child = ChildProcess.StartReady("pipe-shared-attach-hold", token))
        {
            b.Send([6]);
            Assert.IsTrue(b.IsPeerConnected);
            child.WriteLine("close");
            child.WaitForLine("CLOSED", ChildStart);
        }

        Assert.ThrowsExactly<ShmPeerClosedException>(() => b.Receive());
        Assert.AreEqual(0, TestNames.ShmFilesOf(name).Length, "the last holder of the creator's end removed the names");
    }
}
