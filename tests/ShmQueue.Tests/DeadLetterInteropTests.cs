using ShmIpc.Tests.Common;
using static ShmIpc.Tests.InteropPaths;

namespace ShmIpc.Tests;

/// <summary>
/// The Python peer reads version-3 queues: it takes a dead letter with the count it carries (LAYOUT.md §6.10), and it
/// refuses a joinable queue (§6.11), whose count it does not keep.
/// </summary>
[TestClass]
[TestCategory("Interop")]
public sealed class DeadLetterInteropTests
{
    private const string Script = """
        import sys
        sys.path.insert(0, sys.argv[1])
        import shmipc
        q = shmipc.Queue.open(sys.argv[2])
        d = q.take(timeout=10)
        print("dead", d.data[0], d.delivery_count)
        d.ack()
        try:
            shmipc.Queue.open(sys.argv[3])
            print("joinable opened")
        except shmipc.InvalidSegmentError as e:
            print("joinable refused:", e)
        """;

    [TestMethod]
    public void The_python_peer_takes_a_dead_letter_with_its_count_and_refuses_a_joinable_queue()
    {
        using TempSegment<ShmQueue> joinable = TempSegment.Create("qjoinpy", n => ShmQueue.Create(n, new ShmQueueOptions { Capacity = 4096, Joinable = true }));
        using TempSegment<ShmQueue> fixture = TempSegment.Create("qdlpy", n => ShmQueue.Create(n, new ShmQueueOptions { Capacity = 1 << 14, Acknowledged = true }));
        string deadName = fixture.Name + ".dead";
        try
        {
            fixture.Object.Enqueue([5]);
            fixture.Object.Take(TimeSpan.FromSeconds(10)).Nack();
            ShmDelivery second = fixture.Object.Take(TimeSpan.FromSeconds(10));
            Assert.AreEqual(2, second.DeliveryCount);
            second.Nack(requeue: false);

            if (Run("python3", "-c", Script, Path.Combine(NativeNotes, "python"), deadName, joinable.Name) is not (int exit, string output))
            {
                Assert.Inconclusive("no python3 on PATH");
                return;
            }

            Assert.AreEqual(0, exit, output);
            StringAssert.Contains(output, "dead 5 2");
            StringAssert.Contains(output, "joinable refused:");
            StringAssert.Contains(output, "feature bits");
            using ShmQueue dead = ShmQueue.Open(deadName);
            Assert.AreEqual(0, dead.UnfinishedTasks, "the peer acked the dead letter");
        }
        finally
        {
            fixture.Release();
            foreach (string file in TestNames.ShmFilesOf(deadName))
            {
                File.Delete(file);
            }
        }
    }
}
