using ShmIpc.Tests.Common;

namespace ShmIpc.Tests;

/// <summary>
/// A message whose side segment cannot be allocated fails its call with an IOException that names the queue and the size,
/// writes nothing, and leaves the queue usable. The failure is the kernel's, not a simulation: the sender runs under a
/// file-size limit (RLIMIT_FSIZE, which tmpfs enforces on ftruncate and posix_fallocate like a full /dev/shm), so the real
/// /dev/shm is never filled.
/// </summary>
[TestClass]
public sealed class LargeAllocationFailureTests
{
    [TestMethod]
    public void A_message_that_cannot_be_allocated_fails_with_an_IOException_naming_queue_and_size_and_the_queue_stays_usable()
    {
        const int LimitKiB = 16 << 10;   // 16 MiB: the child's files may not grow past it
        const int TooLarge = 64 << 20;   // needs a 64 MiB side segment
        const int Fits = 4 << 20;        // needs a 4 MiB one
        string name = TestNames.Unique("lq-nomem");
        using ShmQueue queue = ShmQueue.Create(name, new ShmQueueOptions { Capacity = 1 << 16 });

        // Ignored signals stay ignored across exec, so the limit makes ftruncate / posix_fallocate fail with EFBIG instead
        // of killing the child with SIGXFSZ.
        string command = $"trap '' XFSZ; ulimit -f {LimitKiB}; exec dotnet exec \"$0\" large-refused \"$1\" {TooLarge} {Fits}";
        using ChildProcess sender = ChildProcess.StartProgram("bash", ["-c", command, ChildProcess.HostPath, name],
            new Dictionary<string, string> { ["DOTNET_TieredPGO"] = "0" });
        string refused = sender.WaitForLine("REFUSED", TimeSpan.FromSeconds(60));
        StringAssert.StartsWith(refused, "REFUSED IOException: ");
        StringAssert.Contains(refused, $"'{name}'", "the message names the queue");
        StringAssert.Contains(refused, $"{TooLarge} bytes", "and the size of the message");
        StringAssert.Contains(refused, "Nothing was written");

        sender.WaitForLine("SENT", TimeSpan.FromSeconds(60));
        Assert.AreEqual(0, sender.WaitForExit(TimeSpan.FromSeconds(30)), sender.StandardError);
        Assert.AreEqual((4, 1), LargeMessages.Check(queue.Dequeue(TimeSpan.FromSeconds(10))), "the refused message left nothing behind");
        byte[] large = queue.Dequeue(TimeSpan.FromSeconds(10));
        Assert.AreEqual((4, 2), LargeMessages.Check(large));
        Assert.AreEqual(Fits, large.Length);
        Assert.IsFalse(queue.TryDequeue(out _), "nothing else was written");
        Assert.AreEqual(0, LargeMessages.SideFilesOf(sender.Pid).Length,
            $"the side segment that could not be made is not left behind: {string.Join(", ", LargeMessages.SideFilesOf(sender.Pid))}");
    }
}
