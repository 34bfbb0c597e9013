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
