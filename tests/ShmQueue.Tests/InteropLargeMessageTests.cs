using System.IO.MemoryMappedFiles;
using ShmIpc.Tests.Common;
using static ShmIpc.Tests.InteropPaths;

namespace ShmIpc.Tests;

/// <summary>
/// Messages longer than the ring between .NET and each peer (LAYOUT.md §8): a 3 MiB message goes into a side segment
/// that the sender creates and the receiver maps, checks, reads and hands back, in both directions, through a queue
/// and a pipe; no side segment is left in /dev/shm by either side.
/// </summary>
public abstract partial class ChildProcessTests
{
    private const int LargeLength = 3 << 20;

    /// <summary>Lengths around the ring's limit and past it: side segments created, reused (smaller), outgrown (larger).</summary>
    private static int[] LargeLengths(int maxMessageLength) =>
        [LargeLength, 100, maxMessageLength, maxMessageLength + 1, LargeLength - 4096, LargeLength + (1 << 20) + 17];

    private static void AssertNoSideFiles(int pid, string who) =>
        Assert.AreEqual(0, LargeMessages.SideFilesOf(pid).Length,
            $"{who}'s side segments left in /dev/shm: {string.Join(", ", LargeMessages.SideFilesOf(pid))}");

    [TestMethod]
    public void Large_messages_cross_a_queue_to_the_peer_and_back_through_side_segments()
    {
        string inName = TestNames.Unique("ic-lq-in"), outName = TestNames.Unique("ic-lq-out");
        string[] oursBefore = LargeMessages.SideFilesOf(Environment.ProcessId);
        int peerPid;
        using (ShmQueue toPeer = ShmQueue.Create(inName, new ShmQueueOptions { Capacity = 1 << 16 }))
        using (ShmQueue fromPeer = ShmQueue.Create(outName, new ShmQueueOptions { Capacity = 1 << 16 }))
        {
            int[] lengths = LargeLengths(toPeer.MaxMessageLength);
            using ChildProcess echo = Peer("queue-echo", inName, outName, S(lengths.Length), S(LargeLength + (2 << 20)));
            peerPid = echo.Pid;
            echo.WaitForLine("READY", PeerStart);
            for (int i = 0; i < lengths.Length; i++)
            {
                toPeer.Enqueue(LargeMessages.Make(1, i, lengths[i]));
                byte[] back = fromPeer.Dequeue(TimeSpan.FromSeconds(30));
                Assert.AreEqual(lengths[i], back.Length, $"message {i}");
                Assert.AreEqual((1, i), LargeMessages.Check(back), $"message {i}");
            }

            Assert.AreEqual($"ECHOED {lengths.Length} {lengths.Sum(l => (long)l)}", echo.WaitForLine("ECHOED", PeerStart));
            Assert.AreEqual(0, echo.WaitForExit(PeerStart), echo.StandardError);
        }

        AssertNoSideFiles(peerPid, "the peer");
        CollectionAssert.AreEquivalent(oursBefore, LargeMessages.SideFilesOf(Environment.ProcessId), "ours go with the queues");
        AssertClean(inName);
        AssertClean(outName);
    }

    [TestMethod]
    public void Large_messages_cross_a_pipe_to_the_peer_and_back_through_side_segments()
    {
        string name = TestNames.Unique("ic-lpipe");
        string[] oursBefore = LargeMessages.SideFilesOf(Environment.ProcessId);
        int peerPid;
        using (ShmConnection end = ShmPipe.Create(name, new ShmPipeOptions { Capacity = 1 << 16 }))
        {
            int[] lengths = LargeLengths(end.MaxMessageLength);
            using ChildProcess echo = Peer("pipe-echo", name, S(LargeLength + (2 << 20)));
            peerPid = echo.Pid;
            echo.WaitForLine("READY", PeerStart);
            for (int i = 0; i < lengths.Length; i++)
            {
                end.Send(LargeMessages.Make(2, i, lengths[i]));
                Assert.IsTrue(end.TryReceive(out byte[] back, TimeSpan.FromSeconds(30)), $"echo of {i}");
                Assert.AreEqual(lengths[i], back.Length, $"message {i}");
                Assert.AreEqual((2, i), LargeMessages.Check(back), $"message {i}");
            }

            end.Dispose();
            Assert.AreEqual($"PEER-CLOSED {lengths.Length}", echo.WaitForLine("PEER-CLOSED", PeerStart));
            Assert.AreEqual(0, echo.WaitForExit(PeerStart), echo.StandardError);
        }

        AssertNoSideFiles(peerPid, "the peer");
        CollectionAssert.AreEquivalent(oursBefore, LargeMessages.SideFilesOf(Environment.ProcessId), "ours go with the pipe");
        AssertClean(name);
    }

    [TestMethod]
    public void A_peer_refuses_a_side_segment_whose_length_lies_and_the_queue_stays_usable()
    {
        // A hostile (or broken) sender announces more bytes in the side segment than it holds: the peer must refuse it
        // (corruption, no read past the mapping), hand the segment back, and go on with the next message.
        string inName = TestNames.Unique("ic-lq-lie"), outName = TestNames.Unique("ic-lq-lie-out");
        int me = Environment.ProcessId;
        string[] oursBefore = LargeMessages.SideFilesOf(me);
        using (ShmQueue toPeer = ShmQueue.Create(inName, new ShmQueueOptions { Capacity = 1 << 16 }))
        using (ShmQueue fromPeer = ShmQueue.Create(outName, new ShmQueueOptions { Capacity = 1 << 16 }))
        {
            toPeer.Enqueue(LargeMessages.Make(3, 0, LargeLength));
            string side = LargeMessages.SideFilesOf(me).Except(oursBefore).Single();
            using (var file = MemoryMappedFile.CreateFromFile(side, FileMode.Open, null, 0, MemoryMappedFileAccess.ReadWrite))
            using (MemoryMappedViewAccessor view = file.CreateViewAccessor(0, 256))
            {
                view.Write(128 + 8, 1L << 40); // the control block's Length, far past the segment (LAYOUT.md §8.2)
            }

            using ChildProcess echo = Peer("queue-echo", inName, outName, "1", S(LargeLength + (2 << 20)));
            string line = echo.WaitForLine("ERROR", PeerStart);
            Assert.IsTrue(line.Contains("corrupt", StringComparison.OrdinalIgnoreCase), $"the peer reports the lie as corruption: {line}");
            echo.WaitForExit(PeerStart);

            // The record was consumed and its segment handed back: the next large message reuses or replaces it and flows.
            toPeer.Enqueue(LargeMessages.Make(3, 1, LargeLength));
            Assert.IsTrue(toPeer.TryDequeue(out byte[]? next), "the next message is there");
            Assert.AreEqual((3, 1), LargeMessages.Check(next));
            Assert.AreEqual(0, toPeer.Count);
            GC.KeepAlive(fromPeer);
        }

        CollectionAssert.AreEquivalent(oursBefore, LargeMessages.SideFilesOf(me), "ours go with the queue");
        AssertClean(inName);
    }
}
