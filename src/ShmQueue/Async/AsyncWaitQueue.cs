using System.Diagnostics;
using ShmIpc.Signaling;

namespace ShmIpc.Async;

/// <summary>
/// The pending async calls of one endpoint in one direction (a pipe end's receives, a queue's enqueues, a lock's
/// acquires), in arrival order, and their one registration as a sleeper on the endpoint's <see cref="WaitSignal"/>.
/// Attached to one <see cref="AsyncWaiterThread"/> while it has calls; the thread sleeps on the signal's semaphore.
/// </summary>
/// <remarks>
/// Design:
/// - State (<c>_attached</c>, under <c>_lock</c>): Detached -> Attached when the first call is added (the adder takes the
///   owner's disposal guard with <see cref="EnterOwner"/> and hands the queue to a waiter thread); Attached -> Detached when
///   the waiter thread finds the FIFO empty (it settles the registration, lets the semaphore go and leaves the owner's
///   guard, all under <c>_lock</c>, so a new call that re-attaches meets a fully detached queue).
/// - While attached, the waiter thread alone serves the FIFO, registers, settles, and completes operations. The adder
///   and the cancellation callback only append or flag, set <c>Dirty</c> and kick the thread.
/// - The registration (LAYOUT §4, <see cref="WaitSignal"/>): Service registers (a full fence) before it looks at the
///   shared state, so a publication it does not see will post. A post consumed by the thread (sem_trywait) settles the
///   registration; when the FIFO empties, the registration is taken back, or if a notifier took it meanwhile the post it
///   owes is consumed later by the thread (<see cref="AsyncWaiterThread"/> keeps the semaphore watched for
///   <see cref="WaitSignal.SettleTimeout"/>), never by blocking the thread. So posts never pile up in the semaphore.
/// - Holding the owner's guard while attached keeps the mapping (the sleeper count, the rings) in place; the owner's
///   Dispose kicks its queues, whose next Service faults every call with the owner's ObjectDisposedException and detaches.
/// - The caller's adaptive spin (<see cref="CallerSpinDeadline"/>): a call that finds nothing ready may poll the shared
///   state for up to its wait strategy's <see cref="ShmWaitStrategy.SpinDuration"/>, capped at
///   <see cref="MaxCallerSpinTicks"/> (50 us; pure for 2 us, then yielding, as a synchronous wait spins), before it goes
///   pending. It spins only while this queue's last pending call was answered quickly: within <c>QuickWaitSpins</c> (4)
///   spins from the caller's first look (<c>_lastWaitTicks</c>, written by the waiter thread at completion; a pending
///   leg itself costs 20-40 us, which a spin removes); a spin that comes back empty makes the next 2^n - 1 calls skip it
///   (n consecutive misses, at most 6; reset by a spin that succeeds), so answers that keep arriving just after the spin
///   waste at most one spin in 64 calls. A first call, or one after a long wait, never spins: 1,000 endpoints awaiting
///   their first message burn nothing, and an endpoint whose messages come seldom stops spinning after one miss. Why: a
///   pending leg is a futex wake of the waiter thread (8-15 us on the 2-core VM) plus the thread-pool hop of the
///   continuation (6-12 us); two processes that await each other in a
///   ping-pong keep answering within a few microseconds once both spin, so nothing goes pending at all. Measured (bench
///   "async", probe of the same loop): awaited 8 B round trip median 0.8-1.5 us with the spin against 37-51 us without,
///   and 3-5 us of CPU per round trip per process against ~50 us (the context switches cost more than the spin).
///   Spinning the waiter thread after a completion instead (polling the sleep set up to 20/50 us before futex_waitv)
///   gained 5-10% for more CPU; running continuations inline on the waiter thread halved the pending leg but would let
///   user code hold up every pending call of the process: both rejected. The spin holds the owner's guard (a
///   concurrent Dispose waits at most one spin) and does not watch the cancellation token (at most 50 us).
/// </remarks>
internal abstract class AsyncWaitQueue
{
    private readonly Lock _lock = new();
    private AsyncOperation? _head;
    private AsyncOperation? _tail;
    private int _pending;
    private volatile bool _attached;

    /// <summary>Set when this queue needs a look at the next pass whether or not a post came (new call, cancellation, dispose, retry).</summary>
    private volatile int _dirty;

    // The caller's adaptive spin (see Design): hints, read and written without a lock by callers and the waiter thread.
    /// <summary>How long the last call served by the waiter thread waited (ticks); <see cref="long.MaxValue"/>: long or unknown.</summary>
    private long _lastWaitTicks = long.MaxValue;
    private int _spinFailures;
    private int _spinSkips;

    // Owned by the waiter thread while attached.
    private AsyncWaiterThread? _thread;
    private bool _registered;
    private nint _semaphoreAddress;

    /// <summary>True while calls wait (the owner's fast path must not overtake them).</summary>
    public bool HasPending => Volatile.Read(ref _pending) != 0;

    internal bool IsDirty => _dirty != 0;

    internal bool IsRegistered => _registered;

    internal nint SemaphoreAddress => _semaphoreAddress;

    /// <summary>The signal the waiter thread sleeps on for this queue.</summary>
    protected abstract WaitSignal Signal { get; }

    /// <summary>Takes the owner's disposal guard (throws <see cref="ObjectDisposedException"/> when disposed).</summary>
    protected abstract void EnterOwner();

    protected abstract void ExitOwner();

    /// <summary>
    /// One non-blocking attempt at <paramref name="operation"/>: true when it is done (its result or error staged with
    /// <see cref="AsyncOperation{T}.StageResult"/>); false when it must wait. May throw (the error becomes the operation's).
    /// <paramref name="checkPeers"/> is true about every <see cref="AsyncWaiterThread.PeerCheckMs"/>: make the checks a sleeper
    /// makes before each sleep slice (a dead peer, a dead lock holder). Call <see cref="RequestRetry"/> when the attempt
    /// could not look (a guard busy) and no post will say when to look again.
    /// </summary>
    protected abstract bool TryServe(AsyncOperation operation, bool checkPeers);

    /// <summary>The longest a caller spins before its call goes pending, whatever its wait strategy says.</summary>
    public static readonly long MaxCallerSpinTicks = Stopwatch.Frequency / 20_000; // 50 us

    /// <summary>A pending call that waited up to this many spins' worth still counts as "answered quickly".</summary>
    private const int QuickWaitSpins = 4;

    /// <summary>After this many spins in a row came back empty, the caller skips 2^n - 1 calls before it spins again.</summary>
    private const int MaxSpinBackoff = 6;

    /// <summary>
    /// Until when a caller that found nothing should spin before its call goes pending (a <see cref="Stopwatch"/>
    /// timestamp), or 0 for no spin: see the Design block. The caller reports the outcome with <see cref="SpinEnded"/>.
    /// </summary>
    public long CallerSpinDeadline(ShmWaitStrategy strategy, long now)
    {
        if (Volatile.Read(ref _spinSkips) > 0)
        {
            Interlocked.Decrement(ref _spinSkips);
            return 0;
        }

        long spin = SpinTicks(strategy);
        return spin > 0 && Volatile.Read(ref _lastWaitTicks) <= spin * QuickWaitSpins ? now + spin : 0;
    }

    /// <summary>Would a caller that finds nothing spin now (no side effect; tests)?</summary>
    public bool WouldSpin(ShmWaitStrategy strategy)
    {
        long spin = SpinTicks(strategy);
        return spin > 0 && Volatile.Read(ref _spinSkips) <= 0 && Volatile.Read(ref _lastWaitTicks) <= spin * QuickWaitSpins;
    }

    /// <summary>A caller's spin found what it waited for (<paramref name="succeeded"/>) or ran out: the backoff of the Design block.</summary>
    public void SpinEnded(bool succeeded)
    {
        if (succeeded)
        {
            Volatile.Write(ref _spinFailures, 0);
            return;
        }

        int failures = Math.Min(Volatile.Read(ref _spinFailures) + 1, MaxSpinBackoff);
        Volatile.Write(ref _spinFailures, failures);
        Volatile.Write(ref _spinSkips, (1 << failures) - 1);
    }

    private static long SpinTicks(ShmWaitStrategy strategy) =>
        strategy.SpinDuration <= TimeSpan.Zero ? 0 : Math.Min((long)(strategy.SpinDuration.TotalSeconds * Stopwatch.Frequency), MaxCallerSpinTicks);

    /// <summary>Queues <paramref name="operation"/> (already rented and filled) and returns at once.</summary>
    public void Add(AsyncOperation operation, CancellationToken cancellationToken)
    {
        // Before publishing: a token cancelled meanwhile just flags the operation; the waiter thread completes it.
        operation.Start(this, cancellationToken);
        bool attach;
        lock (_lock)
        {
            if (_tail is null)
            {
                _head = operation;
            }
            else
            {
                _tail.Next = operation;
            }

            _tail = operation;
            _pending++;
            attach = !_attached;
            _attached = true;
        }

        if (!attach)
        {
            Kick();
            return;
        }

        try
        {
            EnterOwner();
        }
        catch (Exception e)
        {
            FailDetached(e);
            return;
        }

        _dirty = 1;
        AsyncWaitEngine.Attach(this);
    }

    /// <summary>A pending "wait until ready" call of kind <paramref name="kind"/> (the channel adapters' WaitToRead/WaitToWrite).</summary>
    public ValueTask<bool> WaitAsync(OperationCache<bool> cache, int kind, CancellationToken cancellationToken)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<bool>(cancellationToken);
        }

        AsyncOperation<bool> operation = cache.Rent();
        operation.Kind = kind;
        ValueTask<bool> task = operation.AsValueTaskOfT();
        Add(operation, cancellationToken);
        return task;
    }

    /// <summary>
    /// The ReadAllAsync of a queue or a pipe end: <paramref name="receive"/> until it throws an exception
    /// <paramref name="isEnd"/> accepts (the sequence then simply ends) or the token is cancelled.
    /// </summary>
    public static async IAsyncEnumerable<byte[]> ReadAll(Func<CancellationToken, ValueTask<byte[]>> receive, Func<Exception, bool> isEnd,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        while (true)
        {
            byte[] message;
            try
            {
                message = await receive(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (isEnd(e))
            {
                yield break;
            }

            yield return message;
        }
    }

    /// <summary>Asks the waiter thread to look at this queue at its next pass (and wakes it).</summary>
    public void Kick()
    {
        _dirty = 1;
        Volatile.Read(ref _thread)?.Kick();
    }

    /// <summary>Look again soon (within about a millisecond) even without a post.</summary>
    protected void RequestRetry() => _dirty = 1;

    /// <summary>
    /// The owner is being disposed: kick, then wait (bounded) until the waiter thread has faulted the calls and detached,
    /// so the owner's own drain finds no async guard left. Never called on a waiter thread.
    /// </summary>
    public void StopAndWait(TimeSpan timeout)
    {
        if (!_attached)
        {
            return;
        }

        Kick();
        long deadline = Stopwatch.GetTimestamp() + (long)(timeout.TotalSeconds * Stopwatch.Frequency);
        var spinner = new SpinWait();
        while (_attached && Stopwatch.GetTimestamp() < deadline)
        {
            spinner.SpinOnce(sleep1Threshold: 10);
        }
    }

    /// <summary>The waiter thread took this queue: keep its semaphore mapped and make every post wake the thread.</summary>
    internal void OnAttached(AsyncWaiterThread thread, IMultiSemaphoreWait wait)
    {
        Volatile.Write(ref _thread, thread);
        _semaphoreAddress = Signal.Semaphore.AcquireAddress();
        wait.BeginWatch(_semaphoreAddress);
        _dirty = 1;
    }

    /// <summary>A post was consumed for this queue's registration: it is settled.</summary>
    internal void OnPostConsumed() => _registered = false;

    /// <summary>
    /// The waiter thread's pass over this queue: complete cancelled calls, register, serve calls in order until one must
    /// wait. False when the FIFO emptied and the queue detached (the thread drops it).
    /// </summary>
    internal bool Service(AsyncWaiterThread thread, IMultiSemaphoreWait wait, bool checkPeers)
    {
        _dirty = 0;
        CompleteCancelled();
        if (!_registered)
        {
            Signal.Register();
            _registered = true;
        }

        while (true)
        {
            AsyncOperation? operation;
            lock (_lock)
            {
                operation = _head;
                if (operation is null)
                {
                    Detach(thread, wait);
                    return false;
                }
            }

            bool done;
            try
            {
                done = TryServe(operation, checkPeers);
            }
            catch (Exception e)
            {
                operation.StageException(e);
                done = true;
            }

            if (!done)
            {
                return true;
            }

            if (operation.WaitStart != 0)
            {
                Volatile.Write(ref _lastWaitTicks, Stopwatch.GetTimestamp() - operation.WaitStart);
            }

            lock (_lock)
            {
                Unlink(operation);
            }

            operation.Complete();
            checkPeers = false;
        }
    }

    private void CompleteCancelled()
    {
        AsyncOperation? cancelled = null;
        lock (_lock)
        {
            AsyncOperation? previous = null;
            for (AsyncOperation? op = _head; op is not null;)
            {
                AsyncOperation? next = op.Next;
                if (op.CancelRequested)
                {
                    RemoveAfter(previous, op);
                    op.StageCanceled();
                    op.Next = cancelled;
                    cancelled = op;
                }
                else
                {
                    previous = op;
                }

                op = next;
            }
        }

        CompleteChain(cancelled);
    }

    /// <summary>Settles the registration, lets the semaphore go and the owner's guard, under the lock (see Design).</summary>
    private void Detach(AsyncWaiterThread thread, IMultiSemaphoreWait wait)
    {
        if (_registered)
        {
            _registered = false;
            if (!Signal.TryTakeBackRegistration())
            {
                // A notifier took our registration: its post is due. The thread consumes it later; it keeps the address.
                thread.AddOwedPost(_semaphoreAddress, Signal.Semaphore);
                _semaphoreAddress = 0;
            }
        }

        if (_semaphoreAddress != 0)
        {
            wait.EndWatch(_semaphoreAddress);
            Signal.Semaphore.ReleaseAddress();
            _semaphoreAddress = 0;
        }

        Volatile.Write(ref _thread, null);
        ExitOwner();
        _attached = false;
    }

    /// <summary>The attach failed (the owner is disposed): every queued call fails with <paramref name="error"/>.</summary>
    private void FailDetached(Exception error)
    {
        AsyncOperation? chain;
        lock (_lock)
        {
            chain = null;
            for (AsyncOperation? op = _head; op is not null;)
            {
                AsyncOperation? next = op.Next;
                op.StageException(error);
                op.Next = chain;
                chain = op;
                op = next;
            }

            _head = _tail = null;
            _pending = 0;
            _attached = false;
        }

        CompleteChain(chain);
    }

    private static void CompleteChain(AsyncOperation? chain)
    {
        while (chain is not null)
        {
            AsyncOperation? next = chain.Next;
            chain.Next = null;
            chain.Complete();
            chain = next;
        }
    }

    private void Unlink(AsyncOperation head)
    {
        Debug.Assert(ReferenceEquals(head, _head));
        RemoveAfter(null, head);
    }

    private void RemoveAfter(AsyncOperation? previous, AsyncOperation op)
    {
        if (previous is null)
        {
            _head = op.Next;
        }
        else
        {
            previous.Next = op.Next;
        }

        if (ReferenceEquals(_tail, op))
        {
            _tail = previous;
        }

        op.Next = null;
        _pending--;
    }
}
