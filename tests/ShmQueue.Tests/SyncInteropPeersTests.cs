using System.Buffers.Binary;
using System.Diagnostics;
using ShmIpc.Tests.Common;
using static ShmIpc.Tests.InteropPaths;

namespace ShmIpc.Tests;

/// <summary>
/// The rest of shared state (LAYOUT §7.1-§7.2, §7.6-§7.7: Counter, Array, Value, Condition, Barrier) against a peer written from
/// LAYOUT (Python: <see cref="InteropPythonSyncPeersTests"/>, C: <see cref="InteropCSyncPeersTests"/>; all three at once:
/// <see cref="InteropMixedSyncPeersTests"/>). Each kind is created on one side and opened on the other, both ways; the peer
/// refuses corrupted control blocks with an error naming the object.
/// </summary>
public abstract class SyncInteropPeersTests
{
    private protected static readonly TimeSpan PeerStart = TimeSpan.FromSeconds(30);

    /// <summary>How long a waiter may take to notice a broken barrier: a few 100 ms sleep slices, generously.</summary>
    private protected static readonly TimeSpan Prompt = TimeSpan.FromSeconds(3);

    /// <summary>Starts the peer tool; Inconclusive when its toolchain is absent.</summary>
    private protected abstract ChildProcess Peer(params string[] args);

    [TestMethod]
    public void A_peer_and_dotnet_adding_under_a_values_lock_lose_no_increment()
    {
        const int Each = 10_000;
        string name = TestNames.Unique("ipv-value");
        using ShmValue<long> value = ShmValue<long>.Create(name);
        Assert.IsTrue(value.Lock.IsRecursive, "a value's lock is an RLock, as Python's get_lock()");
        using ChildProcess peer = Peer("value-add", name, S(Each));
        peer.WaitForLine("READY", PeerStart);
        for (int i = 0; i < Each; i++)
        {
            using (value.Lock.Hold())
            {
                value.Value++;
            }
        }

        peer.WaitForLine("DONE", PeerStart);
        Assert.AreEqual(0, peer.WaitForExit(PeerStart), peer.StandardError);
        Assert.AreEqual(2L * Each, value.Value);
    }

    [TestMethod]
    public void An_array_the_peer_created_is_read_and_updated_by_dotnet_under_its_lock()
    {
        const int Length = 1000;
        string name = TestNames.Unique("ipv-array");
        using ChildProcess peer = Peer("array-create", name, S(Length));
        peer.WaitForLine("READY", PeerStart);
        long expected = 0;
        using (ShmArray<long> array = ShmArray<long>.Open(name))
        {
            Assert.AreEqual(Length, array.Length);
            Assert.IsTrue(array.Lock.IsRecursive);
            using (array.Lock.Hold())
            using (array.Lock.Hold())
            {
                for (int i = 0; i < Length; i++)
                {
                    Assert.AreEqual((long)i * i, array[i], $"element {i} as the peer wrote it");
                    array[i]++;
                    expected += array[i];
                }
            }

            peer.WriteLine("GO");
            Assert.AreEqual($"OK {expected}", peer.WaitForLine("OK", PeerStart), "the peer saw every update");
        }

        Assert.AreEqual(0, peer.WaitForExit(PeerStart), peer.StandardError);
        Assert.AreEqual(0, TestNames.ShmFilesOf(name).Length, "the creating peer removed the array");
    }

    [TestMethod]
    public void A_counter_updated_by_the_peer_and_dotnet_at_once_is_exact()
    {
        const int Each = 20_000;
        string name = TestNames.Unique("ipv-counter");
        using ShmCounter counter = ShmCounter.Create(name);
        using (ChildProcess peer = Peer("counter-add", name, S(Each)))
        {
            peer.WaitForLine("READY", PeerStart);
            for (int i = 0; i < Each; i++)
            {
                counter.Increment();
            }

            string done = peer.WaitForLine("DONE", PeerStart);
            long last = long.Parse(done.AsSpan(5), System.Globalization.CultureInfo.InvariantCulture);
            Assert.IsTrue(last >= Each && last <= 2L * Each, done);
            Assert.AreEqual(0, peer.WaitForExit(PeerStart), peer.StandardError);
        }

        Assert.AreEqual(2L * Each, counter.Value);
        using (ChildProcess swap = Peer("counter-swap", name))
        {
            // exchange(-5) returns the total; cas(7 if -5) succeeds (returns -5); cas(9 if -5) fails (returns 7); read: 7.
            Assert.AreEqual($"SWAP {2L * Each} -5 7 7", swap.WaitForLine("SWAP", PeerStart));
            Assert.AreEqual(0, swap.WaitForExit(PeerStart), swap.StandardError);
        }

        Assert.AreEqual(7, counter.CompareExchange(long.MinValue, 7));
        Assert.AreEqual(long.MinValue, counter.Value, "a full 64-bit value written by .NET after the peer's");
    }

    [TestMethod]
    public void A_peer_notify_wakes_a_dotnet_condition_waiter()
    {
        string lockName = TestNames.Unique("ipv-clock"), condName = TestNames.Unique("ipv-cond"), flagName = TestNames.Unique("ipv-flag");
        using ShmLock lk = ShmLock.Create(lockName);
        using ShmCondition condition = ShmCondition.Create(condName, lk);
        using ShmCounter flag = ShmCounter.Create(flagName);
        Task<bool> waiter = Task.Run(() =>
        {
            lk.Acquire();
            try
            {
                bool notified = true;
                while (flag.Value == 0 && notified)
                {
                    notified = condition.Wait(PeerStart);
                }

                return notified;
            }
            finally
            {
                lk.Release();
            }
        });
        Until.True(() => condition.Waiters == 1, PeerStart, "the .NET waiter is registered on the condition");
        using ChildProcess peer = Peer("condition-notify", lockName, condName, flagName);
        Assert.AreEqual("NOTIFIED", peer.WaitForLine("NOTIFIED", PeerStart));
        Assert.IsTrue(waiter.Wait(PeerStart), "the .NET waiter woke");
        Assert.IsTrue(waiter.Result, "woken by the notification, not by its timeout");
        Assert.AreEqual(1, flag.Value);
        Assert.AreEqual(0, condition.Waiters, "the waiter left its slot");
        Assert.AreEqual(0, peer.WaitForExit(PeerStart), peer.StandardError);
    }

    [TestMethod]
    public void A_dotnet_notify_wakes_a_peer_waiter_on_a_condition_the_peer_created()
    {
        string lockName = TestNames.Unique("ipv-clock2"), condName = TestNames.Unique("ipv-cond2"), flagName = TestNames.Unique("ipv-flag2");
        using ShmLock lk = ShmLock.Create(lockName);
        using ShmCounter flag = ShmCounter.Create(flagName);
        using ChildProcess peer = Peer("condition-wait", lockName, condName, flagName, "1");
        peer.WaitForLine("READY", PeerStart);
        using (ShmCondition condition = ShmCondition.Open(condName, lk))
        {
            Until.True(() => condition.Waiters == 1, PeerStart, "the peer waits on the condition");
            using (lk.Hold())
            {
                flag.Exchange(1);
                condition.Notify();
            }

            Assert.AreEqual("WOKE 1", peer.WaitForLine("WOKE", PeerStart));
        }

        Assert.AreEqual(0, peer.WaitForExit(PeerStart), peer.StandardError);
        Assert.IsTrue(lk.TryAcquire(TimeSpan.Zero), "the peer released the lock after its wait");
        lk.Release();
    }

    [TestMethod]
    public void A_barrier_the_peer_created_completes_phases_with_dotnet()
    {
        const int Phases = 100;
        string name = TestNames.Unique("ipv-barrier");
        using ChildProcess peer = Peer("barrier-wait", name, S(Phases), "10000", "2");
        peer.WaitForLine("READY", PeerStart);
        using (ShmBarrier barrier = ShmBarrier.Open(name))
        {
            Assert.AreEqual(2, barrier.ParticipantCount);
            using var cancel = new CancellationTokenSource(PeerStart);
            for (int i = 0; i < Phases; i++)
            {
                Assert.AreEqual(i, barrier.SignalAndWait(cancel.Token), "the phase each arrival completes");
            }

            Assert.AreEqual($"DONE {Phases - 1}", peer.WaitForLine("DONE", PeerStart));
            Assert.AreEqual(Phases, barrier.CurrentPhase);
        }

        Assert.AreEqual(0, peer.WaitForExit(PeerStart), peer.StandardError);
    }

    [TestMethod]
    public void A_SIGKILLed_peer_participant_breaks_the_barrier_for_dotnet_and_peer_waiters_promptly()
    {
        string name = TestNames.Unique("ipv-bkill");
        using ShmBarrier barrier = ShmBarrier.Create(name, 3);
        using ChildProcess holder = Peer("barrier-hold", name);
        holder.WaitForLine("READY", PeerStart);
        using ChildProcess waiter = Peer("barrier-wait", name, "1", "30000", "0");
        waiter.WaitForLine("READY", PeerStart);
        Task<bool> dotnet = Task.Run(() => barrier.SignalAndWait(PeerStart));
        Until.True(() => barrier.Sleepers >= 2, PeerStart, ".NET and the peer sleep on the barrier");
        Assert.IsFalse(dotnet.IsCompleted, "a live participant that has not arrived holds the phase");
        SyncPeerTools.KillAndExpectBroken(barrier, holder, waiter, dotnet);
    }

    [TestMethod]
    public void A_SIGKILLed_dotnet_participant_breaks_the_barrier_for_a_peer_waiter_promptly()
    {
        string name = TestNames.Unique("ipv-bkill2");
        using ShmBarrier barrier = ShmBarrier.Create(name, 3);
        using ChildProcess holder = ChildProcess.Start("barrier-open-hold", name);
        holder.WaitForLine("READY", PeerStart);
        using ChildProcess waiter = Peer("barrier-wait", name, "1", "30000", "0");
        waiter.WaitForLine("READY", PeerStart);
        Until.True(() => barrier.Sleepers >= 1, PeerStart, "the peer sleeps on the barrier");
        SyncPeerTools.KillAndExpectBroken(barrier, holder, waiter, dotnet: null);
    }

    [TestMethod]
    public void A_peer_waiters_timeout_breaks_the_barrier_for_dotnet()
    {
        string name = TestNames.Unique("ipv-btime");
        using ShmBarrier barrier = ShmBarrier.Create(name, 3);
        using ChildProcess waiter = Peer("barrier-wait", name, "1", "300", "0");
        waiter.WaitForLine("READY", PeerStart);
        Task<bool> dotnet = Task.Run(() => barrier.SignalAndWait(PeerStart));
        Assert.AreEqual("TIMEOUT 0", waiter.WaitForLine("TIMEOUT", PeerStart));
        var broken = Assert.ThrowsExactly<AggregateException>(() => dotnet.Wait(Prompt));
        Assert.IsInstanceOfType<ShmBarrierBrokenException>(broken.InnerException);
        Assert.AreEqual(0, waiter.WaitForExit(PeerStart), waiter.StandardError);
    }

    [TestMethod]
    public void The_peer_refuses_corrupted_control_blocks_naming_the_object()
    {
        string array = TestNames.Unique("ipv-bad-array"), narrow = TestNames.Unique("ipv-bad-narrow"), value = TestNames.Unique("ipv-bad-value");
        string condition = TestNames.Unique("ipv-bad-cond"), barrier = TestNames.Unique("ipv-bad-barrier"), other = TestNames.Unique("ipv-bad-kind");
        using ShmArray<long> a = ShmArray<long>.Create(array, 4);
        using ShmArray<int> n = ShmArray<int>.Create(narrow, 4);
        using ShmValue<long> v = ShmValue<long>.Create(value);
        using ShmLock lk = ShmLock.Create(other);
        using ShmCondition c = ShmCondition.Create(condition, lk);
        using ShmBarrier b = ShmBarrier.Create(barrier, 2);

        AssertOpens("array8", array);
        AssertOpens("condition", condition, other);
        AssertOpens("barrier", barrier);

        Scribble(array, 8, 5); // Length 5 of 8-byte elements: 40 bytes, the data region has 32
        Scribble(value, 128 + 20, 6); // lock flags with an unknown bit
        Scribble(condition, 4, 63); // SlotCount
        Scribble(barrier, 20, 65); // ParticipantCount

        AssertRefused(array, "length 5 of 8-byte elements", "array8", array);
        AssertRefused(narrow, "elements of 4 bytes", "array8", narrow);
        AssertRefused(value, "lock flags 0x6", "value8", value);
        AssertRefused(condition, "63 slots", "condition", condition, other);
        AssertRefused(barrier, "participant count 65", "barrier", barrier);
        AssertRefused(other, "Lock segment, expected Counter", "counter", other);
    }

    private void AssertOpens(params string[] args)
    {
        using ChildProcess peer = Peer(["open-check", .. args]);
        Assert.AreEqual("OPENED", peer.ReadLine(PeerStart), string.Join(' ', args));
        Assert.AreEqual(0, peer.WaitForExit(PeerStart), peer.StandardError);
    }

    private void AssertRefused(string name, string reason, params string[] args)
    {
        using ChildProcess peer = Peer(["open-check", .. args]);
        string line = peer.ReadLine(PeerStart);
        StringAssert.StartsWith(line, "REFUSED");
        StringAssert.Contains(line, $"'{name}'", "the error names the object");
        StringAssert.Contains(line, reason);
        Assert.AreEqual(0, peer.WaitForExit(PeerStart), peer.StandardError);
    }

    /// <summary>Writes <paramref name="value"/> over the control-block word at <paramref name="controlOffset"/> (a peer gone wrong).</summary>
    private static void Scribble(string name, int controlOffset, int value)
    {
        byte[] bytes = new byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(bytes, value);
        using var file = new FileStream($"/dev/shm/shmipc.{name}", FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite);
        RandomAccess.Write(file.SafeFileHandle, bytes, 128 + controlOffset);
    }
}

/// <summary>
/// The C and Python peer tools for <see cref="SyncInteropPeersTests"/>: the C tool is compiled once per test run into a temporary
/// directory, removed when the test process exits. Inconclusive without cc or python3.
/// </summary>
internal static class SyncPeerTools
{
    private static readonly Lazy<string?> s_cTool = new(CompileC);
    private static readonly Lazy<bool> s_python = new(() => Run("python3", "--version") is not null);

    public static ChildProcess C(params string[] args)
    {
        string? tool = s_cTool.Value;
        if (tool is null)
        {
            Assert.Inconclusive("C interop skipped: no C compiler (cc) on PATH");
        }

        return ChildProcess.StartProgram(tool!, args);
    }

    public static ChildProcess Python(params string[] args)
    {
        if (!s_python.Value)
        {
            Assert.Inconclusive("Python interop skipped: no python3 on PATH");
        }

        return ChildProcess.StartProgram("python3", [Path.Combine(NativeNotes, "python", "shmipc_tool.py"), .. args]);
    }

    /// <summary>
    /// Kills <paramref name="holder"/> (a participant that never arrives) while <paramref name="waiter"/> (a peer tool in
    /// barrier-wait) and, if given, <paramref name="dotnet"/> wait: each must see the barrier broken within a few sleep slices.
    /// </summary>
    public static void KillAndExpectBroken(ShmBarrier barrier, ChildProcess holder, ChildProcess waiter, Task<bool>? dotnet)
    {
        TimeSpan prompt = TimeSpan.FromSeconds(3);
        var clock = Stopwatch.StartNew();
        holder.Kill9();
        Assert.AreEqual("BROKEN 0", waiter.WaitForLine("BROKEN", prompt));
        if (dotnet is not null)
        {
            var broken = Assert.ThrowsExactly<AggregateException>(() => dotnet.Wait(prompt));
            Assert.IsInstanceOfType<ShmBarrierBrokenException>(broken.InnerException);
        }

        Assert.IsTrue(clock.Elapsed < prompt, $"{clock.ElapsedMilliseconds} ms");
        Assert.IsTrue(barrier.IsBroken);
        Assert.AreEqual(0, waiter.WaitForExit(TimeSpan.FromSeconds(30)), waiter.StandardError);
    }

    private static string? CompileC()
    {
        if (Run("cc", "--version") is null)
        {
            return null;
        }

        string dir = Directory.CreateTempSubdirectory("shmipc-interop-cpeers-").FullName;
        AppDomain.CurrentDomain.ProcessExit += (_, _) => Directory.Delete(dir, recursive: true);
        string tool = Path.Combine(dir, "shmipc_tool");
        string c = Path.Combine(NativeNotes, "c");
        (int code, string output) = Run("cc", "-std=c11", "-O2", "-Wall", "-Wextra", "-pthread", "-o", tool,
            Path.Combine(c, "shmipc.c"), Path.Combine(c, "shmipc_tool.c"))!.Value;
        Assert.AreEqual(0, code, $"cc failed to build the C peer:\n{output}");
        Assert.IsFalse(output.Contains("warning", StringComparison.Ordinal), $"the C peer must build warning-free:\n{output}");
        return tool;
    }
}

/// <summary>Counter, Array, Value, Condition and Barrier against the Python peer (native-notes/python/shmipc.py).</summary>
[TestClass]
[TestCategory("Interop")]
public sealed class InteropPythonSyncPeersTests : SyncInteropPeersTests
{
    private protected override ChildProcess Peer(params string[] args) => SyncPeerTools.Python(args);
}

/// <summary>Counter, Array, Value, Condition and Barrier against the C peer (native-notes/c).</summary>
[TestClass]
[TestCategory("Interop")]
public sealed class InteropCSyncPeersTests : SyncInteropPeersTests
{
    private protected override ChildProcess Peer(params string[] args) => SyncPeerTools.C(args);
}

/// <summary>.NET, C and Python on the same counter and the same barrier at once.</summary>
[TestClass]
[TestCategory("Interop")]
public sealed class InteropMixedSyncPeersTests
{
    private static readonly TimeSpan PeerStart = TimeSpan.FromSeconds(30);

    [TestMethod]
    public void A_counter_the_C_peer_created_is_added_to_exactly_by_dotnet_Python_and_C()
    {
        const int Each = 20_000, Initial = 1000;
        string name = TestNames.Unique("ipm-counter");
        using ChildProcess creator = SyncPeerTools.C("counter-create", name, S(Initial));
        creator.WaitForLine("READY", PeerStart);
        using (ShmCounter counter = ShmCounter.Open(name))
        {
            using ChildProcess python = SyncPeerTools.Python("counter-add", name, S(Each));
            using ChildProcess c = SyncPeerTools.C("counter-add", name, S(Each));
            python.WaitForLine("READY", PeerStart);
            c.WaitForLine("READY", PeerStart);
            for (int i = 0; i < Each; i++)
            {
                counter.Add(1);
            }

            python.WaitForLine("DONE", PeerStart);
            c.WaitForLine("DONE", PeerStart);
            Assert.AreEqual(0, python.WaitForExit(PeerStart), python.StandardError);
            Assert.AreEqual(0, c.WaitForExit(PeerStart), c.StandardError);
            Assert.AreEqual(Initial + (3L * Each), counter.Value);
        }

        creator.CloseInput();
        Assert.AreEqual($"FINAL {Initial + (3L * Each)}", creator.WaitForLine("FINAL", PeerStart));
        Assert.AreEqual(0, creator.WaitForExit(PeerStart), creator.StandardError);
    }

    [TestMethod]
    public void A_barrier_of_dotnet_C_and_Python_completes_phases()
    {
        const int Phases = 50;
        string name = TestNames.Unique("ipm-barrier");
        using ChildProcess python = SyncPeerTools.Python("barrier-wait", name, S(Phases), "10000", "3");
        python.WaitForLine("READY", PeerStart);
        using ChildProcess c = SyncPeerTools.C("barrier-wait", name, S(Phases), "10000", "0");
        c.WaitForLine("READY", PeerStart);
        using (ShmBarrier barrier = ShmBarrier.Open(name))
        {
            using var cancel = new CancellationTokenSource(PeerStart);
            for (int i = 0; i < Phases; i++)
            {
                Assert.AreEqual(i, barrier.SignalAndWait(cancel.Token));
            }
        }

        Assert.AreEqual($"DONE {Phases - 1}", python.WaitForLine("DONE", PeerStart));
        Assert.AreEqual($"DONE {Phases - 1}", c.WaitForLine("DONE", PeerStart));
        Assert.AreEqual(0, python.WaitForExit(PeerStart), python.StandardError);
        Assert.AreEqual(0, c.WaitForExit(PeerStart), c.StandardError);
    }

    [TestMethod]
    public void A_SIGKILLed_Python_participant_breaks_the_barrier_for_dotnet_and_C_promptly()
    {
        string name = TestNames.Unique("ipm-bkill");
        using ShmBarrier barrier = ShmBarrier.Create(name, 3);
        using ChildProcess python = SyncPeerTools.Python("barrier-hold", name);
        python.WaitForLine("READY", PeerStart);
        using ChildProcess c = SyncPeerTools.C("barrier-wait", name, "1", "30000", "0");
        c.WaitForLine("READY", PeerStart);
        Task<bool> dotnet = Task.Run(() => barrier.SignalAndWait(PeerStart));
        Until.True(() => barrier.Sleepers >= 2, PeerStart, ".NET and C sleep on the barrier");
        SyncPeerTools.KillAndExpectBroken(barrier, python, c, dotnet);
    }
}
