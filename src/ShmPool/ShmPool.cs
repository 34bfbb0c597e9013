using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;
using ShmIpc.Hosting;
using ShmIpc.Pool;
using ShmIpc.Protocol;

namespace ShmIpc;

/// <summary>
/// A pool of worker processes that run static methods on arguments, the counterpart of Python's
/// <c>multiprocessing.Pool</c>. Each worker has its own duplex shared-memory pipe; the pool sends it chunks
/// of items and reads back results, keeping at most <see cref="ShmPoolOptions.MaxChunksInFlightPerWorker"/>
/// chunks per worker so a new Apply never waits behind a long queue.
/// </summary>
/// <remarks>
/// Faults stay where they happen: an exception in the function fails that item (as <see cref="ShmRemoteException"/>);
/// a worker that dies fails exactly the chunks it held (as <see cref="ShmWorkerCrashedException"/>, or sends them
/// again, see <see cref="ShmPoolOptions.TaskRetries"/>) and is replaced; callers of Map and Imap get the exception
/// rather than a hang. Workers end when the pool ends, and when the parent process dies.
/// The functions must be static methods or capture-free lambdas (see <see cref="ShmProcess"/>).
/// </remarks>
public sealed partial class ShmPool : IDisposable, IAsyncDisposable
{
    /// <summary>Starts a pool of <paramref name="processes"/> workers (0: <see cref="Environment.ProcessorCount"/>).</summary>
    /// <exception cref="ArgumentException">An option is invalid, or the initializer is not a static method.</exception>
    public ShmPool(int processes = 0, ShmPoolOptions? options = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(processes);
        _options = options ?? ShmPoolOptions.Default;
        _options.Validate();
        _noSpin = (_options.WaitStrategy ?? ShmWaitStrategy.Default) with { SpinDuration = TimeSpan.Zero };
        _serializer = _options.Serializer ?? ShmMessagePackSerializer.Instance;
        _serializerName = SerializerFactory.Describe(_serializer, nameof(options));
        _initializer = _options.Initializer is null ? null : TargetMethod.From(_options.Initializer, nameof(ShmPoolOptions.Initializer));
        if (_options.InitializerWithArgument is (Delegate target, Type argumentType, var argument))
        {
            // Serialized once: every worker (and every replacement) gets the same bytes.
            _initializer = TargetMethod.From(target, nameof(ShmPoolOptions.Initializer));
            var bytes = new System.Buffers.ArrayBufferWriter<byte>();
            _serializer.Serialize(argumentType, argument, bytes);
            _initializerArgument = bytes.WrittenMemory.ToArray();
        }
        ProcessCount = processes == 0 ? Environment.ProcessorCount : processes;
        _slots = new PoolWorker?[ProcessCount];
        lock (_lock)
        {
            // Every process first, then every pipe: the workers' runtimes start in parallel (see LaunchWorker).
            var launched = new List<(int, string, System.Diagnostics.Process)>(ProcessCount);
            try
            {
                for (int slot = 0; slot < ProcessCount; slot++)
                {
                    launched.Add(LaunchWorker(slot));
                }

                for (int i = 0; i < launched.Count; i++)
                {
                    AttachWorker(launched[i]);
                }
            }
            catch
            {
                // Launched but not attached: nobody else knows these processes.
                foreach ((int slot, string _, System.Diagnostics.Process process) in launched)
                {
                    if (_slots[slot] is null)
                    {
                        ChildLauncher.KillAndReap(process);
                    }
                }

                TerminateLocked();
                throw;
            }
        }

        if (_options.TaskTimeout is TimeSpan timeout)
        {
            TimeSpan period = TimeSpan.FromTicks(Math.Clamp(timeout.Ticks / 4, TimeSpan.TicksPerMillisecond * 10, TimeSpan.TicksPerMillisecond * 100));
            _timeoutTimer = new Timer(static s => ((ShmPool)s!).EnforceTaskTimeout(), this, period, period);
        }
    }

    /// <summary>The number of worker processes the pool keeps.</summary>
    public int ProcessCount { get; }

    /// <summary>The process ids of the workers alive now (including retiring ones not yet gone).</summary>
    public IReadOnlyList<int> WorkerPids
    {
        get
        {
            lock (_lock)
            {
                return _live.Select(static w => w.Pid).ToArray();
            }
        }
    }

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
        return new ShmAsyncResult<TResult>(chunk.Single!.Task, () => Cancel([chunk]));
    }

    /// <summary>Applies <paramref name="function"/> to every item, in chunks spread over the workers; results in input order.</summary>
    /// <param name="function">A static method or capture-free lambda.</param>
    /// <param name="items">The arguments; read at once.</param>
    /// <param name="chunkSize">Items per chunk; 0 uses <see cref="ShmPoolOptions.DefaultChunkSize"/>, or about four chunks per worker.</param>
    /// <exception cref="ShmRemoteException">The function threw for an item (the first such item).</exception>
    /// <exception cref="ShmWorkerCrashedException">A worker died holding some of the items.</exception>
    public TResult[] Map<TArg, TResult>(Func<TArg, TResult> function, IEnumerable<TArg> items, int chunkSize = 0) =>
        MapAsync(function, items, chunkSize).Get();

    /// <summary>As <see cref="Map{TArg, TResult}"/>, without waiting.</summary>
    public ShmAsyncResult<TResult[]> MapAsync<TArg, TResult>(Func<TArg, TResult> function, IEnumerable<TArg> items, int chunkSize = 0)
    {
        PoolFunction f = Register(function);
        return MapCore<TArg, TResult>(f, items, chunkSize);
    }

    /// <summary>Applies a two-argument function to each pair, as Python's <c>starmap</c>.</summary>
    public TResult[] Starmap<T1, T2, TResult>(Func<T1, T2, TResult> function, IEnumerable<(T1, T2)> items, int chunkSize = 0) =>
        StarmapAsync(function, items, chunkSize).Get();

    /// <summary>Applies a three-argument function to each triple, as Python's <c>starmap</c>.</summary>
    public TResult[] Starmap<T1, T2, T3, TResult>(Func<T1, T2, T3, TResult> function, IEnumerable<(T1, T2, T3)> items, int chunkSize = 0) =>
        StarmapAsync(function, items, chunkSize).Get();

    /// <summary>Applies a 4-argument function to each 4-tuple, as Python's <c>starmap</c>.</summary>
    public TResult[] Starmap<T1, T2, T3, T4, TResult>(Func<T1, T2, T3, T4, TResult> function, IEnumerable<(T1, T2, T3, T4)> items, int chunkSize = 0) =>
        StarmapAsync(function, items, chunkSize).Get();

    /// <summary>Applies a 5-argument function to each 5-tuple, as Python's <c>starmap</c>.</summary>
    public TResult[] Starmap<T1, T2, T3, T4, T5, TResult>(Func<T1, T2, T3, T4, T5, TResult> function, IEnumerable<(T1, T2, T3, T4, T5)> items, int chunkSize = 0) =>
        StarmapAsync(function, items, chunkSize).Get();

    /// <summary>Applies a 6-argument function to each 6-tuple, as Python's <c>starmap</c>.</summary>
    public TResult[] Starmap<T1, T2, T3, T4, T5, T6, TResult>(Func<T1, T2, T3, T4, T5, T6, TResult> function, IEnumerable<(T1, T2, T3, T4, T5, T6)> items, int chunkSize = 0) =>
        StarmapAsync(function, items, chunkSize).Get();

    /// <summary>Applies a 7-argument function to each 7-tuple, as Python's <c>starmap</c>.</summary>
    public TResult[] Starmap<T1, T2, T3, T4, T5, T6, T7, TResult>(Func<T1, T2, T3, T4, T5, T6, T7, TResult> function, IEnumerable<(T1, T2, T3, T4, T5, T6, T7)> items, int chunkSize = 0) =>
        StarmapAsync(function, items, chunkSize).Get();

    /// <summary>As <see cref="Starmap{T1, T2, TResult}"/>, without waiting.</summary>
    public ShmAsyncResult<TResult[]> StarmapAsync<T1, T2, TResult>(Func<T1, T2, TResult> function, IEnumerable<(T1, T2)> items, int chunkSize = 0) =>
        MapCore<(T1, T2), TResult>(Register(function), items, chunkSize);

    /// <summary>As <see cref="Starmap{T1, T2, T3, TResult}"/>, without waiting.</summary>
    public ShmAsyncResult<TResult[]> StarmapAsync<T1, T2, T3, TResult>(Func<T1, T2, T3, TResult> function, IEnumerable<(T1, T2, T3)> items, int chunkSize = 0) =>
        MapCore<(T1, T2, T3), TResult>(Register(function), items, chunkSize);

    /// <summary>As <see cref="Starmap{T1, T2, T3, T4, TResult}"/>, without waiting.</summary>
    public ShmAsyncResult<TResult[]> StarmapAsync<T1, T2, T3, T4, TResult>(Func<T1, T2, T3, T4, TResult> function, IEnumerable<(T1, T2, T3, T4)> items, int chunkSize = 0) =>
        MapCore<(T1, T2, T3, T4), TResult>(Register(function), items, chunkSize);

    /// <summary>As <see cref="Starmap{T1, T2, T3, T4, T5, TResult}"/>, without waiting.</summary>
    public ShmAsyncResult<TResult[]> StarmapAsync<T1, T2, T3, T4, T5, TResult>(Func<T1, T2, T3, T4, T5, TResult> function, IEnumerable<(T1, T2, T3, T4, T5)> items, int chunkSize = 0) =>
        MapCore<(T1, T2, T3, T4, T5), TResult>(Register(function), items, chunkSize);

    /// <summary>As <see cref="Starmap{T1, T2, T3, T4, T5, T6, TResult}"/>, without waiting.</summary>
    public ShmAsyncResult<TResult[]> StarmapAsync<T1, T2, T3, T4, T5, T6, TResult>(Func<T1, T2, T3, T4, T5, T6, TResult> function, IEnumerable<(T1, T2, T3, T4, T5, T6)> items, int chunkSize = 0) =>
        MapCore<(T1, T2, T3, T4, T5, T6), TResult>(Register(function), items, chunkSize);

    /// <summary>As <see cref="Starmap{T1, T2, T3, T4, T5, T6, T7, TResult}"/>, without waiting.</summary>
    public ShmAsyncResult<TResult[]> StarmapAsync<T1, T2, T3, T4, T5, T6, T7, TResult>(Func<T1, T2, T3, T4, T5, T6, T7, TResult> function, IEnumerable<(T1, T2, T3, T4, T5, T6, T7)> items, int chunkSize = 0) =>
        MapCore<(T1, T2, T3, T4, T5, T6, T7), TResult>(Register(function), items, chunkSize);

    /// <summary>
    /// Lazily applies <paramref name="function"/> to the items and yields the results in input order as they
    /// come: items are read and sent while earlier results stream back, with a bounded number of chunks out.
    /// An item whose function threw rethrows when its turn comes.
    /// </summary>
    /// <param name="function">A static method or capture-free lambda.</param>
    /// <param name="items">Read lazily.</param>
    /// <param name="chunkSize">Items per chunk; 0 uses <see cref="ShmPoolOptions.DefaultChunkSize"/>, or 1.</param>
    public IEnumerable<TResult> Imap<TArg, TResult>(Func<TArg, TResult> function, IEnumerable<TArg> items, int chunkSize = 0)
    {
        ArgumentNullException.ThrowIfNull(items);
        return ImapCore<TArg, TResult>(Register(function), items, LazyChunkSize(chunkSize), ordered: true);
    }

    /// <summary>As <see cref="Imap{TArg, TResult}"/>, but yields each chunk's results as soon as it completes, in any order.</summary>
    public IEnumerable<TResult> ImapUnordered<TArg, TResult>(Func<TArg, TResult> function, IEnumerable<TArg> items, int chunkSize = 0)
    {
        ArgumentNullException.ThrowIfNull(items);
        return ImapCore<TArg, TResult>(Register(function), items, LazyChunkSize(chunkSize), ordered: false);
    }

    /// <summary>As <see cref="Imap{TArg, TResult}"/>, to <c>await foreach</c>.</summary>
    public IAsyncEnumerable<TResult> ImapAsync<TArg, TResult>(Func<TArg, TResult> function, IEnumerable<TArg> items, int chunkSize = 0)
    {
        ArgumentNullException.ThrowIfNull(items);
        return ImapCoreAsync<TArg, TResult>(Register(function), items, LazyChunkSize(chunkSize), ordered: true, default);
    }

    /// <summary>As <see cref="ImapUnordered{TArg, TResult}"/>, to <c>await foreach</c>.</summary>
    public IAsyncEnumerable<TResult> ImapUnorderedAsync<TArg, TResult>(Func<TArg, TResult> function, IEnumerable<TArg> items, int chunkSize = 0)
    {
        ArgumentNullException.ThrowIfNull(items);
        return ImapCoreAsync<TArg, TResult>(Register(function), items, LazyChunkSize(chunkSize), ordered: false, default);
    }

    private ShmAsyncResult<TResult[]> MapCore<TArg, TResult>(PoolFunction f, IEnumerable<TArg> items, int chunkSize)
    {
        ArgumentNullException.ThrowIfNull(items);
        ArgumentOutOfRangeException.ThrowIfNegative(chunkSize);
        // An array is encoded from where it is (every chunk is encoded before this returns); anything else is read once.
        ReadOnlySpan<TArg> all = items switch
        {
            TArg[] array => array,
            List<TArg> list => System.Runtime.InteropServices.CollectionsMarshal.AsSpan(list),
            _ => items.ToArray(),
        };
        int size = chunkSize > 0 ? chunkSize
            : _options.DefaultChunkSize > 0 ? _options.DefaultChunkSize
            : Math.Max(1, (int)Math.Ceiling(all.Length / (ProcessCount * 4.0)));
        var results = new TResult[all.Length];
        var chunks = new List<PoolChunk<TResult>>((int)(((long)all.Length + size - 1) / size));
        for (int start = 0; start < all.Length; start += size)
        {
            chunks.Add(MakeChunk<TArg, TResult>(f, all.Slice(start, Math.Min(size, all.Length - start)), target: results, targetOffset: start));
        }

        var completion = new MapCompletion<TResult>(results);
        completion.Track(chunks);
        Submit(chunks);
        return new ShmAsyncResult<TResult[]>(completion.Task, () => Cancel(chunks));
    }

    private int LazyChunkSize(int chunkSize)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(chunkSize);
        return chunkSize > 0 ? chunkSize : _options.DefaultChunkSize > 0 ? _options.DefaultChunkSize : 1;
    }

    /// <summary>Chunks an Imap keeps out (sent, or done and not yet yielded): enough to keep every worker busy.</summary>
    private int ImapWindow => ProcessCount * (_options.MaxChunksInFlightPerWorker + 1);

    private IEnumerable<TResult> ImapCore<TArg, TResult>(PoolFunction f, IEnumerable<TArg> items, int chunkSize, bool ordered)
    {
        var window = new List<PoolChunk<TResult>>();
        using var input = new ImapInput<TArg>(items);
        try
        {
            while (true)
            {
                Refill(f, input, chunkSize, window);
                if (window.Count == 0)
                {
                    // Every result before a failing input item has been yielded: now its exception, as Python does.
                    input.Failure?.Throw();
                    yield break;
                }

                int index = 0;
                if (!ordered)
                {
                    index = Task.WaitAny(window.Select(static c => (Task)c.Task).ToArray());
                }

                PoolChunk<TResult> next = window[index];
                window.RemoveAt(index);
                ChunkOutcome<TResult> outcome = next.Task.GetAwaiter().GetResult();
                for (int i = 0; i < outcome.Count; i++)
                {
                    yield return outcome.ErrorAt(i) is Exception error ? throw error : outcome.ValueAt(i);
                }
            }
        }
        finally
        {
            // Abandoned early: drop the chunks not started; running ones finish and are ignored.
            DropQueued(window);
        }
    }

    private async IAsyncEnumerable<TResult> ImapCoreAsync<TArg, TResult>(PoolFunction f, IEnumerable<TArg> items, int chunkSize, bool ordered,
        [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var window = new List<PoolChunk<TResult>>();
        using var input = new ImapInput<TArg>(items);
        try
        {
            while (true)
            {
                Refill(f, input, chunkSize, window);
                if (window.Count == 0)
                {
                    // Every result before a failing input item has been yielded: now its exception, as Python does.
                    input.Failure?.Throw();
                    yield break;
                }

                PoolChunk<TResult> next = window[0];
                if (!ordered)
                {
                    Task<ChunkOutcome<TResult>> done = await Task.WhenAny(window.Select(static c => c.Task)).WaitAsync(cancellationToken).ConfigureAwait(false);
                    next = window.First(c => c.Task == done);
                }

                window.Remove(next);
                ChunkOutcome<TResult> outcome = await next.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
                for (int i = 0; i < outcome.Count; i++)
                {
                    yield return outcome.ErrorAt(i) is Exception error ? throw error : outcome.ValueAt(i);
                }
            }
        }
        finally
        {
            DropQueued(window);
        }
    }

    /// <summary>
    /// Reads and sends chunks until the window is full or the input ends. An input that throws ends the input:
    /// the items read before the throw are sent as the last chunk, and the exception waits in
    /// <see cref="ImapInput{TArg}.Failure"/> until the results before it have been yielded.
    /// </summary>
    private void Refill<TArg, TResult>(PoolFunction f, ImapInput<TArg> input, int chunkSize, List<PoolChunk<TResult>> window)
    {
        var batch = new List<TArg>(chunkSize);
        while (input.More && window.Count < ImapWindow)
        {
            batch.Clear();
            while (batch.Count < chunkSize && input.MoveNext())
            {
                batch.Add(input.Current);
            }

            if (batch.Count == 0)
            {
                return;
            }

            PoolChunk<TResult> chunk = MakeChunk<TArg, TResult>(f, System.Runtime.InteropServices.CollectionsMarshal.AsSpan(batch));
            Submit([chunk]);
            window.Add(chunk);
        }
    }

    /// <summary>An Imap's input: reads items until they end or the enumerator throws, and keeps that exception for later.</summary>
    private sealed class ImapInput<TArg>(IEnumerable<TArg> items) : IDisposable
    {
        private readonly IEnumerator<TArg> _enumerator = items.GetEnumerator();

        /// <summary>False once the input ended or threw.</summary>
        public bool More { get; private set; } = true;

        /// <summary>What the input threw, to rethrow after the results before it.</summary>
        public ExceptionDispatchInfo? Failure { get; private set; }

        public TArg Current => _enumerator.Current;

        public bool MoveNext()
        {
            if (!More)
            {
                return false;
            }

            try
            {
                More = _enumerator.MoveNext();
            }
            catch (Exception e)
            {
                More = false;
                Failure = ExceptionDispatchInfo.Capture(e);
            }

            return More;
        }

        public void Dispose() => _enumerator.Dispose();
    }

    private PoolFunction Register(Delegate function)
    {
        // Seen before: a lookup by the method, no reflection (TargetMethod.From costs about 0.4 µs). Only
        // single-target delegates that passed From's checks are cached, and a method passes them or not
        // whatever delegate carries it; a multicast one goes the long way and is refused there.
        ArgumentNullException.ThrowIfNull(function);

        // The same delegate as last time (a static lambda or method group is one cached instance): no lookup at all.
        if (_lastRegistered is { } last && ReferenceEquals(last.Delegate, function))
        {
            return last.Function;
        }

        if (function.HasSingleTarget && _functionsByMethod.TryGetValue(function.Method, out PoolFunction? known))
        {
            _lastRegistered = new RegisteredDelegate(function, known);
            return known;
        }

        TargetMethod target = TargetMethod.From(function, nameof(function));
        lock (_lock)
        {
            if (!_functions.TryGetValue(target, out PoolFunction? f))
            {
                Type argumentType = ResolvedTarget.WireArgumentTypeOrNull(function.Method)
                    ?? throw new ArgumentException("A pool function takes one to three arguments.", nameof(function));
                f = new PoolFunction(_functions.Count + 1, target, argumentType, function.Method.ReturnType, function.Method.GetParameters().Length);
                _functions.Add(target, f);
            }

            _functionsByMethod.TryAdd(function.Method, f);
            return f;
        }
    }

    /// <summary>A delegate that passed <see cref="Register"/> and its function (one object: read and written whole, without a lock).</summary>
    private sealed record RegisteredDelegate(Delegate Delegate, PoolFunction Function);

    /// <summary>The last delegate <see cref="Register"/> resolved through its caches (a Map or Apply loop passes the same one again).</summary>
    private RegisteredDelegate? _lastRegistered;

    /// <summary>The name of a pool task's span, in the caller and in the worker.</summary>
    internal const string TaskActivityName = "shmipc.pool.task";

    private PoolChunk<TResult> MakeChunk<TArg, TResult>(PoolFunction f, ReadOnlySpan<TArg> items, TaskCompletionSource<TResult>? single = null,
        TResult[]? target = null, int targetOffset = 0)
    {
        long id = Interlocked.Increment(ref _nextChunkId);

        // This thread's writer: the message is copied out below, so one buffer serves every chunk it makes.
        // Taken while in use (a serializer that submits to a pool on this thread gets a fresh one).
        MessageWriter writer = t_chunkWriter ?? new MessageWriter();
        t_chunkWriter = null;
        EncodeChunk<TArg, TResult>(writer, id, f, items);
        // Large messages (a Map's chunks) go into pooled arrays, given back when the chunk is settled: a Map of 1M
        // ints made 4 MB of large-object garbage in chunk messages alone, a gen2 collection per Map or two.
        int length = writer.Length;
        byte[]? rented = length >= RentedMessageThreshold ? System.Buffers.ArrayPool<byte>.Shared.Rent(length) : null;
        ReadOnlyMemory<byte> message = rented is null ? writer.Written.ToArray() : rented.AsMemory(0, length);
        if (rented is not null)
        {
            writer.Written.CopyTo(rented);
        }

        var chunk = new PoolChunk<TResult>(id, f, message, items.Length, rented) { Single = single, Target = target, TargetOffset = targetOffset };
        chunk.BeginTelemetry(TaskActivityName);
        if (writer.Capacity <= ReusedWriterLimit)
        {
            t_chunkWriter = writer;
        }

        return chunk;
    }

    /// <summary>Encodes the Chunk (or RawChunk) message of <paramref name="items"/> into <paramref name="writer"/>.</summary>
    private void EncodeChunk<TArg, TResult>(MessageWriter writer, long id, PoolFunction f, ReadOnlySpan<TArg> items)
    {
        // Unmanaged in and out of a one-argument function: the items go as one block, and so do the results.
        bool rawArguments = RawValues.Applies<TArg>(_serializer) && f.ArgumentType == typeof(TArg);
        bool block = rawArguments && f.ParameterCount == 1 && f.ResultType == typeof(TResult) && RawValues.Applies<TResult>(_serializer);
        writer.Reset(block ? MessageKind.RawChunk : MessageKind.Chunk).WriteInt64(id);
        writer.WriteInt32(f.Id);
        writer.WriteInt32(items.Length);
        if (block)
        {
            writer.WriteBytes(RawValues.AsBytes(items));
        }
        else if (rawArguments)
        {
            foreach (TArg item in items)
            {
                RawValues.Write(writer, item);
            }
        }
        else
        {
            foreach (TArg item in items)
            {
                writer.WriteLengthPrefixed((_serializer, f.ArgumentType, (object?)item), static (s, w) => s._serializer.Serialize(s.ArgumentType, s.Item3, w));
            }
        }

        if (writer.Length > ChildChannel.MaxMessageLength)
        {
            throw new ArgumentException($"A chunk of {items.Length} items encodes to {writer.Length} bytes, more than a worker's pipe carries in one message " +
                $"({ChildChannel.MaxMessageLength}). Use a smaller chunk size.", nameof(items));
        }
    }

    /// <summary>The writer MakeChunk encodes chunks with on this thread (they are copied out, so it is reused).</summary>
    [ThreadStatic]
    private static MessageWriter? t_chunkWriter;

    /// <summary>A reused writer that grew past this (a huge Map chunk) is dropped rather than kept for the thread's life.</summary>
    private const int ReusedWriterLimit = 64 << 10;

    /// <summary>Chunk messages of this size and more are copied into arrays rented from the shared pool.</summary>
    private const int RentedMessageThreshold = 16 << 10;

    /// <summary>Stops the pool taking work; the workers finish what was submitted and exit. Then <see cref="Join"/>.</summary>
    public void Close()
    {
        lock (_lock)
        {
            if (_state == PoolState.Running)
            {
                _state = PoolState.Closed;
                Pump();
            }
        }
    }

    /// <summary>Kills every worker now (SIGKILL); tasks not finished fail with <see cref="OperationCanceledException"/>. Then <see cref="Join"/>.</summary>
    public void Terminate()
    {
        lock (_lock)
        {
            TerminateLocked();
        }
    }

    /// <summary>Waits for every worker to end, after <see cref="Close"/> or <see cref="Terminate"/>; false if <paramref name="timeout"/> passed first.</summary>
    /// <exception cref="InvalidOperationException">Neither Close nor Terminate was called.</exception>
    public bool Join(TimeSpan? timeout = null)
    {
        long deadline = timeout is null ? long.MaxValue : System.Diagnostics.Stopwatch.GetTimestamp() + (long)(timeout.Value.TotalSeconds * System.Diagnostics.Stopwatch.Frequency);
        while (true)
        {
            Thread? reader;
            lock (_lock)
            {
                if (_state == PoolState.Running)
                {
                    throw new InvalidOperationException("Join waits for the workers to end: call Close (finish the work) or Terminate (stop now) first.");
                }

                reader = _live.Count == 0 ? null : _live[0].Reader;
            }

            if (reader is null)
            {
                _timeoutTimer?.Dispose();
                return true;
            }

            long now = System.Diagnostics.Stopwatch.GetTimestamp();
            if (now >= deadline)
            {
                return false;
            }

            int waitMs = deadline == long.MaxValue ? -1 : (int)Math.Min(int.MaxValue, (deadline - now) * 1000 / System.Diagnostics.Stopwatch.Frequency);
            if (reader != Thread.CurrentThread)
            {
                reader.Join(waitMs);
            }
        }
    }

    /// <summary>Terminates the pool (as Python's <c>with Pool()</c> does on exit) and waits for its workers.</summary>
    public void Dispose()
    {
        Terminate();
        Join();
    }

    /// <summary>Terminates the pool and waits for its workers on a thread-pool thread.</summary>
    public async ValueTask DisposeAsync()
    {
        Terminate();
        await Task.Run(() => Join()).ConfigureAwait(false);
    }
}
