using ShmIpc.Protocol;

namespace ShmIpc.Pool;

/// <summary>A chunk whose results are of type <typeparamref name="TResult"/>.</summary>
/// <typeparam name="TResult">The function's result type.</typeparam>
internal sealed class PoolChunk<TResult> : PoolChunk
{
    private readonly TaskCompletionSource<ChunkOutcome<TResult>> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>The pooled array <see cref="PoolChunk.Message"/> lies in, until the chunk is settled (see <see cref="ReleaseMessage"/>).</summary>
    private byte[]? _rented;

    /// <summary>A chunk; <paramref name="rented"/>: the <see cref="System.Buffers.ArrayPool{T}.Shared"/> array that holds <paramref name="message"/>, if it was rented.</summary>
    public PoolChunk(long id, PoolFunction function, ReadOnlyMemory<byte> message, int count, byte[]? rented = null)
        : base(id, function, message, count)
    {
        _rented = rented;
    }

    public Task<ChunkOutcome<TResult>> Task => _completion.Task;

    /// <summary>Its encoded message, for a chunk made without one (before it is queued); <paramref name="rented"/> as in the constructor.</summary>
    public void SetMessage(ReadOnlyMemory<byte> message, byte[]? rented)
    {
        Message = message;
        _rented = rented;
    }

    /// <summary>
    /// For a one-item chunk (an Apply): its value or exception, completed by the reader thread together with
    /// <see cref="Task"/>. Waiting on it directly saves Get a hop through the thread pool.
    /// </summary>
    public TaskCompletionSource<TResult>? Single { get; init; }

    /// <summary>Where its values go (a slice of a Map's result array); null: an array of its own.</summary>
    public TResult[]? Target { get; init; }

    /// <summary>The Map it belongs to, told when it is settled (instead of a continuation on <see cref="Task"/>).</summary>
    public MapCompletion<TResult>? Map { get; set; }

    /// <summary>The index in <see cref="Target"/> of its first value.</summary>
    public int TargetOffset { get; init; }

    public override bool IsCompleted => _completion.Task.IsCompleted;

    public override void Complete(ref MessageReader reader, IShmObjectSerializer serializer, bool raw)
    {
        Hosting.MapTimeline.Mark("result-received", Id);
        ReleaseMessage();
        int count = reader.ReadInt32();
        if (count != Count)
        {
            throw new InvalidDataException($"Chunk {Id} had {Count} items; its results have {count}.");
        }

        ChunkOutcome<TResult> outcome = Target is null ? new(count) : new(Target, TargetOffset, count);
        ChunkResults.Read(ref reader, Function, serializer, raw, outcome);
        Hosting.MapTimeline.Mark("result-read", Id);
        if (_completion.TrySetResult(outcome))
        {
            OnSettled(outcome.FirstError);
            Map?.ChunkSettled(failed: outcome.FirstError is not null);
        }

        if (Single is not null)
        {
            if (outcome.ErrorAt(0) is Exception error)
            {
                Single.TrySetException(error);
            }
            else
            {
                Single.TrySetResult(outcome.ValueAt(0));
            }
        }
    }

    public override void Fail(Exception exception)
    {
        ReleaseMessage();
        if (_completion.TrySetException(exception))
        {
            OnSettled(exception);
            if (Map is not null)
            {
                // Only the Map reads a chunk's task, and it reports one failure: the others must not surface later
                // as unobserved task exceptions.
                _ = _completion.Task.Exception;
                Map.ChunkSettled(failed: true);
            }
        }

        Single?.TrySetException(exception);
    }

    /// <summary>
    /// Gives a rented message array back to the pool. Only once the chunk is being settled: a chunk reaches Complete
    /// or Fail only after it left its worker's list and the queue (under the pool's lock), so nothing sends it again.
    /// </summary>
    private void ReleaseMessage()
    {
        if (Interlocked.Exchange(ref _rented, null) is byte[] array)
        {
            Message = default;
            System.Buffers.ArrayPool<byte>.Shared.Return(array);
        }
    }
}
