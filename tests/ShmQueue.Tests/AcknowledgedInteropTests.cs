using System.Globalization;
using ShmIpc.Tests.Common;
using static ShmIpc.Tests.InteropPaths;

namespace ShmIpc.Tests;

/// <summary>The Python and C peers take, nack and ack on an acknowledged queue made by .NET (LAYOUT.md §6.10).</summary>
[TestClass]
[TestCategory("Interop")]
public sealed class AcknowledgedInteropTests
{
    private const string Script = """
        import sys
        sys.path.insert(0, sys.argv[1])
        import shmipc
        q = shmipc.Queue.open(sys.argv[2])
        d = q.take(timeout=10)
        print("first", d.data[0], d.delivery_count)
        d.nack()
        d = q.take(timeout=10)
        print("again", d.data[0], d.delivery_count)
        d.ack()
        d = q.take(timeout=10)
        print("next", d.data[0], d.delivery_count)
        print("hold", flush=True)
        sys.stdin.readline()
        """;

    [TestMethod]
    public void The_c_peer_takes_nacks_and_acks_and_its_held_message_comes_back_when_it_is_killed()
    {
        string dir = Directory.CreateTempSubdirectory("shmipc-ack-c-").FullName;
        try
        {
            string tool = Path.Combine(dir, "shmipc_tool");
            string c = Path.Combine(NativeNotes, "c");
            (int ExitCode, string Output, string Error) built;
            try
            {
                built = ChildProcess.Run("cc", ["-std=c11", "-O2", "-Wall", "-Wextra", "-pthread", "-o", tool, Path.Combine(c, "shmipc.c"), Path.Combine(c, "shmipc_tool.c")],
                    TimeSpan.FromMinutes(2));
            }
            catch (System.ComponentModel.Win32Exception)
            {
                Assert.Inconclusive("no C compiler (cc) on PATH");
                return;
            }

            Assert.AreEqual(0, built.ExitCode, built.Output + built.Error);
            TakeNackAckThenKill(name => ChildProcess.StartProgram(tool, ["queue-ack-demo", name]));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [TestMethod]
    public void The_python_peer_takes_nacks_and_acks_and_its_held_message_comes_back_when_it_is_killed()
    {
        (int ExitCode, string Output, string Error) probe;
        try
        {
            probe = ChildProcess.Run("python3", ["-c", "print(1)"], TimeSpan.FromSeconds(30));
        }
        catch (System.ComponentModel.Win32Exception)
        {
            Assert.Inconclusive("no python3 on PATH");
            return;
        }

        Assert.AreEqual(0, probe.ExitCode);
        TakeNackAckThenKill(name => ChildProcess.StartProgram("python3", ["-c", Script, Path.Combine(NativeNotes, "python"), name]));
    }

    /// <summary>.NET enqueues 1 and 2; the peer takes 1, nacks it, takes it again (count 2), acks, takes 2 and is killed holding it.</summary>
    private static void TakeNackAckThenKill(Func<string, ChildProcess> startPeer)
    {
        using TempSegment<ShmQueue> fixture = TempSegment.Create("qackpy", n => ShmQueue.Create(n, new ShmQueueOptions { Capacity = 1 << 14, Acknowledged = true }));
        ShmQueue queue = fixture.Object;
        queue.Enqueue([1]);
        queue.Enqueue([2]);
        using ChildProcess python = startPeer(fixture.Name);
        TimeSpan wait = TimeSpan.FromSeconds(60);
        Assert.AreEqual("first 1 1", python.WaitForLine("first", wait), python.StandardError);
        Assert.AreEqual("again 1 2", python.WaitForLine("again", wait), python.StandardError);
        Assert.AreEqual("next 2 1", python.WaitForLine("next", wait), python.StandardError);
        python.WaitForLine("hold", wait);
        Assert.AreEqual(1, queue.InFlight);

        python.Kill9();
        ShmDelivery back = queue.Take(wait);
        Assert.AreEqual(2, back.Span[0]);
        Assert.AreEqual(2, back.DeliveryCount);
        back.Ack();
        Assert.AreEqual(0, queue.UnfinishedTasks, string.Create(CultureInfo.InvariantCulture, $"count {queue.Count}"));
    }
}
