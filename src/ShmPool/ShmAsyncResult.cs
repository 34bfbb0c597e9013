namespace ShmIpc;

/// <summary>
/// The pending result of <see cref="ShmPool.ApplyAsync{TArg, TResult}"/> or <see cref="ShmPool.MapAsync{TArg, TResult}"/>,
/// as Python's <c>AsyncResult</c>; <see cref="Task"/> is there to await.
/// </summary>
/// <typeparam name="TResult">The result type.</typeparam>
public sealed class ShmAsyncResult<TResult>
{
    private readonly Action _cancel;

    internal ShmAsyncResult(Task<TResult> task, Action cancel)
    {
        Task = task;
        _cancel = cancel;
    }

    /// <summary>Completes with the result, or faults with <see cref="ShmRemoteException"/>, <see cref="ShmWorkerCrashedException"/>,
    /// <see cref="TimeoutException"/> (the pool's task timeout) or <see cref="OperationCanceledException"/>.</summary>
    public Task<TResult> Task { get; }

    /// <summary>True once the task has completed, one way or another.</summary>
    public bool IsReady => Task.IsCompleted;

    /// <summary>True when the task completed with a result.</summary>
    /// <exception cref="InvalidOperationException">The task has not completed yet.</exception>
    public bool IsSuccessful => IsReady
        ? Task.IsCompletedSuccessfully
        : throw new InvalidOperationException("The task has not completed yet; check IsReady or Wait first.");

    /// <summary>
    /// Waits up to <paramref name="timeout"/> for the result. After a timeout the task goes on running:
    /// call again, or <see cref="Cancel"/> it.
    /// </summary>
    /// <exception cref="TimeoutException">Not ready within <paramref name="timeout"/>.</exception>
    /// <exception cref="ShmRemoteException">The function threw in the worker.</exception>
    /// <exception cref="ShmWorkerCrashedException">The worker died while holding the task.</exception>
    public TResult Get(TimeSpan timeout)
    {
        if (!Wait(timeout))
        {
            throw new TimeoutException($"The task did not complete within {timeout.TotalMilliseconds:0} ms; it is still running.");
        }

        return Task.GetAwaiter().GetResult();
    }

    /// <summary>Waits for the result with no time limit.</summary>
    public TResult Get() => Get(Timeout.InfiniteTimeSpan);

    /// <summary>Waits up to <paramref name="timeout"/> for the task to complete; false if it has not.</summary>
    public bool Wait(TimeSpan timeout)
    {
        try
        {
            return Task.Wait(timeout);
        }
        catch (AggregateException)
        {
            return true; // completed, unsuccessfully: Get rethrows the original exception
        }
    }

    /// <summary>
    /// Stops the task: one not started yet is dropped; one running is stopped by killing its worker, which
    /// the pool replaces (other tasks that worker held are sent again, not failed). The task fails with
    /// <see cref="OperationCanceledException"/>. Nothing happens when it has completed already.
    /// </summary>
    public void Cancel() => _cancel();
}
