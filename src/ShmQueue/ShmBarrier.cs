using ShmIpc.Layout;
using ShmIpc.Memory;
using ShmIpc.Signaling;
using ShmIpc.Sync;

namespace ShmIpc;

/// <summary>
/// A barrier shared by processes (Python's <c>multiprocessing.Barrier</c>): <see cref="SignalAndWait(CancellationToken)"/> blocks until
/// <see cref="ParticipantCount"/> calls have arrived, then releases them all and starts the next phase.
/// </summary>
/// <remarks>
/// The participants are the handles that are open (every Create or Open registers one, at most 64): if the process of one of them
/// dies before arriving in the current phase, the barrier breaks within one sleep slice, and every waiter gets
/// <see cref="ShmBarrierBrokenException"/>. A waiter whose time runs out breaks it for all, as in Python. <see cref="Reset"/> mends it.
/// All members are thread-safe.
/// </remarks>
public sealed unsafe class ShmBarrier : IDisposable
{
    // Design (BarrierDescriptor draws the block; LAYOUT §7.7):
    // - Arrive: read Phase p, store my slot's ArrivedPhase = p + 1, then n = ++Arrived. The n-th (last) arriver stores
    //   Arrived = 0, then increments Phase (a full fence: §4 notifier step 1; Arrived = 0 is visible before the new phase)
    //   and wakes the sleepers. Others wait (§4) for "Phase != p, or Broken, or Epoch changed".
    // - Phase != p wins over Broken: a phase that completed is reported completed, even if the barrier broke just after.
    // - Before each sleep slice a waiter looks at every registered handle (slot): an owner other than this process that has
    //   not arrived in phase p and is dead breaks the barrier (exchange Broken 1, wake everyone); its slot is freed.
    // - Reset: Arrived = 0, Broken = 0, Epoch++ (waiters of the old epoch throw), wake everyone.
    private readonly SharedObjectLease _lease;
    private readonly byte* _control;
    private readonly byte* _slot;
    private readonly int _participants;
    private readonly long _me;
    private readonly WaitSignal _signal;

    private ShmBarrier(SharedObjectLease lease, int participants)
    {
        _lease = lease;
        _control = lease.Segment.Control;
        _participants = participants;
        _me = (long)lease.Platform.CurrentProcess.ToWord();
        _signal = lease.Signal(_control + BarrierDescriptor.SleepersOffset, BarrierDescriptor.Semaphore);
        _slot = ClaimSlot();
    }

    /// <summary>The name given at creation.</summary>
    public string Name => _lease.Name;

    /// <summary>How many calls complete a phase, as the creator set it.</summary>
    public int ParticipantCount => _participants;

    /// <summary>The number of completed phases (a snapshot).</summary>
    public long CurrentPhase => MappedAtomics.ReadInt64Acquire(Checked() + BarrierDescriptor.PhaseOffset);

    /// <summary>True when the barrier is broken (a snapshot).</summary>
    public bool IsBroken => MappedAtomics.ReadInt32Acquire(Checked() + BarrierDescriptor.BrokenOffset) != 0;

    /// <summary>Threads sleeping on the barrier, in all processes (tests wait for a waiter to be asleep).</summary>
    internal int Sleepers => MappedAtomics.ReadInt32Acquire(_control + BarrierDescriptor.SleepersOffset);

    /// <summary>Creates a barrier for <paramref name="participantCount"/> participants (1 to 64); this handle is one of them.</summary>
    /// <exception cref="IOException">A segment of that name exists and is in use, or is not ShmIpc's.</exception>
    public static ShmBarrier Create(string name, int participantCount, ShmSharedObjectOptions? options = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(participantCount, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(participantCount, BarrierDescriptor.SlotCount);
        SharedObjectLease lease = SharedObjectLease.Create(name, SegmentKind.Barrier, BarrierDescriptor.ControlSize, 0, BarrierDescriptor.SemaphoreCount,
            options ?? new ShmSharedObjectOptions(), s => BarrierDescriptor.Initialize(s.Control, participantCount));
        return Wrap(lease, participantCount);
    }

    /// <summary>Opens an existing barrier; this handle becomes one of its participants.</summary>
    /// <exception cref="FileNotFoundException">No object of that name exists.</exception>
    /// <exception cref="ShmInvalidSegmentException">The name holds another kind of object, or a corrupted barrier.</exception>
    public static ShmBarrier Open(string name, ShmSharedObjectOptions? options = null)
    {
        int participants = 0;
        SharedObjectLease lease = SharedObjectLease.Open(name, SegmentKind.Barrier, options ?? new ShmSharedObjectOptions(),
            s => BarrierDescriptor.Validate(s.Control, s.ControlSize, s.DataSize, s.SemaphoreCount, out participants));
        return Wrap(lease, participants);
    }

    /// <summary>Opens the barrier if it exists, else creates it.</summary>
    public static ShmBarrier OpenOrCreate(string name, int participantCount, ShmSharedObjectOptions? options = null) =>
        SharedObjectLease.OpenOrCreate(() => Open(name, options), () => Create(name, participantCount, options));

    /// <summary>Arrives and waits for the others; returns the phase that completed.</summary>
    /// <exception cref="ShmBarrierBrokenException">The barrier is or became broken before the phase completed.</exception>
    /// <exception cref="OperationCanceledException">Cancelled (seen within 20 ms); the barrier is broken for the others.</exception>
    public long SignalAndWait(CancellationToken cancellationToken = default)
    {
        long phase = SignalAndWaitCore(long.MaxValue, cancellationToken, out bool completed);
        return completed ? phase : throw new InvalidOperationException("Unreachable: an infinite wait ended without completing.");
    }

    /// <summary>Arrives and waits up to <paramref name="timeout"/>; false when the time ran out (which breaks the barrier for everyone).</summary>
    /// <exception cref="ShmBarrierBrokenException">The barrier is or became broken before the phase completed.</exception>
    public bool SignalAndWait(TimeSpan timeout)
    {
        SignalAndWaitCore(WaitSignal.DeadlineFrom(timeout), CancellationToken.None, out bool completed);
        return completed;
    }

    /// <summary>Mends the barrier: no arrivals, not broken. Threads waiting now get <see cref="ShmBarrierBrokenException"/>.</summary>
    public void Reset()
    {
        byte* control = Checked();
        MappedAtomics.WriteInt32Release(control + BarrierDescriptor.ArrivedOffset, 0);
        MappedAtomics.WriteInt32Release(control + BarrierDescriptor.BrokenOffset, 0);
        MappedAtomics.AddInt64(control + BarrierDescriptor.EpochOffset, 1);
        _signal.NotifyFenced();
    }

    /// <summary>Closes this handle (it stops being a participant). The creator also unlinks the name unless <see cref="ShmObjectOptions.UnlinkOnDispose"/> is false.</summary>
    public void Dispose()
    {
        if (!_lease.IsDisposed)
        {
            MappedAtomics.CompareExchangeInt64(_slot + BarrierDescriptor.SlotOwnerOffset, 0, _me);
        }

        _lease.Dispose();
    }

    /// <summary>Removes the name. Processes that have the barrier open keep using it.</summary>
    public void Unlink() => _lease.Unlink();

    private static ShmBarrier Wrap(SharedObjectLease lease, int participants)
    {
        try
        {
            return new ShmBarrier(lease, participants);
        }
        catch
        {
            lease.Dispose();
            throw;
        }
    }

    private long SignalAndWaitCore(long deadline, CancellationToken cancellationToken, out bool completed)
    {
        _lease.Enter();
        try
        {
            byte* control = _control;
            long epoch = MappedAtomics.ReadInt64Acquire(control + BarrierDescriptor.EpochOffset);
            long phase = MappedAtomics.ReadInt64Acquire(control + BarrierDescriptor.PhaseOffset);
            if (MappedAtomics.ReadInt32Acquire(control + BarrierDescriptor.BrokenOffset) != 0)
            {
                throw Broken("it broke earlier and was not reset");
            }

            MappedAtomics.WriteInt64Release(_slot + BarrierDescriptor.SlotArrivedPhaseOffset, phase + 1);
            int arrived = Interlocked.Increment(ref *(int*)(control + BarrierDescriptor.ArrivedOffset));
            if (arrived >= _participants)
            {
                MappedAtomics.WriteInt32Release(control + BarrierDescriptor.ArrivedOffset, 0);
                MappedAtomics.AddInt64(control + BarrierDescriptor.PhaseOffset, 1);
                _signal.NotifyFenced();
                completed = true;
                return phase;
            }

            var condition = new PhaseCondition(this, phase, epoch);
            bool ended;
            try
            {
                ended = _signal.Wait(ref condition, _lease.WaitStrategy, deadline, cancellationToken);
            }
            catch (OperationCanceledException)
            {
                Break();
                throw;
            }

            if (MappedAtomics.ReadInt64Acquire(control + BarrierDescriptor.PhaseOffset) != phase)
            {
                completed = true;
                return phase;
            }

            if (!ended)
            {
                Break();
                completed = false;
                return phase;
            }

            throw Broken(condition.Why ?? (MappedAtomics.ReadInt64Acquire(control + BarrierDescriptor.EpochOffset) != epoch
                ? "it was reset while this thread waited"
                : "another waiter's time ran out, or a participant died"));
        }
        finally
        {
            _lease.Exit();
        }
    }

    private void Break()
    {
        Interlocked.Exchange(ref *(int*)(_control + BarrierDescriptor.BrokenOffset), 1);
        _signal.NotifyFenced();
    }

    private ShmBarrierBrokenException Broken(string why) => new(Name, why);

    /// <summary>A registered participant (not this process) that has not arrived in <paramref name="phase"/> and is dead; frees its slot.</summary>
    private int? FindDeadStraggler(long phase)
    {
        for (int i = 0; i < BarrierDescriptor.SlotCount; i++)
        {
            byte* slot = BarrierDescriptor.Slot(_control, i);
            long owner = MappedAtomics.ReadInt64Acquire(slot + BarrierDescriptor.SlotOwnerOffset);
            if (owner == 0 || owner == _me || MappedAtomics.ReadInt64Acquire(slot + BarrierDescriptor.SlotArrivedPhaseOffset) == phase + 1)
            {
                continue;
            }

            if (ProcessIdentity.IsIdentityWord((ulong)owner) && _lease.Platform.IsAlive(ProcessIdentity.FromWord((ulong)owner), startTimeBits: 32))
            {
                continue;
            }

            MappedAtomics.CompareExchangeInt64(slot + BarrierDescriptor.SlotOwnerOffset, 0, owner);
            return ProcessIdentity.FromWord((ulong)owner).Pid;
        }

        return null;
    }

    private byte* ClaimSlot()
    {
        for (int pass = 0; pass < 2; pass++)
        {
            for (int i = 0; i < BarrierDescriptor.SlotCount; i++)
            {
                byte* slot = BarrierDescriptor.Slot(_control, i);
                if (MappedAtomics.CompareExchangeInt64(slot + BarrierDescriptor.SlotOwnerOffset, _me, 0) == 0)
                {
                    MappedAtomics.WriteInt64Release(slot + BarrierDescriptor.SlotArrivedPhaseOffset, 0);
                    return slot;
                }
            }

            // Full: free the slots of dead processes (they can no longer arrive) and look again.
            for (int i = 0; i < BarrierDescriptor.SlotCount; i++)
            {
                byte* slot = BarrierDescriptor.Slot(_control, i);
                long owner = MappedAtomics.ReadInt64Acquire(slot + BarrierDescriptor.SlotOwnerOffset);
                if (owner != _me && !(ProcessIdentity.IsIdentityWord((ulong)owner) && _lease.Platform.IsAlive(ProcessIdentity.FromWord((ulong)owner), startTimeBits: 32)))
                {
                    MappedAtomics.CompareExchangeInt64(slot + BarrierDescriptor.SlotOwnerOffset, 0, owner);
                }
            }
        }

        throw new InvalidOperationException($"Barrier '{Name}' has {BarrierDescriptor.SlotCount} open handles already, its limit.");
    }

    private byte* Checked() => _lease.Guard(_control);

    private struct PhaseCondition(ShmBarrier owner, long phase, long epoch) : IWaitCondition
    {
        public string? Why { get; private set; }

        public readonly bool IsSatisfied()
        {
            byte* control = owner._control;
            return MappedAtomics.ReadInt64Acquire(control + BarrierDescriptor.PhaseOffset) != phase
                || MappedAtomics.ReadInt32Acquire(control + BarrierDescriptor.BrokenOffset) != 0
                || MappedAtomics.ReadInt64Acquire(control + BarrierDescriptor.EpochOffset) != epoch;
        }

        public void BeforeSleep()
        {
            owner._lease.ThrowIfDisposed();
            if (owner.FindDeadStraggler(phase) is int pid)
            {
                Why = $"participant pid {pid} died before arriving";
                owner.Break();
            }
        }
    }
}
