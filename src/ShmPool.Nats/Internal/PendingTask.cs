namespace ShmIpc.Nats.Internal;

/// <summary>
/// A task a <see cref="NatsPool"/> has sent and waits for.
/// </summary>
/// <remarks>
/// Design: one state, owned by whoever removes the task from the pool's pending table first. The results loop (a result
/// came), the monitor (no worker, or the task timeout), the max-deliveries advisory (retries spent) and Terminate all
/// <c>TryRemove</c> it before they complete it, so exactly one of them does; a result that comes after another already
/// did (a task run twice after a worker died between its result and its ack) finds nothing and is dropped.
/// </remarks>
internal abstract class PendingTask(long id, string describe)
{
    public long Id { get; } = id;

    /// <summary>"Map chunk 3 of Funcs.Square in pool 'images'", for messages.</summary>
    public string Describe { get; } = describe;

    public long SubmittedTicks { get; } = Environment.TickCount64;

    /// <summary>The task's sequence in the stream, once the server confirmed it (0 before).</summary>
    public ulong Sequence { get; set; }

    /// <summary>The worker that took the task last (its id, host, pid) and which delivery that was; null before any took it.</summary>
    public (string WorkerId, string Host, int Pid, long Delivery)? Holder { get; set; }

    /// <summary>Completes (either way) when the task is over: what waits to clean up after it (its argument object) waits on this.</summary>
    public abstract Task Completion { get; }

    public abstract void Complete(ReadOnlyMemory<byte> body);

    public abstract void Fail(Exception error);
}

/// <summary>A chunk whose results are <typeparamref name="TResult"/>.</summary>
internal sealed class PendingTask<TResult>(long id, string describe, IShmObjectSerializer serializer) : PendingTask(id, describe)
{
    private readonly TaskCompletionSource<(TResult[] Values, Dictionary<int, ShmRemoteException>? Errors)> _done =
        new(TaskCreationOptions.RunContinuationsAsynchronously);

    public Task<(TResult[] Values, Dictionary<int, ShmRemoteException>? Errors)> Task => _done.Task;

    public override Task Completion => _done.Task;

    public override void Complete(ReadOnlyMemory<byte> body)
    {
        try
        {
            _done.TrySetResult(TaskWire.ReadResults<TResult>(serializer, body, Describe));
        }
        catch (Exception e) when (e is ShmRemoteException or InvalidDataException)
        {
            _done.TrySetException(e);
        }
    }

    public override void Fail(Exception error) => _done.TrySetException(error);
}
