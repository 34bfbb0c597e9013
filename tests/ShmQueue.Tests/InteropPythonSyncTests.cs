using System.Diagnostics;
using ShmIpc.Tests.Common;
using static ShmIpc.Tests.InteropPaths;

namespace ShmIpc.Tests;

/// <summary>
/// Shared state against the Python peer (native-notes/python/shmipc.py, LAYOUT §7): a Python process and this one contend on
/// the same lock around the same shared memory, wake each other through the same events, and a Python holder killed with
/// SIGKILL is taken over by .NET as abandoned. Inconclusive only without python3.
/// </summary>
[TestClass]
[TestCategory("Interop")]
public sealed class InteropPythonSyncTests
{
    private static readonly TimeSpan PeerStart = TimeSpan.FromSeconds(30);

    private static ChildProcess Peer(params string[] args)
    {
        if (Run("python3", "--version") is null)
        {
            Assert.Inconclusive("Python interop skipped: no python3 on PATH");
        }

        return ChildProcess.StartProgram("python3", [Path.Combine(NativeNotes, "python", "shmipc_tool.py"), .. args]);
    }

    [TestMethod]
    public void A_python_process_and_dotnet_counting_under_one_lock_lose_no_increment()
    {
        const int Each = 5_000;
        string lockName = TestNames.Unique("ipy-lock"), memName = TestNames.Unique("ipy-mem");
        using ShmLock lk = ShmLock.Create(lockName);
        using ShmSharedMemory memory = ShmSharedMemory.Create(memName, 8);
        using ChildProcess python = Peer("lock-count", lockName, memName, S(Each));
        python.WaitForLine("READY", PeerStart);
        for (int i = 0; i < Each; i++)
        {
            lk.Acquire();
            Span<long> counter = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, long>(memory.Span);
            counter[0]++;
            lk.Release();
        }

        python.WaitForLine("DONE", PeerStart);
        Assert.AreEqual(0, python.WaitForExit(PeerStart), python.StandardError);
        Assert.AreEqual(2L * Each, BitConverter.ToInt64(memory.Span));
    }

    [TestMethod]
    public void Dotnet_and_python_wake_each_other_through_events()
    {
        const int Rounds = 200;
        string pingName = TestNames.Unique("ipy-ping"), pongName = TestNames.Unique("ipy-pong");
        var options = new ShmEventOptions { AutoReset = true, WaitStrategy = ShmWaitStrategy.NoSpin };
        using ShmEvent ping = ShmEvent.Create(pingName, options: options);
        using ShmEvent pong = ShmEvent.Create(pongName, options: options);
        using ChildProcess python = Peer("event-pong", pingName, pongName, S(Rounds));
        python.WaitForLine("READY", PeerStart);
        for (int i = 0; i < Rounds; i++)
        {
            ping.Set();
            Assert.IsTrue(pong.Wait(TimeSpan.FromSeconds(10)), $"round {i}: no pong");
        }

        python.WaitForLine("DONE", PeerStart);
        Assert.AreEqual(0, python.WaitForExit(PeerStart), python.StandardError);
    }

    [TestMethod]
    public void A_python_holder_SIGKILLed_is_taken_over_by_dotnet_as_abandoned()
    {
        string name = TestNames.Unique("ipy-dead");
        using ShmLock lk = ShmLock.Create(name);
        using (ChildProcess python = Peer("lock-hold", name))
        {
            python.WaitForLine("READY", PeerStart);
            Assert.IsFalse(lk.TryAcquire(TimeSpan.FromMilliseconds(200)), "a live Python holder holds it");
            python.Kill9();
        }

        var clock = Stopwatch.StartNew();
        Assert.ThrowsExactly<ShmLockAbandonedException>(() => lk.Acquire());
        Assert.IsTrue(clock.ElapsedMilliseconds < 500, $"{clock.ElapsedMilliseconds} ms");
        Assert.IsTrue(lk.IsHeldByCurrentProcess);
        lk.Release();
    }

    [TestMethod]
    public void Python_takes_over_the_lock_of_a_SIGKILLed_dotnet_holder_as_abandoned()
    {
        string name = TestNames.Unique("ipy-dead2");
        using ShmLock lk = ShmLock.Create(name);
        int holderPid;
        using (ChildProcess holder = ChildProcess.Start("lock-hold", name))
        {
            holder.WaitForLine("READY", PeerStart);
            holderPid = holder.Pid;
            holder.Kill9();
        }

        using ChildProcess python = Peer("lock-acquire", name);
        Assert.AreEqual($"ABANDONED {holderPid}", python.WaitForLine("ABANDONED", PeerStart));
        Assert.AreEqual(0, python.WaitForExit(PeerStart), python.StandardError);
        Assert.IsTrue(lk.TryAcquire(TimeSpan.Zero), "Python released it");
        lk.Release();
    }
}
