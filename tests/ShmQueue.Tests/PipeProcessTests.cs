using System.Diagnostics;
using ShmIpc.Layout;
using ShmIpc.Tests.Common;

namespace ShmIpc.Tests;

/// <summary>
/// The pipe between two real processes: the child side is tests/ShmTestHost/PipeScenarios.cs
/// (each scenario named here is run there, in the other process).
/// </summary>
[TestClass]
public sealed class PipeProcessTests
{
    private static readonly TimeSpan ChildStart = TimeSpan.FromSeconds(20);

    /// <summary>A dead peer must be noticed within one 50 ms sleep slice; this is that plus room for a loaded machine.</summary>
    private static readonly TimeSpan DeathBound = TimeSpan.FromSeconds(2);

    [TestMethod]
    public void Echo_across_processes_for_every_size_from_empty_to_the_maximum_with_wrap_around()
    {
        using (var pipe = new TempPipe("p-echo", TestPipes.Options(capacity: 4096, maxMessageLength: SpscRingDescriptor.MaxMessageLengthFor(4096))))
        using (ChildProcess child = ChildProcess.StartReady("pipe-echo", pipe.Name))
        {
            ShmConnection a = pipe.A;
            int max = a.MaxMessageLength;
            var buffer = new byte[max];
            long bytes = 0;
            for (int i = 0; i < 2000; i++)
            {
                int length = PipeMessages.LengthOf(i, max);
                a.Send(PipeMessages.Make(i, length));
                Assert.AreEqual(length, a.ReceiveInto(buffer), $"message {i}");
                Assert.IsTrue(PipeMessages.Matches(i, buffer.AsSpan(0, length)), $"message {i} content");
                bytes += length;
            }

            for (int length = 0; length <= max; length += 61)
            {
                a.Send(PipeMessages.Make(length, length));
                CollectionAssert.AreEqual(PipeMessages.Make(length, length), a.Receive());
            }

            Assert.IsTrue(bytes > 100 * 4096, "many wraps");
            a.Dispose();
            Assert.AreEqual("PEER-CLOSED", child.WaitForLine("PEER-CLOSED", ChildStart));
            Assert.AreEqual(0, child.WaitForExit(ChildStart), child.StandardError);
        }
    }

    [TestMethod]
    public void Both_processes_sending_many_times_the_capacity_at_once_do_not_deadlock()
    {
        const int Count = 3000;
        using (var pipe = new TempPipe("p-blast", TestPipes.Options(capacity: 4096)))
        using (ChildProcess child = ChildProcess.StartReady("pipe-blast", pipe.Name, Count.ToString(System.Globalization.CultureInfo.InvariantCulture)))
        {
            ShmConnection a = pipe.A;
            Exception? failure = null;
            var sender = new Thread(() =>
            {
                try
                {
                    for (int i = 0; i < Count; i++)
                    {
                        a.Send(PipeMessages.Make(i, PipeMessages.LengthOf(i, a.MaxMessageLength)));
                    }
                }
                catch (Exception e)
                {
                    failure = e;
                }
            });
            sender.Start();
            long bytes = 0;
            for (int i = 0; i < Count; i++)
            {
                Assert.IsTrue(a.TryReceive(out byte[] message, ChildStart), $"message {i} arrived");
                Assert.AreEqual(PipeMessages.LengthOf(i, a.MaxMessageLength), message.Length);
                Assert.IsTrue(PipeMessages.Matches(i, message));
                bytes += message.Length;
            }

            Assert.IsTrue(sender.Join(ChildStart), "our sender finished");
            Assert.IsNull(failure, failure?.ToString());
            Assert.IsTrue(bytes > 50 * 4096, "far more than the capacity each way");
            Assert.AreEqual("DONE", child.WaitForLine("DONE", ChildStart), child.StandardError);
            Assert.AreEqual(0, child.WaitForExit(ChildStart));
        }
    }

    [TestMethod]
    public void A_peer_killed_while_we_are_blocked_in_receive_ends_it_with_ShmPeerClosedException_in_bound()
    {
        using (var pipe = new TempPipe("p-kill", TestPipes.Options()))
        using (var view = new PipeFileView(pipe.Name))
        using (ChildProcess child = ChildProcess.StartReady("pipe-send-hold", pipe.Name, "0"))
        {
            ShmConnection a = pipe.A;
            Assert.IsTrue(a.IsPeerConnected);
            var receiver = BlockedCall.Start(() => a.Receive());
            Until.True(() => view.DataSleepers(0) > 0, ChildStart, "our receive sleeps");

            long killedAt = Stopwatch.GetTimestamp();
            child.Kill9();
            Assert.IsTrue(receiver.Join(ChildStart), "the receive ended");
            Assert.IsInstanceOfType<ShmPeerClosedException>(receiver.Exception, receiver.Exception?.ToString());
            StringAssert.Contains(receiver.Exception.Message, child.Pid.ToString(System.Globalization.CultureInfo.InvariantCulture));
            TimeSpan took = Stopwatch.GetElapsedTime(killedAt, receiver.EndedAt);
            Assert.IsTrue(took < DeathBound, $"noticed after {took}");
            Assert.IsFalse(a.IsPeerConnected);
            Assert.ThrowsExactly<ShmPeerClosedException>(() => a.Send([1]));
        }
    }

    [TestMethod]
    public void Zero_timeout_receives_alone_notice_a_killed_peer_in_bound()
    {
        // A spinning receiver polls with TimeSpan.Zero (no clock read per poll): the peer's death must still
        // surface from those polls, as a blocked receive's would, once the empty pipe is drained.
        using (var pipe = new TempPipe("p-kill0", TestPipes.Options()))
        {
            (string name, ShmConnection a) = (pipe.Name, pipe.A);
            ChildProcess.StartReadyThenKill9("pipe-send-hold", name, "2");
            var received = new List<int>();
            var clock = Stopwatch.StartNew();
            Exception? seen = null;
            while (seen is null && clock.Elapsed < ChildStart)
            {
                try
                {
                    if (a.TryReceive(out byte[] message, TimeSpan.Zero))
                    {
                        received.Add(BitConverter.ToInt32(message));
                    }
                }
                catch (ShmPeerClosedException e)
                {
                    seen = e;
                }
            }

            Assert.IsNotNull(seen, "zero-timeout receives never reported the dead peer");
            CollectionAssert.AreEqual(new[] { 0, 1 }, received, "its messages first");
            Assert.IsTrue(clock.Elapsed < DeathBound, $"noticed after {clock.Elapsed}");
            Assert.IsTrue(a.Poll(TimeSpan.Zero), "end of file is readable");
        }
    }

    [TestMethod]
    public void Messages_a_killed_peer_sent_before_it_died_are_delivered_first()
    {
        using (var pipe = new TempPipe("p-before", TestPipes.Options()))
        {
            (string name, ShmConnection a) = (pipe.Name, pipe.A);
            ChildProcess.StartReadyThenKill9("pipe-send-hold", name, "25");
            for (int i = 0; i < 25; i++)
            {
                Assert.AreEqual(i, BitConverter.ToInt32(a.Receive()));
            }

            var clock = Stopwatch.StartNew();
            Assert.ThrowsExactly<ShmPeerClosedException>(() => a.Receive());
            Assert.IsTrue(clock.Elapsed < DeathBound, $"{clock.Elapsed}");
        }
    }

    [TestMethod]
    public void A_peer_that_closes_normally_ends_our_blocked_receive_after_its_messages()
    {
        using (var pipe = new TempPipe("p-close", TestPipes.Options()))
        using (var view = new PipeFileView(pipe.Name))
        using (ChildProcess child = ChildProcess.StartReady("pipe-send-close", pipe.Name, "3"))
        {
            ShmConnection a = pipe.A;
            var received = new List<int>();
            Exception? seen = null;
            var receiver = new Thread(() =>
            {
                try
                {
                    while (true)
                    {
                        received.Add(BitConverter.ToInt32(a.Receive()));
                    }
                }
                catch (Exception e)
                {
                    seen = e;
                }
            });
            receiver.Start();
            Until.True(() => view.DataSleepers(0) > 0, ChildStart, "our receive sleeps after the 3 messages");
            child.WriteLine("go");
            child.WaitForLine("CLOSED", ChildStart);
            Assert.IsTrue(receiver.Join(DeathBound), "the close woke the receive");
            Assert.IsInstanceOfType<ShmPeerClosedException>(seen, seen?.ToString());
            CollectionAssert.AreEqual(new[] { 0, 1, 2 }, received);
            Assert.AreEqual(1, view.Closed(PipeDescriptor.ConnectorEnd));
            Assert.AreEqual(0, child.WaitForExit(ChildStart));
        }
    }

    [TestMethod]
    public void A_second_connect_from_another_process_is_refused()
    {
        using (var pipe = new TempPipe("p-second", TestPipes.Options()))
        using (ShmConnection b = ShmPipe.Connect(pipe.Name, TestPipes.Options()))
        using (ChildProcess child = ChildProcess.Start("pipe-connect-refused", pipe.Name))
        {
            (string name, ShmConnection a) = (pipe.Name, pipe.A);
            string line = child.WaitForLine("REFUSED", ChildStart);
            StringAssert.Contains(line, name);
            Assert.AreEqual(0, child.WaitForExit(ChildStart));
            a.Send([1]);
            CollectionAssert.AreEqual(new byte[] { 1 }, b.Receive());
        }
    }

    [TestMethod]
    public void An_end_handed_over_to_another_process_works_there_and_can_come_back()
    {
        using (var pipe = new TempPipe("p-hand", TestPipes.Options()))
        {
            (string name, ShmConnection a) = (pipe.Name, pipe.A);
            ShmConnection b = ShmPipe.Connect(name, TestPipes.Options());
            a.Send(PipeMessages.Make(0, 10));
            string token = b.ReleaseForHandover();
            using (ChildProcess child = ChildProcess.StartReady("pipe-handover-echo", token, "3"))
            {
                Assert.IsTrue(a.IsPeerConnected);
                CollectionAssert.AreEqual(PipeMessages.Make(0, 10), a.Receive(), "sent before the handover, echoed by the new owner");
                for (int i = 1; i < 3; i++)
                {
                    a.Send(PipeMessages.Make(i, 100 * i));
                    CollectionAssert.AreEqual(PipeMessages.Make(i, 100 * i), a.Receive());
                }

                string back = child.WaitForLine("TOKEN ", ChildStart)["TOKEN ".Length..];
                Assert.AreEqual(0, child.WaitForExit(ChildStart));
                Assert.IsTrue(a.IsPeerConnected, "the end is in transit again, not closed, though the child exited");

                using ShmConnection returned = ShmConnection.AcquireHandover(back, TestPipes.Options());
                a.Send([42]);
                CollectionAssert.AreEqual(new byte[] { 42 }, returned.Receive());
                returned.Send([43]);
                CollectionAssert.AreEqual(new byte[] { 43 }, a.Receive());
            }
        }
    }
}
