using System.Diagnostics;
using ShmIpc.Tests.Common;

namespace ShmIpc.Tests;

/// <summary>Awaited pipe calls against a real child process (tests/ShmTestHost/PipeScenarios.cs).</summary>
[TestClass]
public sealed class AsyncProcessTests
{
    private static readonly TimeSpan ChildStart = TimeSpan.FromSeconds(20);

    [TestMethod]
    public async Task An_awaited_receive_completes_when_a_child_process_sends()
    {
        string name = TestNames.Unique("apx");
        using (ShmConnection a = ShmPipe.Create(name, AsyncModelTests.Options()))
        using (ChildProcess child = ChildProcess.Start("pipe-echo", name))
        {
            child.WaitForLine("READY", ChildStart);
            for (int i = 0; i < 50; i++)
            {
                // The receive is pending before the request leaves: the child's post wakes the waiter thread.
                ValueTask<byte[]> reply = a.ReceiveAsync();
                await a.SendAsync(BitConverter.GetBytes(i));
                Assert.AreEqual(i, BitConverter.ToInt32(await reply.AsTask().WaitAsync(ChildStart)));
            }

            a.Dispose();
            Assert.AreEqual("PEER-CLOSED", child.WaitForLine("PEER-CLOSED", ChildStart));
            Assert.AreEqual(0, child.WaitForExit(ChildStart), child.StandardError);
        }

        Assert.AreEqual(0, TestNames.ShmFilesOf(name).Length);
    }

    [TestMethod]
    public async Task A_peer_killed_with_SIGKILL_faults_a_pending_ReceiveAsync()
    {
        string name = TestNames.Unique("apk");
        using (ShmConnection a = ShmPipe.Create(name, AsyncModelTests.Options()))
        using (ChildProcess child = ChildProcess.Start("pipe-send-hold", name, "0"))
        {
            child.WaitForLine("READY", ChildStart);
            Task<byte[]> receive = a.ReceiveAsync().AsTask();
            Assert.AreNotSame(receive, await Task.WhenAny(receive, Task.Delay(50)), "the receive waits");
            var clock = Stopwatch.StartNew();
            child.Kill9();
            var e = await Assert.ThrowsExactlyAsync<ShmPeerClosedException>(() => receive.WaitAsync(ChildStart));
            StringAssert.Contains(e.Message, child.Pid.ToString(System.Globalization.CultureInfo.InvariantCulture));
            Assert.IsTrue(clock.Elapsed < TimeSpan.FromSeconds(2), $"noticed after {clock.Elapsed}");
        }

        Assert.AreEqual(0, TestNames.ShmFilesOf(name).Length);
    }
}
