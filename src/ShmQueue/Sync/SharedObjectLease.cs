using System.Diagnostics;
using ShmIpc.Layout;
using ShmIpc.Memory;
using ShmIpc.Signaling;

namespace ShmIpc.Sync;

/// <summary>
/// One process's hold on a shared-state segment: the mapping, the segment's named semaphores (opened once), and the
/// disposal guard that keeps the mapping in place while a blocking wait still reads it. Every shared-state type owns
/// one; an array's or value's <see cref="ShmLock"/> borrows its parent's.
/// </summary>
/// <remarks>
/// Design: a blocking wait calls <see cref="Enter"/> / <see cref="Exit"/> around its wait; its wait condition
/// calls <see cref="ThrowIfDisposed"/> before every sleep slice. <see cref="Dispose"/> sets the flag, then waits (at most
/// about one sleep slice) for those waits to leave before it unmaps. No semaphore is posted to hurry them: a post
/// could be taken by another process's sleeper and stay in the semaphore (LAYOUT §4: posts must match registrations).
/// Non-blocking calls (an uncontended acquire, a counter add) only test the flag: disposing an object while another
/// thread is inside such a call is a race the caller must avoid, as with any <see cref="IDisposable"/>.
/// </remarks>
internal sealed unsafe class SharedObjectLease : IDisposable
{
    private readonly NamedSemaphore[] _semaphores;
    private readonly bool _unlinkOnDispose;
    private int _users;
    private volatile bool _disposed;
    private int _disposing;
    private List<SharedStateWaits>? _asyncWaits;

    private SharedObjectLease(ShmSegment segment, ShmSharedObjectOptions options)
    {
        Segment = segment;
        _unlinkOnDispose = segment.IsCreator && options.UnlinkOnDispose;
        WaitStrategy = options.WaitStrategy;
        _semaphores = new NamedSemaphore[segment.SemaphoreCount];
        try
        {
            for (int i = 0; i < _semaphores.Length; i++)
            {
                _semaphores[i] = segment.OpenSemaphore(i);
            }
        }
        catch
        {
            foreach (NamedSemaphore? s in _semaphores)
            {
                s?.Dispose();
            }

            throw;
        }
    }

    public ShmSegment Segment { get; }

    public string Name => Segment.Name;

    public ShmWaitStrategy WaitStrategy { get; }

    public ISharedMemoryPlatform Platform => Segment.Platform;

    public bool IsDisposed => _disposed;

    /// <summary>The §4 signal made of the sleeper count at <paramref name="sleepers"/> and semaphore <paramref name="semaphore"/>.</summary>
    public WaitSignal Signal(byte* sleepers, int semaphore) => new((int*)sleepers, _semaphores[semaphore]);

    /// <summary>The count of semaphore <paramref name="index"/> (tests check that posts never pile up).</summary>
    public int SemaphoreValue(int index) => _semaphores[index].CurrentCount;

    /// <summary>Creates the segment and wraps it; the segment is unlinked again if wrapping fails.</summary>
    public static SharedObjectLease Create(string name, SegmentKind kind, int controlSize, long dataSize, int semaphores,
        ShmSharedObjectOptions options, Action<ShmSegment> initialize)
    {
        options.Validate();
        ShmSegment segment = ShmSegment.Create(name, kind, controlSize, dataSize, semaphores, options.GroupAccess, initialize, keep: !options.UnlinkOnDispose);
        return Wrap(segment, options);
    }

    /// <summary>
    /// Opens and validates the segment: the header (kind included: another kind is refused naming both) by
    /// <see cref="ShmSegment.Open"/>, then the control block by <paramref name="validate"/> (null = usable).
    /// </summary>
    public static SharedObjectLease Open(string name, SegmentKind kind, ShmSharedObjectOptions options, Func<ShmSegment, string?> validate)
    {
        options.Validate();
        ShmSegment segment = ShmSegment.Open(name, kind, options.OpenTimeout, trust: options.Trust);
        string? problem;
        try
        {
            problem = validate(segment);
        }
        catch
        {
            segment.Dispose();
            throw;
        }

        if (problem is not null)
        {
            segment.Dispose();
            throw new ShmInvalidSegmentException(name, ShmSegmentError.Corrupted, $"{kind} control block: {problem}");
        }

        return Wrap(segment, options);
    }

    /// <summary>Opens the object if it exists, else creates it (retrying when another process creates it in between).</summary>
    public static T OpenOrCreate<T>(Func<T> open, Func<T> create)
    {
        for (int attempt = 0; ; attempt++)
        {
            try
            {
                return open();
            }
            catch (FileNotFoundException)
            {
            }

            try
            {
                return create();
            }
            catch (IOException e) when (attempt < 3 && e is not ShmDataException)
            {
                // Someone created it between our two calls: open theirs.
            }
        }
    }

    private static SharedObjectLease Wrap(ShmSegment segment, ShmSharedObjectOptions options)
    {
        try
        {
            return new SharedObjectLease(segment, options);
        }
        catch
        {
            if (segment.IsCreator)
            {
                segment.Unlink();
            }

            segment.Dispose();
            throw;
        }
    }

    /// <summary>Async waits of an object on this lease: <see cref="Dispose"/> faults them and waits for them to let go first.</summary>
    public void AddAsyncWaits(SharedStateWaits waits)
    {
        lock (_semaphores)
        {
            (_asyncWaits ??= []).Add(waits);
        }
    }

    /// <summary>Registers a blocking call: the mapping stays until it calls <see cref="Exit"/>.</summary>
    public void Enter()
    {
        Interlocked.Increment(ref _users);
        if (_disposed)
        {
            Interlocked.Decrement(ref _users);
            ThrowDisposed();
        }
    }

    public void Exit() => Interlocked.Decrement(ref _users);

    /// <summary>
    /// Waits on <paramref name="signal"/> until <paramref name="condition"/> holds, with the mapping kept for the whole
    /// wait (<see cref="Enter"/>/<see cref="Exit"/>) and this object's wait strategy: the wait of every shared-state type.
    /// </summary>
    public bool Wait<TCondition>(WaitSignal signal, ref TCondition condition, long deadline, CancellationToken cancellationToken)
        where TCondition : struct, IWaitCondition
    {
        Enter();
        try
        {
            return signal.Wait(ref condition, WaitStrategy, deadline, cancellationToken);
        }
        finally
        {
            Exit();
        }
    }

    /// <summary><paramref name="pointer"/> (into the mapping), after checking the object is not disposed: for the non-blocking calls.</summary>
    public byte* Guard(byte* pointer)
    {
        ThrowIfDisposed();
        return pointer;
    }

    public void ThrowIfDisposed()
    {
        if (_disposed)
        {
            ThrowDisposed();
        }
    }

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    public void ThrowDisposed() => throw new ObjectDisposedException(Segment.Name, $"Shared object '{Segment.Name}' has been disposed.");

    /// <summary>Removes the name (segment and semaphores). Processes that have it open keep using it.</summary>
    public void Unlink() => Segment.Unlink();

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposing, 1) != 0)
        {
            return;
        }

        _disposed = true;

        // Full fence: the flag is visible before we read _users (pairs with Enter's increment-then-check).
        Interlocked.MemoryBarrier();
        SharedStateWaits[] asyncWaits;
        lock (_semaphores)
        {
            asyncWaits = _asyncWaits?.ToArray() ?? [];
        }

        foreach (SharedStateWaits waits in asyncWaits)
        {
            waits.StopAndWait(TimeSpan.FromSeconds(10));
        }

        var spinner = new SpinWait();
        long deadline = Stopwatch.GetTimestamp() + (10 * Stopwatch.Frequency);
        while (Volatile.Read(ref _users) > 0)
        {
            spinner.SpinOnce(sleep1Threshold: 10);
            if (Stopwatch.GetTimestamp() > deadline)
            {
                // A wait that does not leave: leaving the mapping in place is better than a fault.
                return;
            }
        }

        if (_unlinkOnDispose)
        {
            Segment.Unlink();
        }

        foreach (NamedSemaphore semaphore in _semaphores)
        {
            semaphore.Dispose();
        }

        Segment.Dispose();
    }
}
