using System.Diagnostics;
using ShmIpc.Diagnostics;
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
    protected PoolChunk(long id, PoolFunction function, ReadOnlyMemory<byte> message, int count)
    {
        Id = id;
        Function = function;
        Message = message;
        Count = count;
    }

    public long Id { get; protected set; }

    public PoolFunction Function { get; protected set; }

    /// <summary>The encoded Chunk message.</summary>
    public ReadOnlyMemory<byte> Message { get; protected set; }

    public int Count { get; protected set; }

    /// <summary>The worker holding it, or null while it waits in the queue.</summary>
    public PoolWorker? Worker { get; set; }

    /// <summary>Times it was sent again after its worker crashed.</summary>
    public int Retries { get; set; }

    /// <summary>Why it is being stopped (cancel, timeout) while its worker is being killed; null otherwise.</summary>
    public Exception? StopReason { get; set; }

    public abstract bool IsCompleted { get; }

    /// <summary>When it was first sent (Stopwatch ticks), for the duration histogram; 0 when nobody measures.</summary>
    private long _sentAt;

    /// <summary>Its span, when someone listens to <see cref="ShmTelemetry.ActivitySource"/>; ended when it is settled.</summary>
    public Activity? Activity { get; private set; }

    /// <summary>
    /// On the caller's thread, as the task is made: its span starts here, a child of the caller's current activity,
    /// and the caller's current activity stays what it was (the span ends on whichever thread settles the task).
    /// </summary>
    public void BeginTelemetry(string name)
    {
        _sentAt = 0;
        _started = false;
        Activity = null;
        if (ShmTelemetry.ActivitySource.HasListeners())
        {
            Activity? current = Activity.Current;
            Activity = ShmTelemetry.ActivitySource.StartActivity(name, ActivityKind.Producer);
            Activity.Current = current;
        }
    }

    /// <summary>Sent to a worker; a send again after a crash is not a new start (it counts as a retry where the crash is seen).</summary>
    public void OnSent()
    {
        if (_started)
        {
            return;
        }

        _started = true;
        if (ShmMetrics.TasksStarted.Enabled)
        {
            ShmMetrics.TasksStarted.Add(1);
        }

        if (ShmMetrics.TaskDuration.Enabled)
        {
            _sentAt = Stopwatch.GetTimestamp();
        }
    }

    /// <summary>Counted as started (reset for each use of a reused chunk).</summary>
    private bool _started;

    /// <summary>Completed or failed, once: counts it, times it, ends its span.</summary>
    protected void OnSettled(Exception? failure)
    {
        if (failure is null ? ShmMetrics.TasksCompleted.Enabled : ShmMetrics.TasksFailed.Enabled)
        {
            (failure is null ? ShmMetrics.TasksCompleted : ShmMetrics.TasksFailed).Add(1);
        }

        if (_sentAt != 0)
        {
            ShmMetrics.TaskDuration.Record(Stopwatch.GetElapsedTime(_sentAt).TotalSeconds);
            _sentAt = 0;
        }

        if (Activity is Activity activity)
        {
            Activity = null;
            if (failure is not null)
            {
                activity.SetStatus(ActivityStatusCode.Error, failure.Message);
            }

            // Stopping an activity makes its parent current on this thread: the settling thread (a pool reader, a
            // canceller) keeps its own current activity instead.
            Activity? ambient = Activity.Current;
            activity.Dispose();
            Activity.Current = ambient;
        }
    }

    /// <summary>Reads the results that follow the chunk id in a Results message (or a RawResults one).</summary>
    public abstract void Complete(ref MessageReader reader, IShmObjectSerializer serializer, bool raw);

    public abstract void Fail(Exception exception);
}

/// <summary>
/// What a chunk produced: a value or an exception per item. The values live in a slice of an array, the chunk's
/// own or the caller's result array (a Map's chunks write straight into it: no array per chunk, no copy after).
/// </summary>
/// <typeparam name="TResult">The function's result type.</typeparam>
internal sealed class ChunkOutcome<TResult>
{
    private readonly TResult[] _array;
    private readonly int _offset;
    private Exception?[]? _errors;

    public ChunkOutcome(int count)
        : this(new TResult[count], 0, count)
    {
    }

    /// <summary>An outcome whose values are <paramref name="array"/>[<paramref name="offset"/>..+<paramref name="count"/>].</summary>
    public ChunkOutcome(TResult[] array, int offset, int count)
    {
        _array = array;
        _offset = offset;
        Count = count;
    }

    public int Count { get; }

    public Span<TResult> Values => _array.AsSpan(_offset, Count);

    public TResult ValueAt(int index) => Values[index];

    /// <summary>Its values are already in <paramref name="array"/> (the Map's result array it was made for).</summary>
    public bool IsIn(TResult[] array) => ReferenceEquals(_array, array);

    /// <summary>The first item's exception, if any failed.</summary>
    public Exception? FirstError => _errors is null ? null : Array.Find(_errors, static e => e is not null);

    /// <summary>Item <paramref name="index"/>'s exception, or null when it has a value.</summary>
    public Exception? ErrorAt(int index) => _errors?[index];

    /// <summary>Item <paramref name="index"/> failed (the array of errors exists only once one did).</summary>
    public void SetError(int index, Exception error) => (_errors ??= new Exception?[Count])[index] = error;

    /// <summary>Forgets the values and errors, for reuse.</summary>
    public void Clear()
    {
        Values.Clear();
        _errors = null;
    }
}

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
        ReleaseMessage();
        int count = reader.ReadInt32();
        if (count != Count)
        {
            throw new InvalidDataException($"Chunk {Id} had {Count} items; its results have {count}.");
        }

        ChunkOutcome<TResult> outcome = Target is null ? new(count) : new(Target, TargetOffset, count);
        ChunkResults.Read(ref reader, Function, serializer, raw, outcome);
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

/// <summary>
/// The end of a Map: completes when its last chunk is settled, with the result array (its chunks wrote their values
/// into it) or the first failure in input order. One countdown instead of a continuation per chunk: each continuation
/// was a thread-pool work item, and the pool's threads spin for more work after each one (sched_yield in a loop),
/// on the very cores the workers compute on: ~50 context switches per item of a CPU-bound Map.
/// </summary>
/// <typeparam name="TResult">The function's result type.</typeparam>
internal sealed class MapCompletion<TResult>
{
    private readonly TaskCompletionSource<TResult[]> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TResult[] _results;
    private List<PoolChunk<TResult>>? _chunks;
    private int _remaining;
    private int _failures;

    public MapCompletion(TResult[] results)
    {
        _results = results;
    }

    public Task<TResult[]> Task => _completion.Task;

    /// <summary>Takes the Map's chunks, before any is submitted.</summary>
    public void Track(List<PoolChunk<TResult>> chunks)
    {
        _chunks = chunks;
        _remaining = chunks.Count;
        foreach (PoolChunk<TResult> chunk in chunks)
        {
            chunk.Map = this;
        }

        if (chunks.Count == 0)
        {
            _completion.TrySetResult(_results);
        }
    }

    /// <summary>
    /// One chunk was settled (exactly once per chunk: its own completion decides). A failure fails the Map as soon as
    /// every chunk before it succeeded (the first failure in input order, without waiting for the chunks after it,
    /// which may run for long); otherwise the last chunk completes it.
    /// </summary>
    /// <param name="failed">This chunk failed, or one of its items did.</param>
    public void ChunkSettled(bool failed)
    {
        // Dekker-style: each settler publishes its chunk's state (the completion's interlocked CAS) before it reads
        // _failures, and a failed one raises _failures (interlocked) before it scans: whichever of a failure and the
        // success of an earlier chunk comes second sees the other, so some scan finds the failure with its prefix done.
        if (failed)
        {
            Interlocked.Increment(ref _failures);
        }

        if (Volatile.Read(ref _failures) != 0 && FirstFailureInOrder() is Exception first)
        {
            _completion.TrySetException(first);
        }

        if (Interlocked.Decrement(ref _remaining) != 0)
        {
            return;
        }

        int at = 0;
        foreach (PoolChunk<TResult> chunk in _chunks!)
        {
            Task<ChunkOutcome<TResult>> settled = chunk.Task;
            if (!settled.IsCompletedSuccessfully)
            {
                _completion.TrySetException(settled.Exception!.InnerException!);
                return;
            }

            ChunkOutcome<TResult> outcome = settled.Result;
            if (outcome.FirstError is Exception error)
            {
                _completion.TrySetException(error);
                return;
            }

            if (!outcome.IsIn(_results))
            {
                outcome.Values.CopyTo(_results.AsSpan(at));
            }

            at += outcome.Count;
        }

        _completion.TrySetResult(_results);
    }

    /// <summary>The failure of the first failed chunk or item, if every chunk before it succeeded; else null.</summary>
    private Exception? FirstFailureInOrder()
    {
        foreach (PoolChunk<TResult> chunk in _chunks!)
        {
            Task<ChunkOutcome<TResult>> task = chunk.Task;
            if (!task.IsCompleted)
            {
                return null;
            }

            if (!task.IsCompletedSuccessfully)
            {
                return task.Exception!.InnerException!;
            }

            if (task.Result.FirstError is Exception error)
            {
                return error;
            }
        }

        return null;
    }
}

/// <summary>Reads the results of a chunk into its outcome (for <see cref="PoolChunk{TResult}"/> and <see cref="SyncChunk{TResult}"/>).</summary>
internal static class ChunkResults
{
    public static void Read<TResult>(ref MessageReader reader, PoolFunction function, IShmObjectSerializer serializer, bool raw, ChunkOutcome<TResult> outcome)
    {
        if (raw)
        {
            ReadBlock(ref reader, outcome);
        }
        else
        {
            ReadItems(ref reader, function, serializer, outcome);
        }
    }

    /// <summary>RawResults: the results block, then the failed items (see <see cref="MessageKind.RawChunk"/>).</summary>
    private static void ReadBlock<TResult>(ref MessageReader reader, ChunkOutcome<TResult> outcome)
    {
        int size = reader.ReadInt32();
        ReadOnlyMemory<byte> block = reader.ReadBytes();
        int errors = reader.ReadInt32();
        if (errors < 0 || errors > outcome.Count)
        {
            throw new InvalidDataException($"A results block of {outcome.Count} items reports {errors} failures.");
        }

        if (errors < outcome.Count || block.Length != 0)
        {
            if (!RawValues.IsRaw<TResult>() || size != System.Runtime.CompilerServices.Unsafe.SizeOf<TResult>())
            {
                throw new InvalidDataException($"A results block of {size}-byte values cannot hold {typeof(TResult).Name} results.");
            }

            RawValues.CopyBlock(block.Span, outcome.Values);
        }

        for (int i = 0; i < errors; i++)
        {
            int index = reader.ReadInt32();
            if ((uint)index >= (uint)outcome.Count)
            {
                throw new InvalidDataException($"A failure is reported for item {index} of {outcome.Count}.");
            }

            outcome.SetError(index, reader.ReadError().ToException());
        }
    }

    private static void ReadItems<TResult>(ref MessageReader reader, PoolFunction function, IShmObjectSerializer serializer, ChunkOutcome<TResult> outcome)
    {
        int count = outcome.Count;
        bool raw = RawValues.Applies<TResult>(serializer) && function.ResultType == typeof(TResult);
        for (int i = 0; i < count; i++)
        {
            if (reader.ReadByte() == 0)
            {
                ReadOnlyMemory<byte> bytes = reader.ReadBytes();
                try
                {
                    outcome.Values[i] = raw ? RawValues.Read<TResult>(bytes.Span) : (TResult)serializer.Deserialize(function.ResultType, bytes)!;
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
}

/// <summary>
/// A chunk whose caller takes its result from the worker's pipe itself (a synchronous Apply, see
/// <c>ShmPool.ReceiveFor</c>): the result is read into the chunk first, and the chunk completed only after
/// it left its worker's list. In between nothing else can complete it: a chunk in the in-flight list of a
/// worker whose pipe a caller holds is completed only by that pipe's receiver, or by the reader thread once
/// the caller has let go (a dead worker's chunks).
/// </summary>
internal abstract class CallerChunk : PoolChunk
{
    protected CallerChunk()
        : base(0, null!, default, 1)
    {
    }

    /// <summary>Reads the results that follow the chunk id, without completing the chunk (see <see cref="Finish"/>).</summary>
    public abstract void ReadResults(ref MessageReader reader, IShmObjectSerializer serializer, bool raw);

    /// <summary>Completes the chunk with what <see cref="ReadResults"/> read (unless it failed meanwhile).</summary>
    public abstract void Finish();
}

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
