using System.Runtime.CompilerServices;

namespace ShmIpc;

/// <summary>
/// The pending result of <see cref="ShmPool.ApplyAsync{TArg, TResult}"/> or <see cref="ShmPool.MapAsync{TArg, TResult}"/>,
/// as Python's <c>AsyncResult</c>. Await it (<c>await pool.ApplyAsync(f, x)</c>), wait for it (<see cref="Get()"/>),
/// or take it as a task (<see cref="AsTask"/>).
/// </summary>
/// <remarks>
/// Waiting is separate from the task: a wait that times out or is cancelled stops waiting and leaves the task running
/// (wait again, or <see cref="Cancel"/> it). Only <see cref="Cancel"/> stops the task.
/// </remarks>
/// <typeparam name="TResult">The result type.</typeparam>
public sealed class ShmAsyncResult<TResult>
{
    private readonly Action _cancel;

    internal ShmAsyncResult(Task<TResult> task, Action cancel, Action? abandon = null)
    {
        Task = task;
        _cancel = cancel;
        Abandon = abandon ?? cancel;
    }

    /// <summary>Completes with the result, or faults with <see cref="ShmRemoteException"/>, <see cref="ShmWorkerCrashedException"/>,
    /// <see cref="TimeoutException"/> (the pool's task timeout) or <see cref="OperationCanceledException"/>.</summary>
    public Task<TResult> Task { get; }

    /// <summary>
    /// What the pool does when the only caller waiting gives up (a cancelled or timed-out Map): the parts not started yet
    /// are dropped; the parts a worker runs already finish, unseen.
    /// </summary>
    internal Action Abandon { get; }

    /// <summary>True once the task has completed, one way or another.</summary>
    public bool IsReady => Task.IsCompleted;

    /// <summary>True when the task completed with a result.</summary>
    /// <exception cref="InvalidOperationException">The task has not completed yet.</exception>
    public bool IsSuccessful => IsReady
        ? Task.IsCompletedSuccessfully
        : throw new InvalidOperationException("The task has not completed yet; check IsReady or Wait first.");

    /// <summary>Lets <c>await</c> take the result: <c>int r = await pool.ApplyAsync(f, x);</c>.</summary>
    public TaskAwaiter<TResult> GetAwaiter() => Task.GetAwaiter();

    /// <summary>The task that completes with the result (the same as <see cref="Task"/>), for <c>Task.WhenAll</c> and the like.</summary>
    public Task<TResult> AsTask() => Task;

    /// <summary>Waits for the result with no time limit.</summary>
    /// <exception cref="ShmRemoteException">The function threw in the worker.</exception>
    /// <exception cref="ShmWorkerCrashedException">The worker died while holding the task.</exception>
    public TResult Get() => Task.GetAwaiter().GetResult();

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
            throw new TimeoutException($"The pool task did not complete within {timeout.TotalMilliseconds:0} ms; it is still running.");
        }

        return Task.GetAwaiter().GetResult();
    }

    /// <summary>
    /// Waits for the result until <paramref name="cancellationToken"/> is cancelled. A cancelled wait leaves the task
    /// running: call again, or <see cref="Cancel"/> it.
    /// </summary>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled first.</exception>
    /// <exception cref="ShmRemoteException">The function threw in the worker.</exception>
    /// <exception cref="ShmWorkerCrashedException">The worker died while holding the task.</exception>
    public TResult Get(CancellationToken cancellationToken)
    {
        _ = Wait(Timeout.InfiniteTimeSpan, cancellationToken);
        return Task.GetAwaiter().GetResult();
    }

    /// <summary>Waits up to <paramref name="timeout"/> for the result; false (and the task still running) if it has not come.</summary>
    /// <exception cref="ShmRemoteException">The function threw in the worker.</exception>
    /// <exception cref="ShmWorkerCrashedException">The worker died while holding the task.</exception>
    public bool TryGet(out TResult result, TimeSpan timeout)
    {
        if (!Wait(timeout))
        {
            result = default!;
            return false;
        }

        result = Task.GetAwaiter().GetResult();
        return true;
    }

    /// <summary>Completes with the result; a cancelled <paramref name="cancellationToken"/> ends the wait, not the task.</summary>
    public Task<TResult> GetAsync(CancellationToken cancellationToken = default) => Task.WaitAsync(cancellationToken);

    /// <summary>Waits up to <paramref name="timeout"/> for the task to complete; false if it has not.</summary>
    public bool Wait(TimeSpan timeout) => Wait(timeout, CancellationToken.None);

    /// <summary>Waits for the task to complete (successfully or not), up to <paramref name="timeout"/>; false if it has not.</summary>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled first.</exception>
    internal bool Wait(TimeSpan timeout, CancellationToken cancellationToken)
    {
        if (Task.IsCompleted)
        {
            return true;
        }

        try
        {
            return Task.Wait(timeout, cancellationToken);
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
