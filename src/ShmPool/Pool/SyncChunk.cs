using ShmIpc.Protocol;

namespace ShmIpc.Pool;

/// <summary>
/// The one-item chunk of a synchronous Apply, reused by its thread: encoded into its own writer, completed
/// into its own outcome, waited for on a monitor. No Task, no allocation per call once warm.
/// </summary>
/// <remarks>
/// It is rented per thread and returned only once completed. Completed, it is referenced by no worker and
/// no queue (a result or a failure reaches only a chunk taken out of its worker's InFlight or out of the
/// queue), so its next use cannot be confused with this one; each use has a fresh id besides.
/// </remarks>
/// <typeparam name="TResult">The function's result type.</typeparam>
internal sealed class SyncChunk<TResult> : CallerChunk
{
    [ThreadStatic]
    private static SyncChunk<TResult>? t_free;

    /// <summary>Guards completion (the first of a result and a failure wins) and wakes the waiting caller.</summary>
    private readonly object _monitor = new();
    private volatile bool _done;

    /// <summary>
    /// A thread waits in <see cref="Wait"/> (under <see cref="_monitor"/>): only then does completion pulse. A pulse
    /// turns the monitor's thin lock into a sync block for good, and the caller that received its own result
    /// (the common case) never waits: pulsing anyway made every Apply's completion ~0.1 µs slower.
    /// </summary>
    private bool _waiting;

    private SyncChunk()
    {
    }

    /// <summary>The writer its message is encoded with (the message is <see cref="PoolChunk.Message"/> over it).</summary>
    public MessageWriter Writer { get; } = new();

    public ChunkOutcome<TResult> Outcome { get; } = new(1);

    public override bool IsCompleted => _done;

    /// <summary>This thread's free chunk (or a new one), ready for <see cref="Start"/>.</summary>
    public static SyncChunk<TResult> Rent()
    {
        SyncChunk<TResult>? chunk = t_free;
        t_free = null;
        return chunk ?? new SyncChunk<TResult>();
    }

    /// <summary>Gives a completed chunk back to this thread, unless its writer grew past <paramref name="writerLimit"/>.</summary>
    public void Return(int writerLimit)
    {
        Outcome.Clear();
        if (_done && Writer.Capacity <= writerLimit)
        {
            t_free = this;
        }
    }

    /// <summary>Prepares it for a new call, once <see cref="Writer"/> holds the encoded message.</summary>
    public void Start(long id, PoolFunction function)
    {
        Id = id;
        Function = function;
        Message = Writer.WrittenMemory;
        Worker = null;
        Retries = 0;
        StopReason = null;
        _done = false;
    }

    /// <summary>Waits until it completed or failed (at once when this thread completed it).</summary>
    public void Wait()
    {
        if (_done)
        {
            return;
        }

        lock (_monitor)
        {
            while (!_done)
            {
                _waiting = true;
                Monitor.Wait(_monitor);
            }

            _waiting = false;
        }
    }

    public override void Complete(ref MessageReader reader, IShmObjectSerializer serializer, bool raw)
    {
        lock (_monitor)
        {
            if (!_done)
            {
                ReadResults(ref reader, serializer, raw);
                OnSettled(Outcome.ErrorAt(0));
                Signal();
            }
        }
    }

    public override void ReadResults(ref MessageReader reader, IShmObjectSerializer serializer, bool raw)
    {
        int count = reader.ReadInt32();
        if (count != 1)
        {
            throw new InvalidDataException($"Chunk {Id} had 1 item; its results have {count}.");
        }

        ChunkResults.Read(ref reader, Function, serializer, raw, Outcome);
    }

    public override void Finish()
    {
        lock (_monitor)
        {
            if (!_done)
            {
                OnSettled(Outcome.ErrorAt(0));
                Signal();
            }
        }
    }

    public override void Fail(Exception exception)
    {
        lock (_monitor)
        {
            if (!_done)
            {
                Outcome.SetError(0, exception);
                OnSettled(exception);
                Signal();
            }
        }
    }

    /// <summary>Under <see cref="_monitor"/>.</summary>
    private void Signal()
    {
        _done = true;
        if (_waiting)
        {
            Monitor.PulseAll(_monitor);
        }
    }
}
