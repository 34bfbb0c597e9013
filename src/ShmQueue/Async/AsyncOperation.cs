using System.Runtime.ExceptionServices;
using System.Threading.Tasks.Sources;

namespace ShmIpc.Async;

/// <summary>
/// One pending async call (a receive, a send, a lock acquire...), waiting in the FIFO of an <see cref="AsyncWaitQueue"/>.
/// The shape of System.Threading.Channels' <c>AsyncOperation</c>: a reusable <see cref="IValueTaskSource"/> over
/// <see cref="ManualResetValueTaskSourceCore{TResult}"/>, guarded by its version token.
/// </summary>
/// <remarks>
/// Design: states and who changes them.
/// <code>
/// from      event                                   to        by
/// Rented    Start (cancellation registered, queued)  Pending   the caller
/// Pending   ready (TryServe staged the result)       Staged    the waiter thread, holding the queue's lock
/// Pending   cancellation requested / disposed        Staged    the waiter thread (the callback only flags it and kicks)
/// Staged    unlinked from the FIFO, then Complete()  Completed the waiter thread, after the lock
/// Completed GetResult (awaiter)                      Rented    the awaiter: reset, back to its cache
/// </code>
/// An operation is unlinked from the FIFO before it completes: its continuation may rent the same object again at once
/// and queue it anew. Continuations never run on the waiter thread (RunContinuationsAsynchronously): user code after an
/// await must not hold up every other pending wait of the process. The cancellation registration is disposed before
/// completion, so a late callback cannot flag the operation's next use.
/// </remarks>
internal abstract class AsyncOperation
{
    private CancellationTokenRegistration _registration;
    private volatile bool _cancelRequested;
    private AsyncWaitQueue? _queue;

    /// <summary>The next operation in the queue's FIFO (under the queue's lock).</summary>
    internal AsyncOperation? Next;

    /// <summary>What to do (the owner's own numbering: receive, receive into, wait to read...).</summary>
    internal int Kind;

    /// <summary>Input of a send or enqueue.</summary>
    internal ReadOnlyMemory<byte> Message;

    /// <summary>Output buffer of a receive into memory.</summary>
    internal Memory<byte> Buffer;

    /// <summary>A word of state the owner needs (an event's generation at the call).</summary>
    internal long Tag;

    /// <summary>When the caller began to wait (its spin included): a <see cref="System.Diagnostics.Stopwatch"/> timestamp, 0 when unknown.</summary>
    internal long WaitStart;

    internal CancellationToken CancellationToken { get; private set; }

    internal bool CancelRequested => _cancelRequested;

    /// <summary>Registers cancellation: the callback only flags this operation and kicks its queue's waiter thread.</summary>
    internal void Start(AsyncWaitQueue queue, CancellationToken cancellationToken)
    {
        CancellationToken = cancellationToken;
        _cancelRequested = false;
        if (cancellationToken.CanBeCanceled)
        {
            _queue = queue;
            _registration = cancellationToken.UnsafeRegister(static (state, _) =>
            {
                var operation = (AsyncOperation)state!;
                operation._cancelRequested = true;
                operation._queue?.Kick();
            }, this);
        }
    }

    /// <summary>Stages the cancellation as this operation's outcome (the waiter thread, under the queue's lock).</summary>
    internal void StageCanceled() => StageException(new TaskCanceledException(null, null, CancellationToken));

    internal abstract void StageException(Exception error);

    /// <summary>Completes with the staged outcome: after the operation left the FIFO, never under the queue's lock.</summary>
    internal abstract void Complete();

    /// <summary>Disposes the cancellation registration (waits for a callback in flight: it only sets a flag).</summary>
    protected void EndCancellation()
    {
        _registration.Dispose();
        _registration = default;
        _queue = null;
    }

    protected void ClearInputs()
    {
        Next = null;
        Message = default;
        Buffer = default;
        Tag = 0;
        WaitStart = 0;
        CancellationToken = default;
    }
}

/// <summary>An <see cref="AsyncOperation"/> whose result is a <typeparamref name="T"/> (a send's is ignored: <see cref="bool"/>).</summary>
internal sealed class AsyncOperation<T> : AsyncOperation, IValueTaskSource<T>, IValueTaskSource
{
    private readonly OperationCache<T>? _cache;
    private ManualResetValueTaskSourceCore<T> _core = new() { RunContinuationsAsynchronously = true };
    private T? _result;
    private ExceptionDispatchInfo? _error;

    public AsyncOperation(OperationCache<T>? cache) => _cache = cache;

    public ValueTask<T> AsValueTaskOfT() => new(this, _core.Version);

    public ValueTask AsValueTask() => new(this, _core.Version);

    /// <summary>Stages a successful result (the waiter thread, under the queue's lock).</summary>
    public void StageResult(T result) => _result = result;

    internal override void StageException(Exception error) => _error = ExceptionDispatchInfo.Capture(error);

    internal override void Complete()
    {
        EndCancellation();
        if (_error is { } error)
        {
            _error = null;
            _core.SetException(error.SourceException);
        }
        else
        {
            _core.SetResult(_result!);
        }
    }

    public T GetResult(short token)
    {
        try
        {
            return _core.GetResult(token);
        }
        finally
        {
            Recycle();
        }
    }

    void IValueTaskSource.GetResult(short token) => GetResult(token);

    public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);

    public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);

    private void Recycle()
    {
        _result = default;
        ClearInputs();
        _core.Reset();
        _cache?.Return(this);
    }
}

/// <summary>
/// One reusable operation per endpoint and kind, as Channels keeps one per reader: the common single pending call costs
/// no allocation; a second concurrent call gets a fresh operation (collected after use).
/// </summary>
internal sealed class OperationCache<T>
{
    private AsyncOperation<T>? _item;

    public AsyncOperation<T> Rent() => Interlocked.Exchange(ref _item, null) ?? new AsyncOperation<T>(this);

    public void Return(AsyncOperation<T> operation) => Volatile.Write(ref _item, operation);
}
