using System.Globalization;

namespace ShmIpc.Pool.Tests;

/// <summary>
/// A ShmProcess.Start that fails after it made its pipe (and started its child) removes both: here the first message, an
/// argument longer than the ring, needs a side segment whose every candidate name is already taken by files that are not
/// ShmIpc's (a squatter, or leftovers), so the send fails with an IOException once the pipe exists.
/// </summary>
[TestClass]
public sealed class ProcessStartFailureTests : PoolTestBase
{
    [TestMethod]
    public void A_Start_that_fails_after_making_its_pipe_removes_it_its_side_segment_and_its_child()
    {
        int me = Environment.ProcessId;
        string next = NextSideSegmentName(me, out long sequence);

        // SideSegment.Create tries nine names (its sequence counter goes up by one per try) before it gives up.
        string[] planted = Enumerable.Range(1, 12)
            .Select(i => $"/dev/shm/{next}{(sequence + i).ToString(CultureInfo.InvariantCulture)}")
            .ToArray();
        int[] before = ShmProcess.ActiveChildren().Select(static c => c.Pid).ToArray();
        try
        {
            foreach (string path in planted)
            {
                File.WriteAllText(path, "not a ShmIpc segment");
            }

            // 3 MiB does not fit the 4 MiB ring's 2 MiB message limit: it needs a side segment, after the pipe is made.
            IOException e = Assert.ThrowsExactly<IOException>(() => ShmProcess.Start(TestFunctions.DoNothing, new byte[3 << 20]));
            StringAssert.Contains(e.Message, "side segment", e.ToString());
        }
        finally
        {
            foreach (string path in planted)
            {
                File.Delete(path);
            }
        }

        CollectionAssert.AreEquivalent(before, ShmProcess.ActiveChildren().Select(static c => c.Pid).ToArray(), "its child was ended");
        TestSupport.AssertNoShmFiles(); // its pipe (shmpool-<pid>-...-p<n>) and semaphores
        string[] left = Directory.GetFiles("/dev/shm", $"shmipc.side-{me}-*");
        Assert.AreEqual(0, left.Length, $"no side segment of ours is left: {string.Join(", ", left)}");
    }

    /// <summary>
    /// "shmipc.side-PID-START-" of this process and the sequence number its last side segment took: a large message through a
    /// throwaway queue makes one and shows its name.
    /// </summary>
    private static string NextSideSegmentName(int me, out long sequence)
    {
        string[] before = Directory.GetFiles("/dev/shm", $"shmipc.side-{me}-*");
        using ShmQueue queue = ShmQueue.Create(TestSupport.ShmName("side-probe"), new ShmQueueOptions { Capacity = 1 << 16 });
        queue.Enqueue(new byte[1 << 20]);
        string name = Path.GetFileName(Directory.GetFiles("/dev/shm", $"shmipc.side-{me}-*").Except(before).Single());
        int cut = name.LastIndexOf('-') + 1;
        sequence = long.Parse(name[cut..], CultureInfo.InvariantCulture);
        Assert.AreEqual(1 << 20, queue.Dequeue(TestSupport.Deadline).Length, "read, so the probe's side segment goes with the queue");
        return name[..cut];
    }
}
