using System.Diagnostics;
using ShmIpc.Tests.Common;
using static ShmIpc.Tests.InteropPaths;

namespace ShmIpc.Tests;

/// <summary>
/// Shared state against a peer written from LAYOUT §7 (Python: <see cref="InteropPythonSyncTests"/>, C: <see cref="InteropCSyncTests"/>):
/// the peer and this process contend on the same lock around the same shared memory, wake each other through the same events, and
/// each takes over the lock of the other killed with SIGKILL as abandoned.
/// </summary>
public abstract class SyncInteropTests
{
    private protected static readonly TimeSpan PeerStart = TimeSpan.FromSeconds(30);

    /// <summary>Starts the peer tool; Inconclusive when its toolchain is absent.</summary>
    private protected abstract ChildProcess Peer(params string[] args);

    [TestMethod]
    public void A_peer_process_and_dotnet_counting_under_one_lock_lose_no_increment()
    {
        const int Each = 5_000;
        string lockName = TestNames.Unique("ipy-lock"), memName = TestNames.Unique("ipy-mem");
        using ShmLock lk = ShmLock.Create(lockName);
        using ShmSharedMemory memory = ShmSharedMemory.Create(memName, 8);
        using ChildProcess peer = Peer("lock-count", lockName, memName, S(Each));
        peer.WaitForLine("READY", PeerStart);
        for (int i = 0; i < Each; i++)
        {
            lk.Acquire();
            Span<long> counter = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, long>(memory.Span);
            counter[0]++;
            lk.Release();
        }

        peer.WaitForLine("DONE", PeerStart);
        Assert.AreEqual(0, peer.WaitForExit(PeerStart), peer.StandardError);
        Assert.AreEqual(2L * Each, BitConverter.ToInt64(memory.Span));
    }

    [TestMethod]
    public void Dotnet_and_the_peer_wake_each_other_through_events()
    {
        const int Rounds = 200;
        string pingName = TestNames.Unique("ipy-ping"), pongName = TestNames.Unique("ipy-pong");
        var options = new ShmEventOptions { AutoReset = true, WaitStrategy = ShmWaitStrategy.NoSpin };
        using ShmEvent ping = ShmEvent.Create(pingName, options: options);
        using ShmEvent pong = ShmEvent.Create(pongName, options: options);
        using ChildProcess peer = Peer("event-pong", pingName, pongName, S(Rounds));
        peer.WaitForLine("READY", PeerStart);
        for (int i = 0; i < Rounds; i++)
        {
            ping.Set();
            Assert.IsTrue(pong.Wait(TimeSpan.FromSeconds(10)), $"round {i}: no pong");
        }

        peer.WaitForLine("DONE", PeerStart);
        Assert.AreEqual(0, peer.WaitForExit(PeerStart), peer.StandardError);
    }

    [TestMethod]
    public void A_peer_holder_SIGKILLed_is_taken_over_by_dotnet_as_abandoned()
    {
        string name = TestNames.Unique("ipy-dead");
        using ShmLock lk = ShmLock.Create(name);
        using (ChildProcess peer = Peer("lock-hold", name))
        {
            peer.WaitForLine("READY", PeerStart);
            Assert.IsFalse(lk.TryAcquire(TimeSpan.FromMilliseconds(200)), "a live peer holder holds it");
            peer.Kill9();
        }

        var clock = Stopwatch.StartNew();
        Assert.ThrowsExactly<ShmLockAbandonedException>(() => lk.Acquire());
        Assert.IsTrue(clock.ElapsedMilliseconds < 500, $"{clock.ElapsedMilliseconds} ms");
        Assert.IsTrue(lk.IsHeldByCurrentProcess);
        lk.Release();
    }

    [TestMethod]
    public void The_peer_takes_over_the_lock_of_a_SIGKILLed_dotnet_holder_as_abandoned()
    {
        string name = TestNames.Unique("ipy-dead2");
        using ShmLock lk = ShmLock.Create(name);
        int holderPid;
        using (ChildProcess holder = ChildProcess.StartReady("lock-hold", name))
        {
            holderPid = holder.Pid;
            holder.Kill9();
        }

        using ChildProcess peer = Peer("lock-acquire", name);
        string line = peer.WaitForLine("ABANDONED", PeerStart);
        Assert.IsTrue(line == "ABANDONED" || line == $"ABANDONED {holderPid}", line);
        Assert.AreEqual(0, peer.WaitForExit(PeerStart), peer.StandardError);
        Assert.IsTrue(lk.TryAcquire(TimeSpan.Zero), "the peer released it");
        lk.Release();
    }

    [TestMethod]
    public void Dotnet_and_the_peer_pass_counts_through_one_semaphore()
    {
        string name = TestNames.Unique("ipy-sem");
        using ShmSemaphore semaphore = ShmSemaphore.Create(name, 0, 10);
        using ChildProcess peer = Peer("semaphore-take-release", name, "3", "2");
        peer.WaitForLine("READY", PeerStart);
        Until.True(() => semaphore.Sleepers > 0, PeerStart, "the peer sleeps on the semaphore");
        Assert.AreEqual(0, semaphore.Release(3));
        Assert.AreEqual("TOOK 3", peer.WaitForLine("TOOK", PeerStart));
        peer.WaitForLine("DONE", PeerStart);
        Assert.AreEqual(0, peer.WaitForExit(PeerStart), peer.StandardError);
        Assert.AreEqual(2, semaphore.CurrentCount, "the peer released two");
        Assert.IsTrue(semaphore.TryWait(TimeSpan.Zero) && semaphore.TryWait(TimeSpan.Zero));
        Assert.IsFalse(semaphore.TryWait(TimeSpan.Zero));
    }
}

/// <summary>Shared state against the Python peer (native-notes/python/shmipc.py). Inconclusive only without python3.</summary>
[TestClass]
[TestCategory("Interop")]
public sealed class InteropPythonSyncTests : SyncInteropTests
{
    private protected override ChildProcess Peer(params string[] args)
    {
        if (Run("python3", "--version") is null)
        {
            Assert.Inconclusive("Python interop skipped: no python3 on PATH");
        }

        return ChildProcess.StartProgram("python3", [Path.Combine(NativeNotes, "python", "shmipc_tool.py"), .. args]);
    }
}

/// <summary>Shared state against the C peer (native-notes/c), compiled into a temporary directory. Inconclusive only without cc.</summary>
[TestClass]
[TestCategory("Interop")]
public sealed class InteropCSyncTests : SyncInteropTests
{
    private static string? s_dir;
    private static string? s_tool;

    [ClassInitialize]
    public static void CompileTool(TestContext context)
    {
        if (Run("cc", "--version") is null)
        {
            return;
        }

        s_dir = Directory.CreateTempSubdirectory("shmipc-interop-csync-").FullName;
        string tool = Path.Combine(s_dir, "shmipc_tool");
        string c = Path.Combine(NativeNotes, "c");
        (int code, string output) = Run("cc", "-std=c11", "-O2", "-Wall", "-Wextra", "-pthread", "-o", tool,
            Path.Combine(c, "shmipc.c"), Path.Combine(c, "shmipc_tool.c"))!.Value;
        Assert.AreEqual(0, code, $"cc failed to build the C peer:\n{output}");
        Assert.IsFalse(output.Contains("warning", StringComparison.Ordinal), $"the C peer must build warning-free:\n{output}");
        s_tool = tool;
    }

    [ClassCleanup]
    public static void RemoveTool()
    {
        if (s_dir is not null)
        {
            Directory.Delete(s_dir, recursive: true);
        }
    }

    private protected override ChildProcess Peer(params string[] args)
    {
        if (s_tool is null)
        {
            Assert.Inconclusive("C interop skipped: no C compiler (cc) on PATH");
        }

        return ChildProcess.StartProgram(s_tool!, args);
    }
}
