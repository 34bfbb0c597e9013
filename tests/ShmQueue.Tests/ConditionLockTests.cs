using ShmIpc.Tests.Common;

namespace ShmIpc.Tests;

/// <summary>How a condition's wait gives its lock up and takes it back (recursive locks, a lock the caller does not hold).</summary>
[TestClass]
public sealed class ConditionLockTests
{
    private static readonly TimeSpan Long = TimeSpan.FromSeconds(10);

    [TestMethod]
    public void Wait_on_a_recursive_lock_held_twice_frees_it_wholly_and_restores_the_depth()
    {
        string lockName = TestNames.Unique("rcl"), name = TestNames.Unique("rcv");
        using ShmLock lk = ShmLock.Create(lockName, new ShmLockOptions { Recursive = true });
        using ShmCondition condition = ShmCondition.Create(name, lk);
        bool notified = false, heldAfter = false;
        Exception? failure = null;
        var waiter = new Thread(() =>
        {
            try
            {
                lk.Acquire();
                lk.Acquire(); // depth 2
                notified = condition.Wait(Long);
                lk.Release();
                heldAfter = lk.IsHeldByCurrentProcess; // one level is left after the wait gave back depth 2
                lk.Release();
            }
            catch (Exception e)
            {
                failure = e; // a failing test disposes the objects under this thread: report, don't crash the host
            }
        });
        waiter.Start();
        Until.True(() => condition.Waiters == 1, Long, "the waiter is in its wait");

        // Before the fix the lock stayed held at depth 1 during the wait: this acquire waited out the whole timeout.
        Assert.IsTrue(lk.TryAcquire(TimeSpan.FromSeconds(5)), "the waiting thread released its recursive lock wholly");
        condition.Notify();
        lk.Release();
        Assert.IsTrue(waiter.Join(Long));
        Assert.IsNull(failure, failure?.ToString());
        Assert.IsTrue(notified, "the notification reached the waiter");
        Assert.IsTrue(heldAfter, "the wait gave the lock back at depth 2");
        Assert.IsFalse(lk.IsHeldByCurrentProcess);
    }

    [TestMethod]
    public void Wait_from_a_thread_that_does_not_hold_the_recursive_lock_leaves_no_slot_behind()
    {
        string lockName = TestNames.Unique("rcl"), name = TestNames.Unique("rcv");
        using ShmLock lk = ShmLock.Create(lockName, new ShmLockOptions { Recursive = true });
        using ShmCondition condition = ShmCondition.Create(name, lk);
        using var held = new ManualResetEventSlim();
        using var done = new ManualResetEventSlim();
        var holder = new Thread(() =>
        {
            lk.Acquire();
            held.Set();
            done.Wait(Long);
            lk.Release();
        });
        holder.Start();
        Assert.IsTrue(held.Wait(Long));

        // This process holds the lock, but another thread does: the wait is refused and must not leave a claimed slot.
        Assert.ThrowsExactly<SynchronizationLockException>(() => condition.Wait(TimeSpan.FromSeconds(1)));
        Assert.AreEqual(0, condition.Waiters, "the refused wait freed the slot it had claimed");
        done.Set();
        Assert.IsTrue(holder.Join(Long));
    }
}
