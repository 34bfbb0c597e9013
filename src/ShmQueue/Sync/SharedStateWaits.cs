using ShmIpc.Async;
using ShmIpc.Signaling;

namespace ShmIpc.Sync;

/// <summary>
/// The pending async waits of one shared-state object (a lock's acquires, an event's or a semaphore's waits) on the
/// process's async waiter threads (<see cref="AsyncWaitEngine"/>), sleeping on the object's §4 signal.
/// </summary>
internal sealed class SharedStateWaits : AsyncWaitQueue
{
    private readonly SharedObjectLease _lease;
    private readonly WaitSignal _signal;
    private readonly TryWait _tryWait;
    private readonly OperationCache<bool> _operations = new();

    /// <summary>
    /// One non-blocking attempt for a wait that carries <paramref name="tag"/> (an event's generation at the call): true
    /// when it succeeded (the lock taken, the count consumed, the event seen set). <paramref name="checkPeers"/>: make the
    /// checks a sleeper makes before each slice (a dead holder). Throws to fault the wait.
    /// </summary>
    public delegate bool TryWait(long tag, bool checkPeers);

    public SharedStateWaits(SharedObjectLease lease, WaitSignal signal, TryWait tryWait)
    {
        _lease = lease;
        _signal = signal;
        _tryWait = tryWait;
        lease.AddAsyncWaits(this);
    }

    /// <summary>A pending wait: the caller already tried once synchronously and failed.</summary>
    public ValueTask WaitAsync(long tag, CancellationToken cancellationToken)
    {
        AsyncOperation<bool> operation = _operations.Rent();
        operation.Tag = tag;
        ValueTask task = operation.AsValueTask();
        Add(operation, cancellationToken);
        return task;
    }

    protected override WaitSignal Signal => _signal;

    protected override void EnterOwner() => _lease.Enter();

    protected override void ExitOwner() => _lease.Exit();

    protected override bool TryServe(AsyncOperation operation, bool checkPeers)
    {
        _lease.ThrowIfDisposed();
        if (!_tryWait(operation.Tag, checkPeers))
        {
            return false;
        }

        ((AsyncOperation<bool>)operation).StageResult(true);
        return true;
    }
}
