using ShmIpc.Protocol;

namespace ShmIpc.Pool;

/// <summary>A function the pool has named with a small id, so chunks carry 4 bytes instead of its full identity.</summary>
internal sealed record PoolFunction(int Id, Hosting.TargetMethod Target, Type ArgumentType, Type ResultType);

/// <summary>
/// One unit of dispatch: a run of items of one function, encoded once as a Chunk message (kept for
/// resending when its worker dies). Its state changes only under the pool's lock.
/// </summary>
internal abstract class PoolChunk
{
    protected PoolChunk(long id, PoolFunction function, byte[] message, int count)
    {
        Id = id;
        Function = function;
        Message = message;
        Count = count;
    }

    public long Id { get; }

    public PoolFunction Function { get; }

    /// <summary>The encoded Chunk message.</summary>
    public byte[] Message { get; }

    public int Count { get; }

    /// <summary>The worker holding it, or null while it waits in the queue.</summary>
    public PoolWorker? Worker { get; set; }

    /// <summary>Times it was sent again after its worker crashed.</summary>
    public int Retries { get; set; }

    /// <summary>Why it is being stopped (cancel, timeout) while its worker is being killed; null otherwise.</summary>
    public Exception? StopReason { get; set; }

    public abstract bool IsCompleted { get; }

    /// <summary>Reads the results that follow the chunk id in a Results message.</summary>
    public abstract void Complete(ref MessageReader reader, IShmObjectSerializer serializer);

    public abstract void Fail(Exception exception);
}

/// <summary>What a chunk produced: a value or an exception per item.</summary>
/// <typeparam name="TResult">The function's result type.</typeparam>
internal sealed class ChunkOutcome<TResult>
{
    public ChunkOutcome(int count)
    {
        Values = new TResult[count];
        Errors = new Exception?[count];
    }

    public TResult[] Values { get; }

    public Exception?[] Errors { get; }

    /// <summary>The first item's exception, if any failed.</summary>
    public Exception? FirstError => Array.Find(Errors, static e => e is not null);
}

/// <summary>A chunk whose results are of type <typeparamref name="TResult"/>.</summary>
/// <typeparam name="TResult">The function's result type.</typeparam>
internal sealed class PoolChunk<TResult> : PoolChunk
{
    private readonly TaskCompletionSource<ChunkOutcome<TResult>> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public PoolChunk(long id, PoolFunction function, byte[] message, int count)
        : base(id, function, message, count)
    {
    }

    public Task<ChunkOutcome<TResult>> Task => _completion.Task;

    /// <summary>
    /// For a one-item chunk (an Apply): its value or exception, completed by the reader thread together with
    /// <see cref="Task"/>. Waiting on it directly saves Get a hop through the thread pool.
    /// </summary>
    public TaskCompletionSource<TResult>? Single { get; init; }

    public override bool IsCompleted => _completion.Task.IsCompleted;

    public override void Complete(ref MessageReader reader, IShmObjectSerializer serializer)
    {
        int count = reader.ReadInt32();
        if (count != Count)
        {
            throw new InvalidDataException($"Chunk {Id} had {Count} items; its results have {count}.");
        }

        var outcome = new ChunkOutcome<TResult>(count);
        bool raw = RawValues.Applies<TResult>(serializer) && Function.ResultType == typeof(TResult);
        for (int i = 0; i < count; i++)
        {
            if (reader.ReadByte() == 0)
            {
                ReadOnlyMemory<byte> bytes = reader.ReadBytes();
                try
                {
                    outcome.Values[i] = raw ? RawValues.Read<TResult>(bytes.Span) : (TResult)serializer.Deserialize(Function.ResultType, bytes)!;
                }
#pragma warning disable CA1031 // A result that cannot be read fails its item only.
                catch (Exception e)
#pragma warning restore CA1031
                {
                    outcome.Errors[i] = e;
                }
            }
            else
            {
                outcome.Errors[i] = reader.ReadError().ToException();
            }
        }

        _completion.TrySetResult(outcome);
        if (Single is not null)
        {
            if (outcome.Errors[0] is Exception error)
            {
                Single.TrySetException(error);
            }
            else
            {
                Single.TrySetResult(outcome.Values[0]);
            }
        }
    }

    public override void Fail(Exception exception)
    {
        _completion.TrySetException(exception);
        Single?.TrySetException(exception);
    }
}
