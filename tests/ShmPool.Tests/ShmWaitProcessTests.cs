using System.Diagnostics;

namespace ShmIpc.Pool.Tests;

/// <summary>ShmWait over a queue fed by a child process, a pipe end and that child itself (Python's connection.wait with a sentinel).</summary>
[TestClass]
public sealed class ShmWaitProcessTests : PoolTestBase
{
    private static readonly TimeSpan Deadline = TestSupport.Deadline;

    [TestMethod]
    public void WaitAny_over_a_queue_a_pipe_end_and_a_process_returns_the_index_of_each_as_it_becomes_ready()
    {
        string prefix = $"shmpool-{Environment.ProcessId}-test-{Guid.NewGuid():N}";
        using ShmQueue output = ShmQueue.Create(prefix + "-out");
        using ShmQueue commands = ShmQueue.Create(prefix + "-cmd");
        using ShmConnection mine = ShmPipe.Create(prefix + "-pipe");
        using ShmConnection theirs = ShmPipe.Connect(prefix + "-pipe");
        using ShmProcess child = Track(ShmProcess.Start<(ShmQueue, ShmQueue), int>(HandleFunctions.ServeCommands, (commands, output)));
        IShmWaitable[] items = [output, mine, child];

        // Nothing is ready: -1, after the timeout.
        var stopwatch = Stopwatch.StartNew();
        Assert.AreEqual(-1, ShmWait.WaitAny(items, TimeSpan.FromMilliseconds(200)));
        Assert.IsGreaterThanOrEqualTo(TimeSpan.FromMilliseconds(190), stopwatch.Elapsed);
        Assert.IsEmpty(ShmWait.WaitReady(items, TimeSpan.Zero));

        // The queue, fed by the child while we wait.
        commands.Enqueue([1]);
        Assert.AreEqual(0, ShmWait.WaitAny(items, Deadline));
        Assert.AreEqual(1, output.Count, "looking consumes nothing");
        CollectionAssert.AreEqual(new byte[] { 42 }, output.Dequeue(Deadline));

        // The pipe end, sent to by another thread while we wait.
        using var sender = Task.Run(() => theirs.Send([7]));
        Assert.AreEqual(1, ShmWait.WaitAny(items, Deadline));
        CollectionAssert.AreEqual(new byte[] { 7 }, mine.Receive(), "the message is still there for the receive");
        Assert.AreEqual(-1, ShmWait.WaitAny(items, TimeSpan.FromMilliseconds(50)), "the child still runs; nothing else is ready");

        // The process, once it has exited.
        commands.Enqueue([0]);
        Assert.AreEqual(2, ShmWait.WaitAny(items, Deadline));
        Assert.IsFalse(child.IsAlive);
        Assert.AreEqual(0, child.ExitCode);
        CollectionAssert.AreEqual(new IShmWaitable[] { child }, ShmWait.WaitReady(items, TimeSpan.Zero).ToArray());
    }
}
