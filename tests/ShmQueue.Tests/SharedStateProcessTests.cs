using System.Diagnostics;
using System.Globalization;
using ShmIpc.Tests.Common;

namespace ShmIpc.Tests;

/// <summary>Shared state across real processes: abandoned locks (SIGKILL), paused holders, contention, wake-ups, kind checks.</summary>
[TestClass]
public sealed class SharedStateProcessTests
{
    private static readonly TimeSpan ChildStart = TimeSpan.FromSeconds(30);

    [TestMethod]
    public void A_waiter_gets_the_lock_of_a_SIGKILLed_holder_within_a_slice_with_the_lock_held()
    {
        string name = TestNames.Unique("lkdead");
        using ShmLock lk = ShmLock.Create(name);
        using ChildProcess holder = ChildProcess.StartReady("lock-hold", name);
        Assert.IsFalse(lk.TryAcquire(TimeSpan.Zero), "a live holder holds it");
        var waiter = BlockedCall.Start(() => lk.Acquire());
        Until.True(() => lk.Sleepers > 0, ChildStart, "the waiter sleeps");
        long killedAt = Stopwatch.GetTimestamp();
        holder.Kill9();
        Assert.IsTrue(waiter.Join(ChildStart));
        double ms = Stopwatch.GetElapsedTime(killedAt).TotalMilliseconds;
        var abandoned = waiter.Exception as ShmLockAbandonedException;
        Assert.IsNotNull(abandoned, $"expected ShmLockAbandonedException, got {waiter.Exception}");
        Assert.AreEqual(holder.Pid, abandoned.DeadOwnerPid);
        Assert.IsTrue(lk.IsHeldByCurrentProcess, "the exception comes with the lock held");
        Assert.IsTrue(ms < 600, $"taken over {ms:0} ms after the kill; one 100 ms slice (plus the kill's own reaping) expected");
        Assert.IsFalse(OtherThread.Run(() => lk.TryAcquire(TimeSpan.Zero)), "still held by the taker");
        OtherThread.Run(lk.Release);
        Assert.IsTrue(lk.TryAcquire(TimeSpan.Zero));
        lk.Release();
    }

    [TestMethod]
    public void An_acquirer_arriving_after_the_holder_was_SIGKILLed_gets_the_lock_as_abandoned()
    {
        string name = TestNames.Unique("lkdead2");
        using ShmValue<int> value = ShmValue<int>.Create(name, 5);
        ChildProcess.StartReadyThenKill9("lock-hold-value", name);

        var clock = Stopwatch.StartNew();
        Assert.ThrowsExactly<ShmLockAbandonedException>(() => value.Lock.Acquire());
        Assert.IsTrue(clock.ElapsedMilliseconds < 500, $"{clock.ElapsedMilliseconds} ms");
        Assert.IsTrue(value.Lock.IsHeldByCurrentProcess);
        Assert.AreEqual(6, value.Value, "the holder's write before it died is visible");
        value.Lock.Release();
    }

    [TestMethod]
    public void A_paused_live_holder_is_never_overtaken()
    {
        string name = TestNames.Unique("lkstop");
        using ShmLock lk = ShmLock.Create(name);
        using ChildProcess holder = ChildProcess.StartReady("lock-hold", name);
        ChildProcess.Signal(holder.Pid, "STOP");
        try
        {
            Assert.IsFalse(lk.TryAcquire(TimeSpan.FromMilliseconds(400)), "a stopped holder is alive: no takeover");
        }
        finally
        {
            ChildProcess.Signal(holder.Pid, "CONT");
        }

        holder.CloseInput();
        holder.WaitForLine("RELEASED", ChildStart);
        Assert.IsTrue(lk.TryAcquire(ChildStart));
        lk.Release();
        Assert.AreEqual(0, holder.WaitForExit(ChildStart));
    }

    [TestMethod]
    public void Two_processes_counting_under_the_lock_lose_no_increment()
    {
        const int PerProcess = 20_000;
        string name = TestNames.Unique("vcount");
        using ShmValue<long> value = ShmValue<long>.Create(name);
        using ChildProcess a = ChildProcess.Start("value-count", name, PerProcess.ToString(CultureInfo.InvariantCulture));
        using ChildProcess b = ChildProcess.Start("value-count", name, PerProcess.ToString(CultureInfo.InvariantCulture));
        a.WaitForLine("DONE", TimeSpan.FromSeconds(120));
        b.WaitForLine("DONE", TimeSpan.FromSeconds(120));
        Assert.AreEqual(0, a.WaitForExit(ChildStart));
        Assert.AreEqual(0, b.WaitForExit(ChildStart));
        Assert.AreEqual(2L * PerProcess, value.Value);
    }

    [TestMethod]
    public void Set_wakes_a_waiter_sleeping_in_another_process()
    {
        string name = TestNames.Unique("evx");
        using ShmEvent ev = ShmEvent.Create(name);
        using ChildProcess waiter = ChildProcess.StartReady("event-wait", name, "30000");
        Until.True(() => ev.Sleepers > 0, ChildStart, "the child sleeps on the event");
        var clock = Stopwatch.StartNew();
        ev.Set();
        waiter.WaitForLine("SET", ChildStart);
        Assert.IsTrue(clock.ElapsedMilliseconds < 2000, $"{clock.ElapsedMilliseconds} ms");
        Assert.AreEqual(0, waiter.WaitForExit(ChildStart));
    }

    [TestMethod]
    public void A_waiter_SIGKILLed_while_asleep_makes_the_next_waiter_neither_miss_a_set_nor_spin()
    {
        string name = TestNames.Unique("evk");
        using ShmEvent ev = ShmEvent.Create(name, options: new ShmEventOptions { WaitStrategy = ShmWaitStrategy.NoSpin });
        using (ChildProcess doomed = ChildProcess.StartReady("event-wait", name, "60000"))
        {
            Until.True(() => ev.Sleepers > 0, ChildStart, "the child sleeps on the event");
            doomed.Kill9();
        }

        Assert.AreEqual(1, ev.Sleepers, "the dead sleeper's registration is still counted");
        ev.Set();
        ev.Reset();
        Assert.AreEqual(0, ev.Sleepers, "the Set took the dead registration");
        Assert.IsTrue(ev.SemaphoreValue <= 1, $"semaphore {ev.SemaphoreValue}: at most the one post the dead waiter never took");

        // The next waiter: wakes once for the stray post at most, re-checks, sleeps on; the event is not set, so it times out.
        var clock = Stopwatch.StartNew();
        Assert.IsFalse(ev.Wait(TimeSpan.FromMilliseconds(300)));
        Assert.IsTrue(clock.ElapsedMilliseconds >= 250, $"returned after {clock.ElapsedMilliseconds} ms");
        Assert.AreEqual(0, ev.SemaphoreValue, "no post piles up");

        // And it does not miss a Set.
        Task<bool> next = Task.Run(() => ev.Wait(ChildStart));
        Until.True(() => ev.Sleepers > 0, ChildStart, "the next waiter sleeps");
        ev.Set();
        Assert.IsTrue(next.Result);
    }

    [TestMethod]
    public void A_semaphore_release_wakes_a_process_that_takes_the_counts()
    {
        string name = TestNames.Unique("semx");
        using ShmSemaphore semaphore = ShmSemaphore.Create(name, 0, 10);
        using ChildProcess taker = ChildProcess.StartReady("semaphore-take", name, "3");
        Until.True(() => semaphore.Sleepers > 0, ChildStart, "the child sleeps on the semaphore");
        Assert.AreEqual(0, semaphore.Release(2));
        int before = semaphore.Release(1);
        Assert.IsTrue(before is >= 0 and <= 2, $"previous count {before}");
        taker.WaitForLine("TOOK 3", ChildStart);
        Assert.AreEqual(0, semaphore.CurrentCount);
        Assert.AreEqual(0, taker.WaitForExit(ChildStart));
    }

    [TestMethod]
    public void Another_process_opening_a_queue_as_a_lock_is_refused_naming_both_kinds()
    {
        string name = TestNames.Unique("kindx");
        using ShmQueue queue = ShmQueue.Create(name);
        using ChildProcess child = ChildProcess.Start("lock-try-open", name);
        string line = child.WaitForLine("REFUSED", ChildStart);
        StringAssert.Contains(line, nameof(ShmInvalidSegmentException));
        StringAssert.Contains(line, "Queue");
        StringAssert.Contains(line, "Lock");
    }

    [TestMethod]
    public void Notify_wakes_a_waiter_in_another_process_and_a_dead_waiter_never_takes_a_notification()
    {
        string lockName = TestNames.Unique("cvl"), name = TestNames.Unique("cv");
        using ShmLock lk = ShmLock.Create(lockName);
        using ShmCondition condition = ShmCondition.Create(name, lk);
        using (ChildProcess doomed = ChildProcess.StartReady("condition-wait", lockName, name, "60000"))
        {
            Until.True(() => condition.Waiters == 1 && !IsHeldByOther(lk), ChildStart, "the doomed child waits, the lock free");
            doomed.Kill9();
        }

        using ChildProcess live = ChildProcess.StartReady("condition-wait", lockName, name, "60000");
        Until.True(() => condition.Waiters == 2 && !IsHeldByOther(lk), ChildStart, "the live child waits too");
        using (lk.Hold())
        {
            condition.Notify(1);
        }

        live.WaitForLine("NOTIFIED", ChildStart);
        Assert.AreEqual(0, live.WaitForExit(ChildStart));
        Assert.AreEqual(0, condition.Waiters, "the dead waiter's slot was freed, the live one left");
    }

    [TestMethod]
    public void Two_processes_meet_at_a_barrier()
    {
        string name = TestNames.Unique("bar");
        using ShmBarrier barrier = ShmBarrier.Create(name, 2);
        using ChildProcess child = ChildProcess.StartReady("barrier-wait", name, "30000");
        Assert.AreEqual(0, barrier.SignalAndWait());
        Assert.AreEqual("PHASE 0", child.WaitForLine("PHASE", ChildStart));
        Assert.AreEqual(1, barrier.CurrentPhase);
    }

    [TestMethod]
    public void A_participant_SIGKILLed_before_arriving_breaks_the_barrier_within_a_slice()
    {
        string name = TestNames.Unique("bardead");
        using ShmBarrier barrier = ShmBarrier.Create(name, 2);
        using ChildProcess child = ChildProcess.StartReady("barrier-open-hold", name);
        var waiter = BlockedCall.Start(() => barrier.SignalAndWait());
        Until.True(() => barrier.Sleepers > 0, ChildStart, "the waiter sleeps at the barrier");
        long killedAt = Stopwatch.GetTimestamp();
        child.Kill9();
        Assert.IsTrue(waiter.Join(ChildStart));
        double ms = Stopwatch.GetElapsedTime(killedAt).TotalMilliseconds;
        Assert.IsInstanceOfType<ShmBarrierBrokenException>(waiter.Exception);
        StringAssert.Contains(waiter.Exception.Message, child.Pid.ToString(CultureInfo.InvariantCulture));
        Assert.IsTrue(ms < 600, $"broken {ms:0} ms after the kill");
        Assert.IsTrue(barrier.IsBroken);
    }

    private static bool IsHeldByOther(ShmLock lk)
    {
        if (!lk.TryAcquire(TimeSpan.Zero))
        {
            return true;
        }

        lk.Release();
        return false;
    }
}
