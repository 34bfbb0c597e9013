using ShmIpc.Layout;
using ShmIpc.Memory;
using ShmIpc.Signaling;
using ShmIpc.Sync;

namespace ShmIpc;

/// <summary>
/// A condition variable shared by processes (Python's <c>multiprocessing.Condition</c>), bound to a <see cref="ShmLock"/>:
/// <see cref="Wait(TimeSpan)"/> releases the lock, sleeps until notified, and takes the lock again. Notify and wait with
/// the lock held. At most 64 threads (in all processes) wait at once.
/// </summary>
/// <remarks>
/// A waiter killed while waiting never takes a notification from a live one: <see cref="Notify"/> checks each waiter it
/// picks (pid + start time) and frees the slots of dead ones. The re-acquire after waking can throw
/// <see cref="ShmLockAbandonedException"/> (with the lock held) when the lock's holder died. All members are thread-safe.
/// </remarks>
public sealed unsafe class ShmCondition : IDisposable
{
    // Design (ConditionDescriptor draws the block; LAYOUT §7.6):
    // - A waiter claims a slot (CAS Owner 0 -> me) while it holds the lock, then releases the lock and waits (§4) for
    //   its Ticket to become 1. Notifiers hold the lock too, so every waiter that registered before a Notify is in the table
    //   when the Notify looks, and no waiter that comes later is woken by it (Python's semantics).
    // - Notify(n): walks the slots, CAS Ticket 0 -> 1 on up to n waiting slots whose owner is alive (a dead owner's slot is
    //   freed: Ticket 0, then CAS Owner dead -> 0), then wakes the sleepers (the CASes are full fences: §4 notifier step 1).
    //   Every sleeper wakes and looks at its own ticket; those not notified sleep again.
    // - A waiter whose time runs out withdraws with CAS Ticket 0 -> 2; if that fails it was notified just then, and it
    //   counts as woken (a notification is never lost). Leaving: store Ticket 0, then release-store Owner 0.
    private readonly SharedObjectLease _lease;
    private readonly byte* _control;
    private readonly WaitSignal _signal;
    private readonly long _me;

    private ShmCondition(SharedObjectLease lease, ShmLock boundLock)
    {
        _lease = lease;
        _control = lease.Segment.Control;
        _signal = lease.Signal(_control + ConditionDescriptor.SleepersOffset, ConditionDescriptor.Semaphore);
        _me = (long)lease.Platform.CurrentProcess.ToWord();
        Lock = boundLock;
    }

    /// <summary>The name given at creation.</summary>
    public string Name => _lease.Name;

    /// <summary>The lock this condition is bound to.</summary>
    public ShmLock Lock { get; }

    /// <summary>Threads waiting (registered in a slot), in all processes, dead ones not yet noticed included (a snapshot).</summary>
    internal int Waiters
    {
        get
        {
            int n = 0;
            for (int i = 0; i < ConditionDescriptor.SlotCount; i++)
            {
                n += MappedAtomics.ReadInt64Acquire(ConditionDescriptor.Slot(_control, i) + ConditionDescriptor.SlotOwnerOffset) != 0 ? 1 : 0;
            }

            return n;
        }
    }

    /// <summary>Creates a condition bound to <paramref name="boundLock"/> (each process passes its own handle of that lock).</summary>
    /// <exception cref="IOException">A segment of that name exists and is in use, or is not ShmIpc's.</exception>
    public static ShmCondition Create(string name, ShmLock boundLock, ShmSharedObjectOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(boundLock);
        return new ShmCondition(SharedObjectLease.Create(name, SegmentKind.Condition, ConditionDescriptor.ControlSize, 0, ConditionDescriptor.SemaphoreCount,
            options ?? new ShmSharedObjectOptions(), s => ConditionDescriptor.Initialize(s.Control)), boundLock);
    }

    /// <summary>Opens an existing condition, bound to this process's handle of its lock.</summary>
    /// <exception cref="FileNotFoundException">No object of that name exists.</exception>
    /// <exception cref="ShmInvalidSegmentException">The name holds another kind of object, or a corrupted condition.</exception>
    public static ShmCondition Open(string name, ShmLock boundLock, ShmSharedObjectOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(boundLock);
        return new ShmCondition(SharedObjectLease.Open(name, SegmentKind.Condition, options ?? new ShmSharedObjectOptions(),
            s => ConditionDescriptor.Validate(s.Control, s.ControlSize, s.DataSize, s.SemaphoreCount)), boundLock);
    }

    /// <summary>Opens the condition if it exists, else creates it.</summary>
    public static ShmCondition OpenOrCreate(string name, ShmLock boundLock, ShmSharedObjectOptions? options = null) =>
        SharedObjectLease.OpenOrCreate(() => Open(name, boundLock, options), () => Create(name, boundLock, options));

    /// <summary>Releases the lock, waits until notified, takes the lock again.</summary>
    /// <exception cref="SynchronizationLockException">This process does not hold the lock.</exception>
    /// <exception cref="OperationCanceledException">Cancelled (seen within 20 ms); the lock is held again.</exception>
    public void Wait(CancellationToken cancellationToken = default) => WaitCore(long.MaxValue, cancellationToken);

    /// <summary>Releases the lock, waits until notified or <paramref name="timeout"/> passes, takes the lock again. False on timeout.</summary>
    /// <exception cref="SynchronizationLockException">This process does not hold the lock.</exception>
    public bool Wait(TimeSpan timeout) => WaitCore(WaitSignal.DeadlineFrom(timeout), CancellationToken.None);

    /// <summary>Waits until <paramref name="predicate"/> (evaluated with the lock held) is true, or the time runs out; returns its last value.</summary>
    public bool WaitFor(Func<bool> predicate, TimeSpan timeout)
    {
        ArgumentNullException.ThrowIfNull(predicate);
        long deadline = WaitSignal.DeadlineFrom(timeout);
        bool result = predicate();
        while (!result)
        {
            if (deadline != long.MaxValue && System.Diagnostics.Stopwatch.GetTimestamp() >= deadline)
            {
                break;
            }

            WaitCore(deadline, CancellationToken.None);
            result = predicate();
        }

        return result;
    }

    /// <summary>Wakes up to <paramref name="count"/> waiters (in any process). Call with the lock held.</summary>
    /// <exception cref="SynchronizationLockException">This process does not hold the lock.</exception>
    public void Notify(int count = 1)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        RequireLock();
        int notified = 0;
        for (int i = 0; i < ConditionDescriptor.SlotCount && notified < count; i++)
        {
            byte* slot = ConditionDescriptor.Slot(_control, i);
            long owner = MappedAtomics.ReadInt64Acquire(slot + ConditionDescriptor.SlotOwnerOffset);
            if (owner == 0 || MappedAtomics.ReadInt32Acquire(slot + ConditionDescriptor.SlotTicketOffset) != ConditionDescriptor.TicketWaiting)
            {
                continue;
            }

            if (owner != _me && !IsAlive(owner))
            {
                FreeSlot(slot, owner);
                continue;
            }

            if (MappedAtomics.CompareExchangeInt32(slot + ConditionDescriptor.SlotTicketOffset, ConditionDescriptor.TicketNotified, ConditionDescriptor.TicketWaiting)
                == ConditionDescriptor.TicketWaiting)
            {
                notified++;
            }
        }

        if (notified > 0)
        {
            _signal.NotifyFenced();
        }
    }

    /// <summary>Wakes every waiter. Call with the lock held.</summary>
    /// <exception cref="SynchronizationLockException">This process does not hold the lock.</exception>
    public void NotifyAll() => Notify(int.MaxValue);

    /// <summary>Closes this process's handle (not the lock's). The creator also unlinks the name unless <see cref="ShmObjectOptions.UnlinkOnDispose"/> is false.</summary>
    public void Dispose() => _lease.Dispose();

    /// <summary>Removes the name. Processes that have the condition open keep using it.</summary>
    public void Unlink() => _lease.Unlink();

    private bool IsAlive(long owner) =>
        ProcessIdentity.IsIdentityWord((ulong)owner) && _lease.Platform.IsAlive(ProcessIdentity.FromWord((ulong)owner), startTimeBits: 32);

    private static void FreeSlot(byte* slot, long owner)
    {
        MappedAtomics.WriteInt32Release(slot + ConditionDescriptor.SlotTicketOffset, ConditionDescriptor.TicketWaiting);
        MappedAtomics.CompareExchangeInt64(slot + ConditionDescriptor.SlotOwnerOffset, 0, owner);
    }

    private void RequireLock()
    {
        _lease.ThrowIfDisposed();
        if (!Lock.IsHeldByCurrentProcess)
        {
            throw new SynchronizationLockException($"Condition '{Name}' is used without holding its lock '{Lock.Name}'.");
        }
    }

    private bool WaitCore(long deadline, CancellationToken cancellationToken)
    {
        RequireLock();
        _lease.Enter();
        try
        {
            // The slot is claimed with the lock held (a Notify sees exactly the waiters that came before it); a lock this
            // thread turns out not to hold frees the slot again, so no live-looking slot is left to swallow a notification.
            byte* slot = ClaimSlot();
            bool notified;
            int depth;
            try
            {
                depth = Lock.ReleaseAll();
            }
            catch
            {
                FreeSlot(slot);
                throw;
            }

            try
            {
                var condition = new TicketCondition(this, slot);
                try
                {
                    notified = _signal.Wait(ref condition, _lease.WaitStrategy, deadline, cancellationToken);
                }
                finally
                {
                    // Withdraw unless notified; a notification that lands now still counts.
                    notified = MappedAtomics.CompareExchangeInt32(slot + ConditionDescriptor.SlotTicketOffset,
                        ConditionDescriptor.TicketWithdrawn, ConditionDescriptor.TicketWaiting) == ConditionDescriptor.TicketNotified;
                    FreeSlot(slot);
                }
            }
            finally
            {
                // Even a cancelled wait returns holding the lock, as it was called, as deep as it was held (an RLock).
                Lock.AcquireRestoring(depth);
            }

            return notified;
        }
        finally
        {
            _lease.Exit();
        }
    }

    /// <summary>Leaves a slot: ticket back to 0 first, then the owner (LAYOUT §7.6), both release stores.</summary>
    private static void FreeSlot(byte* slot)
    {
        MappedAtomics.WriteInt32Release(slot + ConditionDescriptor.SlotTicketOffset, ConditionDescriptor.TicketWaiting);
        MappedAtomics.WriteInt64Release(slot + ConditionDescriptor.SlotOwnerOffset, 0);
    }

    /// <summary>Claims a free slot; when none is free, frees the slots of dead waiters (Notify does that too) and looks again.</summary>
    private byte* ClaimSlot()
    {
        for (int pass = 0; pass < 3; pass++)
        {
            for (int i = 0; i < ConditionDescriptor.SlotCount; i++)
            {
                byte* slot = ConditionDescriptor.Slot(_control, i);
                long owner = MappedAtomics.ReadInt64Acquire(slot + ConditionDescriptor.SlotOwnerOffset);
                if (pass != 1 && owner == 0 && MappedAtomics.CompareExchangeInt64(slot + ConditionDescriptor.SlotOwnerOffset, _me, 0) == 0)
                {
                    return slot;
                }

                if (pass == 1 && owner != 0 && owner != _me && !IsAlive(owner))
                {
                    FreeSlot(slot, owner);
                }
            }
        }

        throw new InvalidOperationException($"Condition '{Name}' has {ConditionDescriptor.SlotCount} waiters already, its limit.");
    }

    private readonly struct TicketCondition(ShmCondition owner, byte* slot) : IWaitCondition
    {
        public bool IsSatisfied() =>
            MappedAtomics.ReadInt32Acquire(slot + ConditionDescriptor.SlotTicketOffset) == ConditionDescriptor.TicketNotified;

        public void BeforeSleep() => owner._lease.ThrowIfDisposed();
    }
}
