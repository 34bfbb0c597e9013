using ShmIpc.Protocol;

namespace ShmIpc.Pool;

/// <summary>A function the pool has named with a small id, so chunks carry 4 bytes instead of its full identity.</summary>
internal sealed record PoolFunction(int Id, Hosting.TargetMethod Target, Type ArgumentType, Type ResultType, int ParameterCount);

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

    /// <summary>Reads the results that follow the chunk id in a Results message (or a RawResults one).</summary>
    public abstract void Complete(ref MessageReader reader, IShmObjectSerializer serializer, bool raw);

    public abstract void Fail(Exception exception);
}

/// <summary>What a chunk produced: a value or an exception per item.</summary>
/// <typeparam name="TResult">The function's result type.</typeparam>
internal sealed class ChunkOutcome<TResult>
{
    private Exception?[]? _errors;

    public ChunkOutcome(int count)
    {
        Values = new TResult[count];
    }

    public TResult[] Values { get; }

    /// <summary>The first item's exception, if any failed.</summary>
    public Exception? FirstError => _errors is null ? null : Array.Find(_errors, static e => e is not null);

    /// <summary>Item <paramref name="index"/>'s exception, or null when it has a value.</summary>
    public Exception? ErrorAt(int index) => _errors?[index];

    /// <summary>Item <paramref name="index"/> failed (the array of errors exists only once one did).</summary>
    public void SetError(int index, Exception error) => (_errors ??= new Exception?[Values.Length])[index] = error;
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

    public override void Complete(ref MessageReader reader, IShmObjectSerializer serializer, bool raw)
    {
        int count = reader.ReadInt32();
        if (count != Count)
        {
            throw new InvalidDataException($"Chunk {Id} had {Count} items; its results have {count}.");
        }

        var outcome = new ChunkOutcome<TResult>(count);
        if (raw)
        {
            ReadBlock(ref reader, outcome);
        }
        else
        {
            ReadItems(ref reader, serializer, outcome);
        }

        _completion.TrySetResult(outcome);
        if (Single is not null)
        {
            if (outcome.ErrorAt(0) is Exception error)
            {
                Single.TrySetException(error);
            }
            else
            {
                Single.TrySetResult(outcome.Values[0]);
            }
        }
    }

    /// <summary>RawResults: the results block, then the failed items (see <see cref="MessageKind.RawChunk"/>).</summary>
    private static void ReadBlock(ref MessageReader reader, ChunkOutcome<TResult> outcome)
    {
        int size = reader.ReadInt32();
        ReadOnlyMemory<byte> block = reader.ReadBytes();
        int errors = reader.ReadInt32();
        if (errors < 0 || errors > outcome.Values.Length)
        {
            throw new InvalidDataException($"A results block of {outcome.Values.Length} items reports {errors} failures.");
        }

        if (errors < outcome.Values.Length || block.Length != 0)
        {
            if (!RawValues.IsRaw<TResult>() || size != System.Runtime.CompilerServices.Unsafe.SizeOf<TResult>())
            {
                throw new InvalidDataException($"A results block of {size}-byte values cannot hold {typeof(TResult).Name} results.");
            }

            RawValues.CopyBlock(block.Span, outcome.Values.AsSpan());
        }

        for (int i = 0; i < errors; i++)
        {
            int index = reader.ReadInt32();
            if ((uint)index >= (uint)outcome.Values.Length)
            {
                throw new InvalidDataException($"A failure is reported for item {index} of {outcome.Values.Length}.");
            }

            outcome.SetError(index, reader.ReadError().ToException());
        }
    }

    private void ReadItems(ref MessageReader reader, IShmObjectSerializer serializer, ChunkOutcome<TResult> outcome)
    {
        int count = outcome.Values.Length;
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
                    outcome.SetError(i, e);
                }
            }
            else
            {
                outcome.SetError(i, reader.ReadError().ToException());
            }
        }
    }

    public override void Fail(Exception exception)
    {
        _completion.TrySetException(exception);
        Single?.TrySetException(exception);
    }
}
