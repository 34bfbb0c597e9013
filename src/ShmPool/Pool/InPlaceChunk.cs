using ShmIpc.Protocol;

namespace ShmIpc.Pool;

/// <summary>
/// One chunk of a MapInPlace or ForEachChunk: elements [start, start + count) of shared arrays. Its message names the
/// arrays and the bounds only; the worker reads and writes the elements where they are, and answers done or failed.
/// </summary>
internal sealed class InPlaceChunk : PoolChunk
{
    private readonly InPlaceCall _call;
    private int _settled;

    public InPlaceChunk(long id, PoolFunction function, ReadOnlyMemory<byte> message, int count, InPlaceCall call)
        : base(id, function, message, count)
    {
        _call = call;
    }

    /// <summary>
    /// Sent again after up to this many crashes, whatever TaskRetries says: a chunk run twice writes the same output slots
    /// with the same values (a torn first run is overwritten), so its call still completes with every element computed.
    /// Bounded, so a function that kills its worker every time fails the call instead of killing workers forever.
    /// </summary>
    public override int CrashRetries => 3;

    public override bool IsCompleted => Volatile.Read(ref _settled) != 0;

    /// <summary>Reads an <see cref="MessageKind.InPlaceResults"/> message after its chunk id: 0 (done), or 1, the failed index and the error.</summary>
    public override void Complete(ref MessageReader reader, IShmObjectSerializer serializer, bool raw)
    {
        Exception? failure = null;
        switch (reader.ReadByte())
        {
            case 0:
                break;
            case 1:
                _ = reader.ReadInt32(); // the failed element's index: the error's message names it too
                failure = reader.ReadError().ToException();
                break;
            default:
                throw new InvalidDataException($"In-place chunk {Id}: its results carry an unknown status.");
        }

        Settle(failure);
    }

    public override void Fail(Exception exception) => Settle(exception);

    private void Settle(Exception? failure)
    {
        if (Interlocked.Exchange(ref _settled, 1) == 0)
        {
            OnSettled(failure);
            _call.ChunkSettled(failure);
        }
    }
}

/// <summary>The end of a MapInPlace or ForEachChunk: completes when its last chunk is done, or fails with the first failure settled.</summary>
internal sealed class InPlaceCall
{
    private readonly TaskCompletionSource<bool> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _remaining;

    public InPlaceCall(int chunks)
    {
        _remaining = chunks;
        if (chunks == 0)
        {
            _completion.TrySetResult(true);
        }
    }

    public Task<bool> Task => _completion.Task;

    /// <summary>One chunk was settled (exactly once per chunk: <see cref="InPlaceChunk"/> decides).</summary>
    public void ChunkSettled(Exception? failure)
    {
        if (failure is not null)
        {
            _completion.TrySetException(failure);
        }

        if (Interlocked.Decrement(ref _remaining) == 0)
        {
            _completion.TrySetResult(true);
        }
    }
}
