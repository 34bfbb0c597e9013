using ShmIpc.Pool;

namespace ShmIpc;

// Apply: one call in a worker (see ShmPool.CallerPath.cs for the synchronous fast path).
public sealed partial class ShmPool
{
    /// <summary>Runs <paramref name="function"/>(<paramref name="arg"/>) in a worker and waits for the result.</summary>
    /// <exception cref="ShmRemoteException">The function threw.</exception>
    /// <exception cref="ShmWorkerCrashedException">The worker died while running it.</exception>
    public TResult Apply<TArg, TResult>(Func<TArg, TResult> function, TArg arg)
    {
        PoolFunction f = Register(function);

        // This thread's reused chunk: its own message buffer and outcome, a monitor instead of a Task. Given
        // back only once completed, when no worker or queue refers to it any more (see SyncChunk).
        SyncChunk<TResult> chunk = SyncChunk<TResult>.Rent();
        long id = Interlocked.Increment(ref _nextChunkId);
        EncodeChunk<TArg, TResult>(chunk.Writer, id, f, [arg]);
        chunk.Start(id, f);
        chunk.BeginTelemetry(TaskActivityName);

        // An idle worker whose reader is parked: send and take the reply on this thread (see the Design notes).
        if (SubmitAndTakeReceive(chunk) is PoolWorker worker)
        {
            ReceiveFor(worker, chunk);
        }

        chunk.Wait();
        Exception? error = chunk.Outcome.ErrorAt(0);
        TResult result = chunk.Outcome.ValueAt(0);
        chunk.Return(ReusedWriterLimit);
        if (error is not null)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(error);
        }

        return result;
    }

    /// <summary>Sends <paramref name="function"/>(<paramref name="arg"/>) to a worker; the result comes later.</summary>
    public ShmAsyncResult<TResult> ApplyAsync<TArg, TResult>(Func<TArg, TResult> function, TArg arg)
    {
        PoolFunction f = Register(function);
        PoolChunk<TResult> chunk = MakeChunk<TArg, TResult>(f, [arg], new TaskCompletionSource<TResult>(TaskCreationOptions.RunContinuationsAsynchronously));
        Submit([chunk]);
        return new ShmAsyncResult<TResult>(chunk.Single!.Task, () => Cancel([chunk]), () => DropQueued([chunk]));
    }

    /// <summary>
    /// As <see cref="Apply{TArg, TResult}(Func{TArg, TResult}, TArg)"/>, until <paramref name="cancellationToken"/> is cancelled.
    /// </summary>
    /// <remarks>
    /// Cancellation ends the wait at once with <see cref="OperationCanceledException"/>. A task no worker has started yet is
    /// dropped; one a worker runs already finishes there, unseen (the caller stops waiting; the worker is not killed). To stop
    /// a running task, use <see cref="ApplyAsync{TArg, TResult}"/> and <see cref="ShmAsyncResult{TResult}.Cancel"/>, which
    /// kills its worker. The pool stays usable either way.
    /// </remarks>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled first.</exception>
    /// <exception cref="ShmRemoteException">The function threw.</exception>
    /// <exception cref="ShmWorkerCrashedException">The worker died while running it.</exception>
    public TResult Apply<TArg, TResult>(Func<TArg, TResult> function, TArg arg, CancellationToken cancellationToken)
    {
        if (!cancellationToken.CanBeCanceled)
        {
            return Apply(function, arg);
        }

        cancellationToken.ThrowIfCancellationRequested();
        return WaitOrAbandon(ApplyAsync(function, arg), cancellationToken);
    }

    /// <summary>As <see cref="Apply{TArg, TResult}(Func{TArg, TResult}, TArg)"/>, waiting up to <paramref name="timeout"/>.</summary>
    /// <remarks>After a timeout, as after a cancellation (see <see cref="Apply{TArg, TResult}(Func{TArg, TResult}, TArg, CancellationToken)"/>):
    /// the task is dropped if no worker started it, and finishes unseen if one did.</remarks>
    /// <exception cref="TimeoutException">No result within <paramref name="timeout"/>.</exception>
    /// <exception cref="ShmRemoteException">The function threw.</exception>
    /// <exception cref="ShmWorkerCrashedException">The worker died while running it.</exception>
    public TResult Apply<TArg, TResult>(Func<TArg, TResult> function, TArg arg, TimeSpan timeout) =>
        TryApply(function, arg, out TResult result, timeout)
            ? result
            : throw new TimeoutException($"ShmPool: the task of {function.Method.Name} did not complete within {timeout.TotalMilliseconds:0} ms " +
                "(dropped if no worker had started it; otherwise it finishes unseen).");

    /// <summary>
    /// As <see cref="Apply{TArg, TResult}(Func{TArg, TResult}, TArg, TimeSpan)"/>, but false instead of a <see cref="TimeoutException"/>
    /// when the result has not come within <paramref name="timeout"/>.
    /// </summary>
    /// <exception cref="ShmRemoteException">The function threw.</exception>
    /// <exception cref="ShmWorkerCrashedException">The worker died while running it.</exception>
    public bool TryApply<TArg, TResult>(Func<TArg, TResult> function, TArg arg, out TResult result, TimeSpan timeout)
    {
        ThrowIfInvalidTimeout(timeout);
        return TryWaitOrAbandon(ApplyAsync(function, arg), timeout, CancellationToken.None, out result);
    }

    /// <summary>Waits for a call's result; a cancelled wait abandons it (see <see cref="ShmAsyncResult{TResult}.Abandon"/>).</summary>
    private static TResult WaitOrAbandon<TResult>(ShmAsyncResult<TResult> pending, CancellationToken cancellationToken)
    {
        if (!cancellationToken.CanBeCanceled)
        {
            return pending.Get(cancellationToken);
        }

        _ = TryWaitOrAbandon(pending, Timeout.InfiniteTimeSpan, cancellationToken, out TResult result);
        return result;
    }

    /// <summary>
    /// Waits up to <paramref name="timeout"/> for a call's result. The caller is the only one waiting: when it gives up (timeout,
    /// cancellation) the parts not started are dropped and the running ones finish unseen.
    /// </summary>
    private static bool TryWaitOrAbandon<TResult>(ShmAsyncResult<TResult> pending, TimeSpan timeout, CancellationToken cancellationToken, out TResult result)
    {
        bool completed;
        try
        {
            completed = pending.Wait(timeout, cancellationToken);
        }
        catch (OperationCanceledException)
        {
            pending.Abandon();
            throw;
        }

        if (!completed)
        {
            pending.Abandon();
            result = default!;
            return false;
        }

        result = pending.Get();
        return true;
    }

    /// <summary>A wait's timeout: not negative (but <see cref="Timeout.InfiniteTimeSpan"/>), checked before anything is sent.</summary>
    private static void ThrowIfInvalidTimeout(TimeSpan timeout, [System.Runtime.CompilerServices.CallerArgumentExpression(nameof(timeout))] string? name = null)
    {
        if (timeout < TimeSpan.Zero && timeout != Timeout.InfiniteTimeSpan)
        {
            throw new ArgumentOutOfRangeException(name, timeout, "A timeout is zero or more, or Timeout.InfiniteTimeSpan.");
        }
    }
}
