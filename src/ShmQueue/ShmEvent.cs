using ShmIpc.Layout;
using ShmIpc.Signaling;
using ShmIpc.Sync;

namespace ShmIpc;

/// <summary>
/// An event shared by processes (Python's <c>multiprocessing.Event</c>). Manual reset by default: <see cref="Set"/> wakes
/// every waiter and the event stays set until <see cref="Reset"/>. With <see cref="ShmEventOptions.AutoReset"/>, each Set
/// lets one waiter through, which resets it.
/// </summary>
/// <remarks>
/// Waiters spin briefly, then sleep on a named semaphore in slices (LAYOUT §4); a Set costs no syscall unless someone sleeps.
/// A manual-reset Set followed at once by Reset still wakes everyone that was waiting (as in Python): waiters also watch a
/// generation count that every Set increments. All members are thread-safe.
/// </remarks>
public sealed unsafe class ShmEvent : IDisposable
{
    // Design (EventDescriptor draws the block; LAYOUT §7.4):
    // - State: Set stores 1 with release, Reset stores 0 with release; waiters read it with acquire. Auto-reset waiters take
    //   it with CAS 1 -> 0 (exactly one waiter per Set; a Set on a set event changes nothing).
    // - Generation (manual reset only): Set increments it after storing State. The increment is a full fence, which also
    //   orders the State store before the Sleepers read of the notification (pairs with the waiter's registration).
    //   A waiter reads Generation before it first looks at State, so a Set between the two is seen one way or the other.
    // - Auto-reset Set stores State then notifies with a full fence (WaitSignal.Notify): every sleeper wakes, one wins the
    //   CAS, the others sleep again.
    // - A waiter killed asleep leaves a registration that the next Set's exchange takes (one extra post: one spurious wakeup
    //   for the next sleeper, which re-checks and sleeps again; never a missed Set, never a spin). LAYOUT §4.
    private readonly SharedObjectLease _lease;
    private readonly byte* _control;
    private readonly bool _autoReset;
    private readonly WaitSignal _signal;

    private ShmEvent(SharedObjectLease lease)
    {
        _lease = lease;
        _control = lease.Segment.Control;
        _autoReset = (*(uint*)(_control + EventDescriptor.FlagsOffset) & EventDescriptor.FlagAutoReset) != 0;
        _signal = lease.Signal(_control + EventDescriptor.SleepersOffset, EventDescriptor.Semaphore);
    }

    /// <summary>The name given at creation.</summary>
    public string Name => _lease.Name;

    /// <summary>True when the event is set (a snapshot).</summary>
    public bool IsSet => MappedAtomics.ReadInt32Acquire(Checked() + EventDescriptor.StateOffset) != 0;

    /// <summary>True for an auto-reset event, as its creator made it.</summary>
    public bool IsAutoReset => _autoReset;

    /// <summary>Threads sleeping on the event, in all processes (tests wait for a waiter to be asleep).</summary>
    internal int Sleepers => MappedAtomics.ReadInt32Acquire(_control + EventDescriptor.SleepersOffset);

    /// <summary>The value of the event's named semaphore (tests check that posts never pile up).</summary>
    internal int SemaphoreValue => _lease.SemaphoreValue(EventDescriptor.Semaphore);

    /// <summary>Creates an event.</summary>
    /// <exception cref="IOException">A segment of that name exists and is in use, or is not ShmIpc's.</exception>
    public static ShmEvent Create(string name, bool initialState = false, ShmEventOptions? options = null)
    {
        options ??= new ShmEventOptions();
        bool autoReset = options.AutoReset;
        return new ShmEvent(SharedObjectLease.Create(name, SegmentKind.Event, EventDescriptor.ControlSize, 0, EventDescriptor.SemaphoreCount, options,
            s => EventDescriptor.Initialize(s.Control, autoReset, initialState)));
    }

    /// <summary>Opens an existing event; whether it resets itself is the creator's choice.</summary>
    /// <exception cref="FileNotFoundException">No object of that name exists.</exception>
    /// <exception cref="ShmInvalidSegmentException">The name holds another kind of object, or a corrupted event.</exception>
    public static ShmEvent Open(string name, ShmEventOptions? options = null) =>
        new(SharedObjectLease.Open(name, SegmentKind.Event, options ?? new ShmEventOptions(),
            s => EventDescriptor.Validate(s.Control, s.ControlSize, s.DataSize, s.SemaphoreCount)));

    /// <summary>Opens the event if it exists, else creates it.</summary>
    public static ShmEvent OpenOrCreate(string name, bool initialState = false, ShmEventOptions? options = null) =>
        SharedObjectLease.OpenOrCreate(() => Open(name, options), () => Create(name, initialState, options));

    /// <summary>Sets the event, waking every waiter (auto reset: letting one through).</summary>
    public void Set()
    {
        byte* control = Checked();
        MappedAtomics.WriteInt32Release(control + EventDescriptor.StateOffset, 1);
        if (_autoReset)
        {
            _signal.Notify();
        }
        else
        {
            MappedAtomics.AddInt64(control + EventDescriptor.GenerationOffset, 1);
            _signal.NotifyFenced();
        }
    }

    /// <summary>Resets the event: waits from now on block until the next <see cref="Set"/>.</summary>
    public void Reset() => MappedAtomics.WriteInt32Release(Checked() + EventDescriptor.StateOffset, 0);

    /// <summary>Waits until the event is set.</summary>
    /// <exception cref="OperationCanceledException">Cancelled (seen within 20 ms).</exception>
    public void Wait(CancellationToken cancellationToken = default) => WaitCore(long.MaxValue, cancellationToken);

    /// <summary>Waits up to <paramref name="timeout"/> for the event to be set; false when the time ran out.</summary>
    public bool Wait(TimeSpan timeout) => WaitCore(WaitSignal.DeadlineFrom(timeout), CancellationToken.None);

    /// <summary>
    /// Waits asynchronously. Completes synchronously when the event is set; otherwise the wait is a pending operation on
    /// the process's few async waiter threads, which sleep on the event's signal (no thread per call).
    /// </summary>
    public ValueTask WaitAsync(CancellationToken cancellationToken = default)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled(cancellationToken);
        }

        var condition = new SetCondition(this);
        if (condition.IsSatisfied())
        {
            return ValueTask.CompletedTask;
        }

        return AsyncWaits().WaitAsync(condition.Generation, cancellationToken);
    }

    /// <summary>Closes this process's handle. The creator also unlinks the name unless <see cref="ShmObjectOptions.UnlinkOnDispose"/> is false.</summary>
    public void Dispose() => _lease.Dispose();

    /// <summary>Removes the name. Processes that have the event open keep using it.</summary>
    public void Unlink() => _lease.Unlink();

    private bool WaitCore(long deadline, CancellationToken cancellationToken)
    {
        var condition = new SetCondition(this);
        return _lease.Wait(_signal, ref condition, deadline, cancellationToken);
    }

    private byte* Checked() => _lease.Guard(_control);

    private struct SetCondition : IWaitCondition
    {
        private readonly ShmEvent _event;
        private readonly long _generation;

        public SetCondition(ShmEvent owner)
            : this(owner, MappedAtomics.ReadInt64Acquire(owner._control + EventDescriptor.GenerationOffset))
        {
        }

        public SetCondition(ShmEvent owner, long generation)
        {
            _event = owner;
            _generation = generation;
        }

        /// <summary>The generation seen when the wait began: a manual-reset Set after it ends the wait even if Reset follows.</summary>
        public readonly long Generation => _generation;

        public readonly bool IsSatisfied()
        {
            byte* control = _event._control;
            if (_event._autoReset)
            {
                return MappedAtomics.ReadInt32Acquire(control + EventDescriptor.StateOffset) != 0
                    && MappedAtomics.CompareExchangeInt32(control + EventDescriptor.StateOffset, 0, 1) == 1;
            }

            return MappedAtomics.ReadInt32Acquire(control + EventDescriptor.StateOffset) != 0
                || MappedAtomics.ReadInt64Acquire(control + EventDescriptor.GenerationOffset) != _generation;
        }

        public readonly void BeforeSleep() => _event._lease.ThrowIfDisposed();
    }

    private SharedStateWaits? _asyncWaits;

    private SharedStateWaits AsyncWaits()
    {
        if (Volatile.Read(ref _asyncWaits) is { } waits)
        {
            return waits;
        }

        lock (_lease)
        {
            return _asyncWaits ??= new SharedStateWaits(_lease, _signal, (generation, _) => new SetCondition(this, generation).IsSatisfied());
        }
    }
}
