using ShmIpc.Layout;
using ShmIpc.Signaling;
using ShmIpc.Sync;

namespace ShmIpc;

/// <summary>
/// A counting semaphore shared by processes (Python's <c>multiprocessing.Semaphore</c>; with a maximum, <c>BoundedSemaphore</c>).
/// .NET's own named <see cref="Semaphore"/> is not supported on Linux; this is. Counts are not owned: a process killed after
/// taking a count does not give it back (as in Python).
/// </summary>
/// <remarks>All members are thread-safe. Waiters spin briefly, then sleep on a named semaphore in slices (LAYOUT §4).</remarks>
public sealed unsafe class ShmSemaphore : IDisposable
{
    // Design (SemaphoreDescriptor draws the block; LAYOUT §7.5):
    // - Count is changed only by CAS: a waiter c -> c - 1 when c > 0, a releaser c -> c + n when c + n <= Maximum (else
    //   SemaphoreFullException and nothing changes). The releaser's CAS is a full fence, so the Sleepers read that follows
    //   cannot pass it (pairs with the waiter's registration); every sleeper wakes and races for the counts.
    // - A waiter killed asleep: as for ShmEvent, its registration costs the next sleeper one spurious wakeup, no more.
    private readonly SharedObjectLease _lease;
    private readonly byte* _count;
    private readonly int _maximum;
    private readonly WaitSignal _signal;

    private ShmSemaphore(SharedObjectLease lease, int maximum)
    {
        _lease = lease;
        _count = lease.Segment.Control + SemaphoreDescriptor.CountOffset;
        _maximum = maximum;
        _signal = lease.Signal(lease.Segment.Control + SemaphoreDescriptor.SleepersOffset, SemaphoreDescriptor.Semaphore);
    }

    /// <summary>The name given at creation.</summary>
    public string Name => _lease.Name;

    /// <summary>The count now (a snapshot).</summary>
    public int CurrentCount => MappedAtomics.ReadInt32Acquire(Checked());

    /// <summary>The largest count, as the creator set it.</summary>
    public int MaximumCount => _maximum;

    /// <summary>Threads sleeping on the semaphore, in all processes (tests wait for a waiter to be asleep).</summary>
    internal int Sleepers => MappedAtomics.ReadInt32Acquire(_lease.Segment.Control + SemaphoreDescriptor.SleepersOffset);

    /// <summary>Creates a semaphore with <paramref name="initialCount"/> counts, at most <paramref name="maximumCount"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Not 0 &lt;= initialCount &lt;= maximumCount, 1 &lt;= maximumCount.</exception>
    /// <exception cref="IOException">A segment of that name exists and is in use, or is not ShmIpc's.</exception>
    public static ShmSemaphore Create(string name, int initialCount, int maximumCount = int.MaxValue, ShmSharedObjectOptions? options = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maximumCount, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(initialCount);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(initialCount, maximumCount);
        return new ShmSemaphore(SharedObjectLease.Create(name, SegmentKind.Semaphore, SemaphoreDescriptor.ControlSize, 0, SemaphoreDescriptor.SemaphoreCount,
            options ?? new ShmSharedObjectOptions(), s => SemaphoreDescriptor.Initialize(s.Control, initialCount, maximumCount)), maximumCount);
    }

    /// <summary>Opens an existing semaphore; its maximum is the creator's.</summary>
    /// <exception cref="FileNotFoundException">No object of that name exists.</exception>
    /// <exception cref="ShmInvalidSegmentException">The name holds another kind of object, or a corrupted semaphore.</exception>
    public static ShmSemaphore Open(string name, ShmSharedObjectOptions? options = null)
    {
        int maximum = 0;
        SharedObjectLease lease = SharedObjectLease.Open(name, SegmentKind.Semaphore, options ?? new ShmSharedObjectOptions(),
            s => SemaphoreDescriptor.Validate(s.Control, s.ControlSize, s.DataSize, s.SemaphoreCount, out maximum));
        return new ShmSemaphore(lease, maximum);
    }

    /// <summary>Opens the semaphore if it exists, else creates it.</summary>
    public static ShmSemaphore OpenOrCreate(string name, int initialCount, int maximumCount = int.MaxValue, ShmSharedObjectOptions? options = null) =>
        SharedObjectLease.OpenOrCreate(() => Open(name, options), () => Create(name, initialCount, maximumCount, options));

    /// <summary>Takes one count, waiting as long as it takes.</summary>
    /// <exception cref="OperationCanceledException">Cancelled (seen within 20 ms); no count was taken.</exception>
    public void Wait(CancellationToken cancellationToken = default)
    {
        if (!TryTake())
        {
            WaitCore(long.MaxValue, cancellationToken);
        }
    }

    /// <summary>Takes one count if one comes within <paramref name="timeout"/>; false when the time ran out.</summary>
    public bool TryWait(TimeSpan timeout) => TryTake() || WaitCore(WaitSignal.DeadlineFrom(timeout), CancellationToken.None);

    /// <summary>
    /// Takes one count asynchronously. Completes synchronously when a count is there; otherwise the wait is a pending
    /// operation on the process's few async waiter threads, which sleep on the semaphore's signal (no thread per call).
    /// </summary>
    public ValueTask WaitAsync(CancellationToken cancellationToken = default)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled(cancellationToken);
        }

        return TryTake() ? ValueTask.CompletedTask : AsyncWaits().WaitAsync(0, cancellationToken);
    }

    /// <summary>Adds <paramref name="releaseCount"/> counts, waking waiters; returns the count before.</summary>
    /// <exception cref="SemaphoreFullException">The count would pass the maximum; nothing was added.</exception>
    public int Release(int releaseCount = 1)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(releaseCount, 1);
        byte* count = Checked();
        int current = MappedAtomics.ReadInt32Acquire(count);
        while (true)
        {
            if (current > _maximum - releaseCount)
            {
                throw new SemaphoreFullException($"Releasing {releaseCount} would take semaphore '{Name}' from {current} past its maximum of {_maximum}.");
            }

            int seen = MappedAtomics.CompareExchangeInt32(count, current + releaseCount, current);
            if (seen == current)
            {
                break;
            }

            current = seen;
        }

        _signal.NotifyFenced();
        return current;
    }

    /// <summary>Closes this process's handle. The creator also unlinks the name unless <see cref="ShmObjectOptions.UnlinkOnDispose"/> is false.</summary>
    public void Dispose() => _lease.Dispose();

    /// <summary>Removes the name. Processes that have the semaphore open keep using it.</summary>
    public void Unlink() => _lease.Unlink();

    private bool TryTake()
    {
        byte* count = Checked();
        int current = MappedAtomics.ReadInt32Acquire(count);
        while (current > 0)
        {
            int seen = MappedAtomics.CompareExchangeInt32(count, current - 1, current);
            if (seen == current)
            {
                return true;
            }

            current = seen;
        }

        return false;
    }

    private bool WaitCore(long deadline, CancellationToken cancellationToken)
    {
        var condition = new CountCondition(this);
        return _lease.Wait(_signal, ref condition, deadline, cancellationToken);
    }

    private byte* Checked() => _lease.Guard(_count);

    private readonly struct CountCondition(ShmSemaphore owner) : IWaitCondition
    {
        public bool IsSatisfied() => owner.TryTake();

        public void BeforeSleep() => owner._lease.ThrowIfDisposed();
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
            return _asyncWaits ??= new SharedStateWaits(_lease, _signal, (_, _) => TryTake());
        }
    }
}
