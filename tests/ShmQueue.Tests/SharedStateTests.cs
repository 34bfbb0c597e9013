using ShmIpc.Tests.Common;

namespace ShmIpc.Tests;

/// <summary>
/// Runs a call on a new thread and joins it. Not Task.Run: a task waited on before it starts may run inline on the
/// waiting thread, and lock ownership is per thread.
/// </summary>
internal static class OtherThread
{
    public static T Run<T>(Func<T> call)
    {
        T result = default!;
        System.Runtime.ExceptionServices.ExceptionDispatchInfo? failure = null;
        var thread = new Thread(() =>
        {
            try
            {
                result = call();
            }
            catch (Exception e)
            {
                failure = System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e);
            }
        });
        thread.Start();
        Assert.IsTrue(thread.Join(TimeSpan.FromSeconds(30)), "the other thread did not finish");
        failure?.Throw();
        return result;
    }

    public static void Run(Action call) => Run(() =>
    {
        call();
        return 0;
    });
}

/// <summary>Shared state within one process: shapes, bounds, errors, ownership rules, allocation. Cross-process cases are in SharedStateProcessTests.</summary>
[TestClass]
public sealed class SharedStateTests
{
    private static readonly TimeSpan Long = TimeSpan.FromSeconds(20);

    private static void AssertGone(string name) =>
        Assert.AreEqual(0, TestNames.ShmFilesOf(name).Length, $"left in /dev/shm: {string.Join(", ", TestNames.ShmFilesOf(name))}");

    [TestMethod]
    public void Shared_memory_is_one_block_seen_by_every_handle_through_span_and_memory()
    {
        string name = TestNames.Unique("mem");
        using (ShmSharedMemory created = ShmSharedMemory.Create(name, 10_000))
        using (ShmSharedMemory opened = ShmSharedMemory.Open(name))
        {
            Assert.AreEqual(10_000, opened.Size);
            created.Span[9_999] = 42;
            created.GetSpan(100, 4).Fill(7);
            Assert.AreEqual(42, opened.Span[9_999]);
            Memory<byte> memory = opened.GetMemory(100, 4);
            CollectionAssert.AreEqual(new byte[] { 7, 7, 7, 7 }, memory.ToArray());
            memory.Span[0] = 9;
            Assert.AreEqual(9, created.Span[100]);
            Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => created.GetSpan(9_999, 2));
            Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => created.GetSpan(-1, 1));
            Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => created.GetMemory(long.MaxValue, 1));
            Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ShmSharedMemory.Create(TestNames.Unique("mem0"), 0));
            created.Dispose();
            Assert.ThrowsExactly<ObjectDisposedException>(() => created.GetSpan(0, 1));
        }

        AssertGone(name);
    }

    [TestMethod]
    public void Array_indexes_within_bounds_and_refuses_an_opener_with_another_element_size()
    {
        string name = TestNames.Unique("arr");
        using (ShmArray<double> array = ShmArray<double>.Create(name, 1000))
        using (ShmArray<double> other = ShmArray<double>.Open(name))
        {
            Assert.AreEqual(1000, other.Length);
            array[999] = 2.5;
            other.AsSpan(10, 5).Fill(1.0);
            Assert.AreEqual(2.5, other[999]);
            Assert.AreEqual(5.0, array.AsSpan().ToArray().Take(20).Sum());
            Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => array[1000]);
            Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => array[-1]);
            var refused = Assert.ThrowsExactly<ShmInvalidSegmentException>(() => ShmArray<int>.Open(name));
            StringAssert.Contains(refused.Message, "8 bytes");
            Assert.IsTrue(array.Lock.IsRecursive, "an array's lock is recursive, as Python's get_lock()");
        }

        AssertGone(name);
    }

    [TestMethod]
    public void Value_and_counter_hold_their_values_across_handles()
    {
        string valueName = TestNames.Unique("val"), counterName = TestNames.Unique("ctr");
        using (ShmValue<long> value = ShmValue<long>.Create(valueName, 41))
        using (ShmValue<long> same = ShmValue<long>.OpenOrCreate(valueName, 0))
        using (ShmCounter counter = ShmCounter.Create(counterName, 10))
        using (ShmCounter other = ShmCounter.Open(counterName))
        {
            same.Value++;
            Assert.AreEqual(42, value.Value);
            Assert.AreEqual(11, counter.Increment());
            Assert.AreEqual(16, other.Add(5));
            Assert.AreEqual(16, counter.CompareExchange(100, 16));
            Assert.AreEqual(100, other.CompareExchange(0, 16), "the comparand no longer matches: unchanged");
            Assert.AreEqual(100, counter.Exchange(-1));
            Assert.AreEqual(-1, other.Value);
        }

        AssertGone(valueName);
        AssertGone(counterName);
    }

    [TestMethod]
    public void Lock_release_by_a_non_holder_throws_and_a_plain_lock_refuses_recursion()
    {
        string name = TestNames.Unique("lk");
        using ShmLock lk = ShmLock.Create(name);
        Assert.ThrowsExactly<SynchronizationLockException>(lk.Release);
        lk.Acquire();
        Assert.IsTrue(lk.IsHeldByCurrentProcess);
        Assert.ThrowsExactly<LockRecursionException>(() => lk.Acquire());
        Assert.IsFalse(OtherThread.Run(() => lk.TryAcquire(TimeSpan.FromMilliseconds(50))), "another thread must not get a held lock");
        OtherThread.Run(lk.Release); // a plain lock belongs to the process, as Python's Lock
        Assert.IsFalse(lk.IsHeldByCurrentProcess);
        using (lk.Hold())
        {
            Assert.IsTrue(lk.IsHeldByCurrentProcess);
        }

        Assert.IsFalse(lk.IsHeldByCurrentProcess);
    }

    [TestMethod]
    public void Recursive_lock_counts_per_thread()
    {
        string name = TestNames.Unique("rlk");
        using ShmLock lk = ShmLock.Create(name, new ShmLockOptions { Recursive = true });
        using ShmLock opened = ShmLock.Open(name);
        Assert.IsTrue(opened.IsRecursive, "the creator's choice travels in the segment");
        lk.Acquire();
        opened.Acquire();
        Assert.IsTrue(lk.TryAcquire(TimeSpan.Zero));
        Assert.ThrowsExactly<SynchronizationLockException>(() => OtherThread.Run(lk.Release));
        Assert.IsFalse(OtherThread.Run(() => opened.TryAcquire(TimeSpan.FromMilliseconds(50))));
        lk.Release();
        lk.Release();
        Assert.IsTrue(lk.IsHeldByCurrentProcess, "one level is still held");
        lk.Release();
        Assert.IsFalse(lk.IsHeldByCurrentProcess);
        Assert.ThrowsExactly<SynchronizationLockException>(lk.Release);
    }

    [TestMethod]
    public void Blocked_acquire_and_async_acquire_get_the_lock_when_it_is_released()
    {
        string name = TestNames.Unique("lkw");
        using ShmLock lk = ShmLock.Create(name);
        lk.Acquire();
        Task blocked = Task.Run(() => lk.Acquire());
        Until.True(() => lk.Sleepers > 0, Long, "the acquirer sleeps");
        lk.Release();
        Assert.IsTrue(blocked.Wait(Long));
        Assert.IsTrue(lk.IsHeldByCurrentProcess);
        ValueTask pending = lk.AcquireAsync();
        Assert.IsFalse(pending.IsCompleted);
        lk.Release();
        Assert.IsTrue(pending.AsTask().Wait(Long));
        Assert.IsTrue(lk.IsHeldByCurrentProcess);
        using var cts = new CancellationTokenSource();
        Task cancelled = lk.AcquireAsync(cts.Token).AsTask();
        cts.Cancel();
        Assert.ThrowsExactly<TaskCanceledException>(() => cancelled.GetAwaiter().GetResult());
        lk.Release();
        Assert.IsFalse(lk.IsHeldByCurrentProcess, "a cancelled async acquire must not take the lock");
    }

    [TestMethod]
    public void Uncontended_acquire_and_release_allocate_nothing()
    {
        using ShmLock lk = ShmLock.Create(TestNames.Unique("lka"));
        lk.Acquire();
        lk.Release();
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 10_000; i++)
        {
            lk.Acquire();
            lk.Release();
            using (lk.Hold())
            {
            }
        }

        Assert.AreEqual(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    [TestMethod]
    public void Event_wakes_a_sleeping_waiter_and_a_set_then_reset_still_wakes_it()
    {
        string name = TestNames.Unique("ev");
        using ShmEvent ev = ShmEvent.Create(name);
        Assert.IsFalse(ev.Wait(TimeSpan.FromMilliseconds(20)));
        Task<bool> waiter = Task.Run(() => ev.Wait(Long));
        Until.True(() => ev.Sleepers > 0, Long, "the waiter sleeps");
        ev.Set();
        Assert.IsTrue(waiter.Result);
        Assert.IsTrue(ev.IsSet);
        Assert.IsTrue(ev.Wait(TimeSpan.Zero), "manual reset: stays set");
        ev.Reset();
        Assert.IsFalse(ev.IsSet);

        Task<bool> pulsed = Task.Run(() => ev.Wait(Long));
        Until.True(() => ev.Sleepers > 0, Long, "the waiter sleeps");
        ev.Set();
        ev.Reset();
        Assert.IsTrue(pulsed.Result, "a Set immediately reset still wakes who was waiting (as Python's Event)");
        Assert.IsTrue(ev.SemaphoreValue <= 1);

        ValueTask pending = ev.WaitAsync();
        Assert.IsFalse(pending.IsCompleted);
        ev.Set();
        Assert.IsTrue(pending.AsTask().Wait(Long));
    }

    [TestMethod]
    public void Auto_reset_event_lets_one_waiter_through_per_set()
    {
        string name = TestNames.Unique("eva");
        using ShmEvent ev = ShmEvent.Create(name, options: new ShmEventOptions { AutoReset = true });
        using ShmEvent opened = ShmEvent.Open(name);
        Assert.IsTrue(opened.IsAutoReset);
        Task<bool>[] waiters = [Task.Run(() => ev.Wait(Long)), Task.Run(() => opened.Wait(Long))];
        Until.True(() => ev.Sleepers >= 2, Long, "both waiters sleep");
        ev.Set();
        Until.True(() => waiters.Count(w => w.IsCompleted) == 1, Long, "one waiter passes");
        Assert.IsFalse(Task.WaitAny(waiters.Where(w => !w.IsCompleted).ToArray(), 100) >= 0, "the other stays");
        Assert.IsFalse(ev.IsSet, "the waiter that passed reset it");
        ev.Set();
        Assert.IsTrue(Task.WaitAll(waiters, Long));
    }

    [TestMethod]
    public void Semaphore_counts_returns_the_previous_count_and_refuses_to_pass_its_maximum()
    {
        string name = TestNames.Unique("sem");
        using ShmSemaphore semaphore = ShmSemaphore.Create(name, 1, 3);
        using ShmSemaphore opened = ShmSemaphore.Open(name);
        Assert.AreEqual(3, opened.MaximumCount);
        Assert.IsTrue(opened.TryWait(TimeSpan.Zero));
        Assert.IsFalse(semaphore.TryWait(TimeSpan.FromMilliseconds(20)));
        Assert.AreEqual(0, semaphore.Release(2));
        Assert.AreEqual(2, opened.Release());
        Assert.ThrowsExactly<SemaphoreFullException>(() => semaphore.Release());
        Assert.AreEqual(3, semaphore.CurrentCount, "a refused release changes nothing");
        for (int i = 0; i < 3; i++)
        {
            semaphore.Wait();
        }

        Task<bool> waiter = Task.Run(() => semaphore.TryWait(Long));
        Until.True(() => semaphore.Sleepers > 0, Long, "the waiter sleeps");
        Assert.AreEqual(0, opened.Release());
        Assert.IsTrue(waiter.Result);
        ValueTask pending = semaphore.WaitAsync();
        Assert.IsFalse(pending.IsCompleted);
        opened.Release();
        Assert.IsTrue(pending.AsTask().Wait(Long));
        Assert.AreEqual(0, semaphore.CurrentCount);
    }

    [TestMethod]
    public void Condition_wait_releases_the_lock_and_notify_wakes_as_many_as_asked()
    {
        string lockName = TestNames.Unique("cvl"), name = TestNames.Unique("cv");
        using ShmLock lk = ShmLock.Create(lockName);
        using ShmCondition condition = ShmCondition.Create(name, lk);
        Assert.ThrowsExactly<SynchronizationLockException>(() => condition.Notify());
        Assert.ThrowsExactly<SynchronizationLockException>(() => condition.Wait(TimeSpan.Zero));
        using (lk.Hold())
        {
            Assert.IsFalse(condition.Wait(TimeSpan.FromMilliseconds(30)), "nobody notifies");
            Assert.IsTrue(lk.IsHeldByCurrentProcess, "the lock is held again after the wait");
            Assert.AreEqual(0, condition.Waiters);
        }

        int woken = 0;
        var threads = Enumerable.Range(0, 3).Select(_ => new Thread(() =>
        {
            lk.Acquire();
            if (condition.Wait(Long))
            {
                Interlocked.Increment(ref woken);
            }

            lk.Release();
        })).ToList();
        threads.ForEach(t => t.Start());
        Until.True(() => condition.Waiters == 3, Long, "three waiters (each released the lock)");
        using (lk.Hold())
        {
            condition.Notify(2);
        }

        Until.True(() => Volatile.Read(ref woken) == 2, Long, "two are woken");
        Assert.AreEqual(1, condition.Waiters, "the third still waits");
        using (lk.Hold())
        {
            condition.NotifyAll();
        }

        threads.ForEach(t => Assert.IsTrue(t.Join(Long)));
        Assert.AreEqual(3, woken);
        bool flag = false;
        var setter = new Thread(() =>
        {
            using (lk.Hold())
            {
                flag = true;
                condition.NotifyAll();
            }
        });
        using (lk.Hold())
        {
            setter.Start();
            Assert.IsTrue(condition.WaitFor(() => flag, Long));
        }

        setter.Join();
    }

    [TestMethod]
    public void Barrier_releases_its_participants_together_and_a_timeout_breaks_it_for_all()
    {
        string name = TestNames.Unique("bar");
        using ShmBarrier first = ShmBarrier.Create(name, 3);
        using ShmBarrier second = ShmBarrier.Open(name);
        using ShmBarrier third = ShmBarrier.Open(name);
        Assert.AreEqual(3, third.ParticipantCount);
        Task<long>[] all = [Task.Run(() => first.SignalAndWait()), Task.Run(() => second.SignalAndWait())];
        Until.True(() => first.Sleepers >= 1, Long, "a participant waits");
        Assert.AreEqual(0, third.SignalAndWait());
        Assert.IsTrue(Task.WaitAll(all, Long));
        CollectionAssert.AreEqual(new long[] { 0, 0 }, all.Select(t => t.Result).ToArray());
        Assert.AreEqual(1, first.CurrentPhase);

        Task<Exception?> patient = Task.Run(() =>
        {
            try
            {
                second.SignalAndWait();
                return null;
            }
            catch (Exception e)
            {
                return e;
            }
        });
        Until.True(() => first.Sleepers >= 1, Long, "a participant waits");
        Assert.IsFalse(first.SignalAndWait(TimeSpan.FromMilliseconds(50)), "the time runs out: false");
        Assert.IsTrue(patient.Wait(Long));
        Assert.IsInstanceOfType<ShmBarrierBrokenException>(patient.Result, "a timeout breaks it for every waiter");
        Assert.IsTrue(third.IsBroken);
        Assert.ThrowsExactly<ShmBarrierBrokenException>(() => third.SignalAndWait());
        third.Reset();
        Assert.IsFalse(first.IsBroken);
        all = [Task.Run(() => first.SignalAndWait()), Task.Run(() => second.SignalAndWait())];
        Assert.AreEqual(1, third.SignalAndWait(TimeSpan.FromSeconds(20)) ? third.CurrentPhase - 1 : -1);
        Assert.IsTrue(Task.WaitAll(all, Long));
    }

    [TestMethod]
    public void Open_of_a_name_that_holds_another_kind_names_both_kinds()
    {
        string name = TestNames.Unique("kind");
        using ShmQueue queue = ShmQueue.Create(name);
        var e = Assert.ThrowsExactly<ShmInvalidSegmentException>(() => ShmLock.Open(name));
        Assert.AreEqual(ShmSegmentError.WrongKind, e.Error);
        StringAssert.Contains(e.Message, "Queue");
        StringAssert.Contains(e.Message, "Lock");
        Assert.ThrowsExactly<ShmInvalidSegmentException>(() => ShmEvent.Open(name));
        Assert.ThrowsExactly<ShmInvalidSegmentException>(() => ShmArray<int>.Open(name));
        using ShmCounter counter = ShmCounter.Create(TestNames.Unique("kind2"));
        Assert.AreEqual(ShmSegmentError.WrongKind, Assert.ThrowsExactly<ShmInvalidSegmentException>(() => ShmValue<long>.Open(counter.Name)).Error);
    }

    [TestMethod]
    public void A_control_block_a_peer_corrupted_is_refused()
    {
        // Semaphore: Maximum (control offset 4) set to 0.
        string semName = TestNames.Unique("badsem");
        using (ShmSemaphore semaphore = ShmSemaphore.Create(semName, 0, 5))
        {
            Poke(semName, 128 + 4, BitConverter.GetBytes(0));
            StringAssert.Contains(Assert.ThrowsExactly<ShmInvalidSegmentException>(() => ShmSemaphore.Open(semName)).Message, "maximum");
        }

        // Array: a length whose elements would run past the data region.
        string arrayName = TestNames.Unique("badarr");
        using (ShmArray<int> array = ShmArray<int>.Create(arrayName, 16))
        {
            Poke(arrayName, 128 + 8, BitConverter.GetBytes((long)int.MaxValue));
            var e = Assert.ThrowsExactly<ShmInvalidSegmentException>(() => ShmArray<int>.Open(arrayName));
            Assert.AreEqual(ShmSegmentError.Corrupted, e.Error);
        }

        // Lock: unknown flag bits; and a header byte changed (the checksum no longer matches).
        string lockName = TestNames.Unique("badlk");
        using (ShmLock lk = ShmLock.Create(lockName))
        {
            Poke(lockName, 128 + 20, BitConverter.GetBytes(0xF0u));
            Assert.ThrowsExactly<ShmInvalidSegmentException>(() => ShmLock.Open(lockName));
            Poke(lockName, 40, BitConverter.GetBytes(1L << 40));
            Assert.AreEqual(ShmSegmentError.Corrupted, Assert.ThrowsExactly<ShmInvalidSegmentException>(() => ShmLock.Open(lockName)).Error);
        }

        AssertGone(semName);
        AssertGone(arrayName);
        AssertGone(lockName);
    }

    [TestMethod]
    public void A_lock_whose_owner_word_names_no_process_is_taken_over_as_abandoned()
    {
        string name = TestNames.Unique("lkz");
        using ShmLock lk = ShmLock.Create(name);
        Poke(name, 128, BitConverter.GetBytes(0x7777_0000_0000_0002L)); // low bits 00010: not an identity word
        var e = Assert.ThrowsExactly<ShmLockAbandonedException>(() => lk.Acquire());
        Assert.AreEqual(0, e.DeadOwnerPid);
        Assert.IsTrue(lk.IsHeldByCurrentProcess, "the caller holds the lock it was told was abandoned");
        lk.Release();
    }

    private static void Poke(string name, long offset, byte[] bytes)
    {
        using var file = new FileStream($"/dev/shm/shmipc.{name}", FileMode.Open, FileAccess.ReadWrite);
        file.Position = offset;
        file.Write(bytes);
    }
}
