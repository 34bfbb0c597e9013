using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using ShmIpc.Layout;
using ShmIpc.Memory;
using ShmIpc.Signaling;
using ShmIpc.Sync;

namespace ShmIpc;

/// <summary>
/// A lock shared by processes (Python's <c>multiprocessing.Lock</c>; with <see cref="ShmLockOptions.Recursive"/>, <c>RLock</c>).
/// The holder is recorded as its pid and start time: when it dies holding the lock (even by SIGKILL), the next acquirer
/// takes the lock over within one sleep slice and gets <see cref="ShmLockAbandonedException"/> <b>holding the lock</b>.
/// A live holder, however long it pauses, is never overtaken.
/// </summary>
/// <remarks>
/// A plain lock belongs to the process that holds it: any of its threads may release it (as Python's <c>Lock</c>); acquiring it
/// again from the thread that holds it throws <see cref="LockRecursionException"/> rather than deadlocking. A recursive
/// lock belongs to one thread, which acquires it again freely and must release it as many times.
/// <para>All members are thread-safe. Disposing ends blocking waits of other threads with <see cref="ObjectDisposedException"/>.</para>
/// </remarks>
public sealed unsafe class ShmLock : IDisposable
{
    // Design (the lock block is drawn in LockDescriptor; LAYOUT §7.3):
    // - Owner is the lock: CAS 0 -> my identity word acquires (a full fence: the protected data written by the previous
    //   holder before its release is visible); Interlocked.Exchange(Owner, 0) releases (a full fence, so every protected
    //   write is visible before Owner reads 0, and Owner = 0 is visible before the Sleepers read that follows: pairs
    //   with the waiter's increment of Sleepers, LAYOUT §4). Uncontended: one CAS and one store to acquire, one load, one
    //   store, one exchange and one load to release. No syscall unless Sleepers != 0.
    // - OwnerThread and Recursion are only meaningful to the holding process, which alone reads them. The holder stores
    //   OwnerThread after its CAS and clears it before its exchange, so a thread that reads its own id there holds the lock
    //   (no other thread writes its id; a stale value is some other id or 0).
    // - Waiters (WaitSignal, LAYOUT §4) poll Owner and CAS it when they read 0 (test-and-test-and-set: the spin does
    //   not bounce the holder's cache line). Before every sleep slice a waiter reads Owner; if it is another process's
    //   identity word and that process is dead (pid + start time, ISharedMemoryPlatform.IsAlive), CAS Owner dead -> me: only
    //   one waiter wins; it holds the lock and throws ShmLockAbandonedException. A word that is no identity at all (a peer
    //   scribbled on it) is taken over the same way. A live holder is never overtaken: liveness, never a timeout.
    // - Crash of a holder between its CAS and its OwnerThread store: Owner names it, so it is taken over as above; the
    //   taker writes its own OwnerThread and Recursion. Crash of a waiter: its registration in Sleepers is taken by the
    //   next release's exchange (one extra post, consumed by the next sleeper as one spurious wakeup; LAYOUT §4).
    private readonly SharedObjectLease _lease;
    private readonly bool _ownsLease;
    private readonly byte* _block;
    private readonly long _me;
    private readonly bool _recursive;
    private readonly WaitSignal _signal;

    internal ShmLock(SharedObjectLease lease, byte* block, int semaphore, bool ownsLease)
    {
        _lease = lease;
        _ownsLease = ownsLease;
        _block = block;
        _me = (long)lease.Platform.CurrentProcess.ToWord();
        _recursive = (*(uint*)(block + LockDescriptor.FlagsOffset) & LockDescriptor.FlagRecursive) != 0;
        _signal = lease.Signal(block + LockDescriptor.SleepersOffset, semaphore);
    }

    /// <summary>The name given at creation (for the lock of an array or value, that object's name).</summary>
    public string Name => _lease.Name;

    /// <summary>True for a recursive lock (Python's <c>RLock</c>), as its creator made it.</summary>
    public bool IsRecursive => _recursive;

    /// <summary>True when a thread of this process holds the lock (a snapshot).</summary>
    public bool IsHeldByCurrentProcess
    {
        get
        {
            _lease.ThrowIfDisposed();
            return MappedAtomics.ReadInt64Acquire(Owner) == _me;
        }
    }

    /// <summary>Threads sleeping on the lock, in all processes (tests wait for a waiter to be asleep).</summary>
    internal int Sleepers => MappedAtomics.ReadInt32Acquire(_block + LockDescriptor.SleepersOffset);

    private byte* Owner => _block + LockDescriptor.OwnerOffset;

    /// <summary>Creates a lock. Fails if a live object of that name exists; a stale one left by a dead process is replaced.</summary>
    /// <exception cref="IOException">A segment of that name exists and is in use, or is not ShmIpc's.</exception>
    public static ShmLock Create(string name, ShmLockOptions? options = null)
    {
        options ??= new ShmLockOptions();
        bool recursive = options.Recursive;
        SharedObjectLease lease = SharedObjectLease.Create(name, SegmentKind.Lock, LockDescriptor.BlockSize, 0, 1, options,
            s => LockDescriptor.Initialize(s.Control, recursive));
        return new ShmLock(lease, lease.Segment.Control, LockDescriptor.Semaphore, ownsLease: true);
    }

    /// <summary>Opens an existing lock; whether it is recursive is the creator's choice.</summary>
    /// <exception cref="FileNotFoundException">No object of that name exists.</exception>
    /// <exception cref="ShmInvalidSegmentException">The name holds another kind of object, or a corrupted lock.</exception>
    public static ShmLock Open(string name, ShmLockOptions? options = null)
    {
        SharedObjectLease lease = SharedObjectLease.Open(name, SegmentKind.Lock, options ?? new ShmLockOptions(), s =>
            s.ControlSize != LockDescriptor.BlockSize || s.DataSize != 0 || s.SemaphoreCount != 1
                ? $"control block of {s.ControlSize} bytes, data of {s.DataSize}, {s.SemaphoreCount} semaphores; a lock has {LockDescriptor.BlockSize}, 0, 1"
                : LockDescriptor.Validate(s.Control));
        return new ShmLock(lease, lease.Segment.Control, LockDescriptor.Semaphore, ownsLease: true);
    }

    /// <summary>Opens the lock if it exists, else creates it with <paramref name="options"/>.</summary>
    public static ShmLock OpenOrCreate(string name, ShmLockOptions? options = null) =>
        SharedObjectLease.OpenOrCreate(() => Open(name, options), () => Create(name, options));

    /// <summary>Takes the lock, waiting as long as it takes.</summary>
    /// <exception cref="ShmLockAbandonedException">The previous holder died holding it; the caller now holds it.</exception>
    /// <exception cref="LockRecursionException">This thread holds this (non-recursive) lock already.</exception>
    /// <exception cref="OperationCanceledException">Cancelled (seen within 20 ms); the lock is not held.</exception>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Acquire(CancellationToken cancellationToken = default)
    {
        if (!TryAcquireFast())
        {
            AcquireSlow(long.MaxValue, cancellationToken);
        }
    }

    /// <summary>Takes the lock if it can within <paramref name="timeout"/> (zero: one attempt, no wait). False when the time ran out.</summary>
    /// <exception cref="ShmLockAbandonedException">The previous holder died holding it; the caller now holds it.</exception>
    public bool TryAcquire(TimeSpan timeout)
    {
        if (TryAcquireFast())
        {
            return true;
        }

        return AcquireSlow(WaitSignal.DeadlineFrom(timeout), CancellationToken.None);
    }

    /// <summary>
    /// Takes the lock asynchronously. Completes synchronously (without allocating) when the lock is free. Otherwise the
    /// acquire is a pending operation on the process's few async waiter threads, which sleep on the lock's signal and check
    /// the holder's liveness every 100 ms; no thread is blocked per call. Not for recursive locks: thread ownership does not
    /// survive an await.
    /// </summary>
    /// <exception cref="ShmLockAbandonedException">The previous holder died holding it; the caller now holds it.</exception>
    /// <exception cref="NotSupportedException">The lock is recursive.</exception>
    public ValueTask AcquireAsync(CancellationToken cancellationToken = default)
    {
        if (_recursive)
        {
            return ValueTask.FromException(new NotSupportedException($"Lock '{Name}' is recursive: its ownership is per thread, which an await does not keep. Use Acquire."));
        }

        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled(cancellationToken);
        }

        if (TryAcquireFast())
        {
            return ValueTask.CompletedTask;
        }

        return AsyncWaits().WaitAsync(0, cancellationToken);
    }

    /// <summary>Takes the lock and returns a scope whose <see cref="Scope.Dispose"/> releases it: <c>using (lk.Hold()) { … }</c>.</summary>
    /// <exception cref="ShmLockAbandonedException">The previous holder died holding it; the caller holds it, and no scope was returned: release it yourself.</exception>
    public Scope Hold(CancellationToken cancellationToken = default)
    {
        Acquire(cancellationToken);
        return new Scope(this);
    }

    /// <summary>Releases the lock (for a recursive lock, one level of it).</summary>
    /// <exception cref="SynchronizationLockException">This process (for a recursive lock: this thread) does not hold the lock.</exception>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Release()
    {
        if (_lease.IsDisposed)
        {
            _lease.ThrowDisposed();
        }

        // Plain is enough: only our own CAS can have put our identity there, and we read our own writes.
        if (MappedAtomics.ReadInt64Plain(Owner) != _me)
        {
            ThrowNotHeld();
        }

        if (_recursive && !ReleaseLevel())
        {
            return;
        }

        MappedAtomics.WriteInt32Plain(_block + LockDescriptor.OwnerThreadOffset, 0);

        // Exchange: a full fence that publishes the protected data and Owner = 0, then the sleeper read (LAYOUT §4).
        MappedAtomics.ExchangeInt64(Owner, 0);
        _signal.NotifyFenced();
    }

    /// <summary>
    /// Releases every level this thread holds (a condition's wait: the lock must really be free while it sleeps) and returns
    /// the depth to give back to <see cref="AcquireRestoring"/>. Throws, changing nothing, when the lock is not held here.
    /// </summary>
    internal int ReleaseAll()
    {
        if (_lease.IsDisposed)
        {
            _lease.ThrowDisposed();
        }

        if (MappedAtomics.ReadInt64Plain(Owner) != _me)
        {
            ThrowNotHeld();
        }

        int depth = 1;
        if (_recursive)
        {
            if (MappedAtomics.ReadInt32Plain(_block + LockDescriptor.OwnerThreadOffset) != Environment.CurrentManagedThreadId)
            {
                ThrowNotHeld();
            }

            depth = Math.Max(1, MappedAtomics.ReadInt32Plain(_block + LockDescriptor.RecursionOffset));
            MappedAtomics.WriteInt32Plain(_block + LockDescriptor.RecursionOffset, 1);
        }

        Release();
        return depth;
    }

    /// <summary>Takes the lock again after <see cref="ReleaseAll"/>, with the depth it had (also when it comes back abandoned).</summary>
    internal void AcquireRestoring(int depth)
    {
        try
        {
            Acquire(CancellationToken.None);
        }
        catch (ShmLockAbandonedException)
        {
            RestoreDepth(depth);
            throw;
        }

        RestoreDepth(depth);
    }

    private void RestoreDepth(int depth)
    {
        if (_recursive && depth > 1)
        {
            MappedAtomics.WriteInt32Plain(_block + LockDescriptor.RecursionOffset, depth);
        }
    }

    /// <summary>
    /// Closes this process's handle (a no-op for the lock of an array or value: it lives as long as that object). Closing does not
    /// release a lock this process holds: other processes take it over only once this process has exited.
    /// </summary>
    public void Dispose()
    {
        if (_ownsLease)
        {
            _lease.Dispose();
        }
    }

    /// <summary>Removes the lock's name (for the lock of an array or value, that object's name). Processes that have it open keep using it.</summary>
    public void Unlink() => _lease.Unlink();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool TryAcquireFast()
    {
        if (_lease.IsDisposed)
        {
            _lease.ThrowDisposed();
        }

        if (MappedAtomics.CompareExchangeInt64(Owner, _me, 0) != 0)
        {
            return false;
        }

        TookOwnership();
        return true;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void TookOwnership()
    {
        MappedAtomics.WriteInt32Plain(_block + LockDescriptor.OwnerThreadOffset, Environment.CurrentManagedThreadId);
        if (_recursive)
        {
            MappedAtomics.WriteInt32Plain(_block + LockDescriptor.RecursionOffset, 1);
        }
    }

    /// <summary>Recursive release of one level; true when it was the last and the lock must be freed.</summary>
    private bool ReleaseLevel()
    {
        if (MappedAtomics.ReadInt32Plain(_block + LockDescriptor.OwnerThreadOffset) != Environment.CurrentManagedThreadId)
        {
            ThrowNotHeld();
        }

        int depth = MappedAtomics.ReadInt32Plain(_block + LockDescriptor.RecursionOffset);
        if (depth > 1)
        {
            MappedAtomics.WriteInt32Plain(_block + LockDescriptor.RecursionOffset, depth - 1);
            return false;
        }

        return true;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private bool AcquireSlow(long deadline, CancellationToken cancellationToken)
    {
        _lease.Enter();
        try
        {
            if (MappedAtomics.ReadInt64Acquire(Owner) == _me
                && MappedAtomics.ReadInt32Plain(_block + LockDescriptor.OwnerThreadOffset) == Environment.CurrentManagedThreadId)
            {
                if (!_recursive)
                {
                    throw new LockRecursionException($"This thread holds lock '{Name}' already, and it is not recursive (ShmLockOptions.Recursive).");
                }

                int depth = MappedAtomics.ReadInt32Plain(_block + LockDescriptor.RecursionOffset);
                MappedAtomics.WriteInt32Plain(_block + LockDescriptor.RecursionOffset, checked(depth + 1));
                return true;
            }

            var condition = new AcquireCondition(this);
            if (!_signal.Wait(ref condition, _lease.WaitStrategy, deadline, cancellationToken))
            {
                return false;
            }

            TookOwnership();
            if (condition.Abandoned is string detail)
            {
                throw new ShmLockAbandonedException(Name, condition.DeadPid, detail);
            }

            return true;
        }
        finally
        {
            _lease.Exit();
        }
    }

    /// <summary>Test-and-test-and-set: reads Owner, and CASes only when it reads 0.</summary>
    private bool TryTake() =>
        MappedAtomics.ReadInt64Acquire(Owner) == 0 && MappedAtomics.CompareExchangeInt64(Owner, _me, 0) == 0;

    /// <summary>
    /// If the holder is dead (or the owner word is no identity), takes the lock over: CAS dead -> me, so among several
    /// waiters only one wins. Returns why it was abandoned when this caller took it over, else null.
    /// </summary>
    private string? TryTakeOverFromDead(out int deadPid)
    {
        deadPid = 0;
        long owner = MappedAtomics.ReadInt64Acquire(Owner);
        if (owner == 0 || owner == _me)
        {
            return null;
        }

        string why;
        if (ProcessIdentity.IsIdentityWord((ulong)owner))
        {
            ProcessIdentity holder = ProcessIdentity.FromWord((ulong)owner);
            if (_lease.Platform.IsAlive(holder, startTimeBits: 32))
            {
                return null;
            }

            deadPid = holder.Pid;
            why = $"its holder, pid {holder.Pid}, died holding it";
        }
        else
        {
            why = $"its owner word 0x{owner:X16} names no process (a peer corrupted it)";
        }

        return MappedAtomics.CompareExchangeInt64(Owner, _me, owner) == owner ? why : null;
    }

    [DoesNotReturn]
    private void ThrowNotHeld() =>
        throw new SynchronizationLockException(_recursive
            ? $"Release of recursive lock '{Name}' by a thread that does not hold it."
            : $"Release of lock '{Name}' by a process that does not hold it.");

    private struct AcquireCondition(ShmLock owner) : IWaitCondition
    {
        private bool _held;

        public string? Abandoned { get; private set; }

        public int DeadPid { get; private set; }

        public bool IsSatisfied() => _held || (_held = owner.TryTake());

        public void BeforeSleep()
        {
            owner._lease.ThrowIfDisposed();
            if (!_held && owner.TryTakeOverFromDead(out int pid) is string why)
            {
                _held = true;
                Abandoned = why;
                DeadPid = pid;
            }
        }
    }

    private SharedStateWaits? _asyncWaits;

    private SharedStateWaits AsyncWaits()
    {
        if (Volatile.Read(ref _asyncWaits) is { } waits)
        {
            return waits;
        }

        lock (_signal)
        {
            return _asyncWaits ??= new SharedStateWaits(_lease, _signal, TryAcquireForAsync);
        }
    }

    /// <summary>One attempt of a pending <see cref="AcquireAsync"/> (on an async waiter thread); a dead holder's lock is taken over.</summary>
    private bool TryAcquireForAsync(long tag, bool checkPeers)
    {
        if (TryTake())
        {
            TookOwnership();
            return true;
        }

        if (checkPeers && TryTakeOverFromDead(out int pid) is string why)
        {
            TookOwnership();
            throw new ShmLockAbandonedException(Name, pid, why);
        }

        return false;
    }

    /// <summary>Holds the lock until disposed; from <see cref="Hold"/>.</summary>
    public readonly struct Scope : IDisposable
    {
        private readonly ShmLock? _lock;

        internal Scope(ShmLock held) => _lock = held;

        /// <summary>Releases the lock.</summary>
        public void Dispose() => _lock?.Release();
    }
}
