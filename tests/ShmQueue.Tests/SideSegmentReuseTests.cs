using ShmIpc.Tests.Common;

namespace ShmIpc.Tests;

/// <summary>
/// A sender keeps several side segments: large messages in flight at once (sent, not yet read) each get a segment, and
/// once read, the next messages reuse those instead of fresh memory (~10 µs per new page on these machines).
/// </summary>
[TestClass]
public sealed class SideSegmentReuseTests
{
    [TestMethod]
    public void Two_large_messages_in_flight_at_a_time_reuse_two_side_segments_round_after_round()
    {
        const int Length = 2 << 20;
        int me = Environment.ProcessId;
        string[] before = LargeMessages.SideFilesOf(me);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        using (ShmQueue queue = ShmQueue.Create(TestNames.Unique("side-reuse"), new ShmQueueOptions { Capacity = 1 << 16 }))
        {
            for (int round = 0; round < 4; round++)
            {
                for (int k = 0; k < 2; k++)
                {
                    queue.Enqueue(LargeMessages.Make(round, k, Length));
                    seen.UnionWith(LargeMessages.SideFilesOf(me).Except(before));
                }

                for (int k = 0; k < 2; k++)
                {
                    byte[] message = queue.Dequeue(TimeSpan.FromSeconds(10));
                    Assert.AreEqual((round, k), LargeMessages.Check(message), $"round {round}");
                }
            }

            Assert.AreEqual(2, seen.Count, $"two segments made, then reused: {string.Join(", ", seen)}");
        }

        CollectionAssert.AreEquivalent(before, LargeMessages.SideFilesOf(me), "they go with the queue");
    }
}
