using ShmIpc.Hosting;
using ShmIpc.Pool;

namespace ShmIpc;

// Map and Starmap: every item, in chunks over the workers, the results in input order.
public sealed partial class ShmPool
{
    /// <summary>Applies <paramref name="function"/> to every item, in chunks spread over the workers; results in input order.</summary>
    /// <param name="function">A static method or capture-free lambda.</param>
    /// <param name="items">The arguments; read at once.</param>
    /// <param name="chunkSize">Items per chunk; 0 uses <see cref="ShmPoolOptions.DefaultChunkSize"/>, or about four chunks per worker (per core when the pool has more workers than the machine has cores).</param>
    /// <exception cref="ShmRemoteException">The function threw for an item (the first such item).</exception>
    /// <exception cref="ShmWorkerCrashedException">A worker died holding some of the items.</exception>
    public TResult[] Map<TArg, TResult>(Func<TArg, TResult> function, IEnumerable<TArg> items, int chunkSize = 0)
    {
        TResult[] results = MapAsync(function, items, chunkSize).Get();
        if (MapTimeline.Enabled)
        {
            MapTimeline.Mark("map-returned", results.Length);
            MapTimeline.Flush();
        }

        return results;
    }

    /// <summary>As <see cref="Map{TArg, TResult}(Func{TArg, TResult}, IEnumerable{TArg}, int)"/>, until <paramref name="cancellationToken"/> is cancelled.</summary>
    /// <remarks>
    /// Cancellation ends the wait at once with <see cref="OperationCanceledException"/>. Chunks no worker has started yet are
    /// dropped; chunks the workers run already finish there, unseen (the caller stops waiting; no worker is killed). The pool
    /// stays usable.
    /// </remarks>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled first.</exception>
    public TResult[] Map<TArg, TResult>(Func<TArg, TResult> function, IEnumerable<TArg> items, CancellationToken cancellationToken) =>
        Map(function, items, 0, cancellationToken);

    /// <summary>As <see cref="Map{TArg, TResult}(Func{TArg, TResult}, IEnumerable{TArg}, CancellationToken)"/>, in chunks of <paramref name="chunkSize"/> items.</summary>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled first.</exception>
    public TResult[] Map<TArg, TResult>(Func<TArg, TResult> function, IEnumerable<TArg> items, int chunkSize, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        return WaitOrAbandon(MapAsync(function, items, chunkSize), cancellationToken);
    }

    /// <summary>As <see cref="Map{TArg, TResult}(Func{TArg, TResult}, IEnumerable{TArg}, int)"/>, without waiting.</summary>
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

    /// <summary>As the Starmap above, until <paramref name="cancellationToken"/> is cancelled (as <see cref="Map{TArg, TResult}(Func{TArg, TResult}, IEnumerable{TArg}, CancellationToken)"/>).</summary>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled first.</exception>
    public TResult[] Starmap<T1, T2, TResult>(Func<T1, T2, TResult> function, IEnumerable<(T1, T2)> items, CancellationToken cancellationToken) =>
        Starmap(function, items, 0, cancellationToken);

    /// <summary>As the Starmap above, in chunks of <paramref name="chunkSize"/> items.</summary>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled first.</exception>
    public TResult[] Starmap<T1, T2, TResult>(Func<T1, T2, TResult> function, IEnumerable<(T1, T2)> items, int chunkSize, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        return WaitOrAbandon(StarmapAsync(function, items, chunkSize), cancellationToken);
    }

    /// <summary>As the Starmap above, until <paramref name="cancellationToken"/> is cancelled (as <see cref="Map{TArg, TResult}(Func{TArg, TResult}, IEnumerable{TArg}, CancellationToken)"/>).</summary>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled first.</exception>
    public TResult[] Starmap<T1, T2, T3, TResult>(Func<T1, T2, T3, TResult> function, IEnumerable<(T1, T2, T3)> items, CancellationToken cancellationToken) =>
        Starmap(function, items, 0, cancellationToken);

    /// <summary>As the Starmap above, in chunks of <paramref name="chunkSize"/> items.</summary>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled first.</exception>
    public TResult[] Starmap<T1, T2, T3, TResult>(Func<T1, T2, T3, TResult> function, IEnumerable<(T1, T2, T3)> items, int chunkSize, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        return WaitOrAbandon(StarmapAsync(function, items, chunkSize), cancellationToken);
    }

    /// <summary>As the Starmap above, until <paramref name="cancellationToken"/> is cancelled (as <see cref="Map{TArg, TResult}(Func{TArg, TResult}, IEnumerable{TArg}, CancellationToken)"/>).</summary>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled first.</exception>
    public TResult[] Starmap<T1, T2, T3, T4, TResult>(Func<T1, T2, T3, T4, TResult> function, IEnumerable<(T1, T2, T3, T4)> items, CancellationToken cancellationToken) =>
        Starmap(function, items, 0, cancellationToken);

    /// <summary>As the Starmap above, in chunks of <paramref name="chunkSize"/> items.</summary>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled first.</exception>
    public TResult[] Starmap<T1, T2, T3, T4, TResult>(Func<T1, T2, T3, T4, TResult> function, IEnumerable<(T1, T2, T3, T4)> items, int chunkSize, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        return WaitOrAbandon(StarmapAsync(function, items, chunkSize), cancellationToken);
    }

    /// <summary>As the Starmap above, until <paramref name="cancellationToken"/> is cancelled (as <see cref="Map{TArg, TResult}(Func{TArg, TResult}, IEnumerable{TArg}, CancellationToken)"/>).</summary>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled first.</exception>
    public TResult[] Starmap<T1, T2, T3, T4, T5, TResult>(Func<T1, T2, T3, T4, T5, TResult> function, IEnumerable<(T1, T2, T3, T4, T5)> items, CancellationToken cancellationToken) =>
        Starmap(function, items, 0, cancellationToken);

    /// <summary>As the Starmap above, in chunks of <paramref name="chunkSize"/> items.</summary>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled first.</exception>
    public TResult[] Starmap<T1, T2, T3, T4, T5, TResult>(Func<T1, T2, T3, T4, T5, TResult> function, IEnumerable<(T1, T2, T3, T4, T5)> items, int chunkSize, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        return WaitOrAbandon(StarmapAsync(function, items, chunkSize), cancellationToken);
    }

    /// <summary>As the Starmap above, until <paramref name="cancellationToken"/> is cancelled (as <see cref="Map{TArg, TResult}(Func{TArg, TResult}, IEnumerable{TArg}, CancellationToken)"/>).</summary>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled first.</exception>
    public TResult[] Starmap<T1, T2, T3, T4, T5, T6, TResult>(Func<T1, T2, T3, T4, T5, T6, TResult> function, IEnumerable<(T1, T2, T3, T4, T5, T6)> items, CancellationToken cancellationToken) =>
        Starmap(function, items, 0, cancellationToken);

    /// <summary>As the Starmap above, in chunks of <paramref name="chunkSize"/> items.</summary>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled first.</exception>
    public TResult[] Starmap<T1, T2, T3, T4, T5, T6, TResult>(Func<T1, T2, T3, T4, T5, T6, TResult> function, IEnumerable<(T1, T2, T3, T4, T5, T6)> items, int chunkSize, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        return WaitOrAbandon(StarmapAsync(function, items, chunkSize), cancellationToken);
    }

    /// <summary>As the Starmap above, until <paramref name="cancellationToken"/> is cancelled (as <see cref="Map{TArg, TResult}(Func{TArg, TResult}, IEnumerable{TArg}, CancellationToken)"/>).</summary>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled first.</exception>
    public TResult[] Starmap<T1, T2, T3, T4, T5, T6, T7, TResult>(Func<T1, T2, T3, T4, T5, T6, T7, TResult> function, IEnumerable<(T1, T2, T3, T4, T5, T6, T7)> items, CancellationToken cancellationToken) =>
        Starmap(function, items, 0, cancellationToken);

    /// <summary>As the Starmap above, in chunks of <paramref name="chunkSize"/> items.</summary>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled first.</exception>
    public TResult[] Starmap<T1, T2, T3, T4, T5, T6, T7, TResult>(Func<T1, T2, T3, T4, T5, T6, T7, TResult> function, IEnumerable<(T1, T2, T3, T4, T5, T6, T7)> items, int chunkSize, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        return WaitOrAbandon(StarmapAsync(function, items, chunkSize), cancellationToken);
    }

    /// <summary>As <see cref="Starmap{T1, T2, TResult}(Func{T1, T2, TResult}, IEnumerable{ValueTuple{T1, T2}}, int)"/>, without waiting.</summary>
    public ShmAsyncResult<TResult[]> StarmapAsync<T1, T2, TResult>(Func<T1, T2, TResult> function, IEnumerable<(T1, T2)> items, int chunkSize = 0) =>
        MapCore<(T1, T2), TResult>(Register(function), items, chunkSize);

    /// <summary>As <see cref="Starmap{T1, T2, T3, TResult}(Func{T1, T2, T3, TResult}, IEnumerable{ValueTuple{T1, T2, T3}}, int)"/>, without waiting.</summary>
    public ShmAsyncResult<TResult[]> StarmapAsync<T1, T2, T3, TResult>(Func<T1, T2, T3, TResult> function, IEnumerable<(T1, T2, T3)> items, int chunkSize = 0) =>
        MapCore<(T1, T2, T3), TResult>(Register(function), items, chunkSize);

    /// <summary>As <see cref="Starmap{T1, T2, T3, T4, TResult}(Func{T1, T2, T3, T4, TResult}, IEnumerable{ValueTuple{T1, T2, T3, T4}}, int)"/>, without waiting.</summary>
    public ShmAsyncResult<TResult[]> StarmapAsync<T1, T2, T3, T4, TResult>(Func<T1, T2, T3, T4, TResult> function, IEnumerable<(T1, T2, T3, T4)> items, int chunkSize = 0) =>
        MapCore<(T1, T2, T3, T4), TResult>(Register(function), items, chunkSize);

    /// <summary>As <see cref="Starmap{T1, T2, T3, T4, T5, TResult}(Func{T1, T2, T3, T4, T5, TResult}, IEnumerable{ValueTuple{T1, T2, T3, T4, T5}}, int)"/>, without waiting.</summary>
    public ShmAsyncResult<TResult[]> StarmapAsync<T1, T2, T3, T4, T5, TResult>(Func<T1, T2, T3, T4, T5, TResult> function, IEnumerable<(T1, T2, T3, T4, T5)> items, int chunkSize = 0) =>
        MapCore<(T1, T2, T3, T4, T5), TResult>(Register(function), items, chunkSize);

    /// <summary>As <see cref="Starmap{T1, T2, T3, T4, T5, T6, TResult}(Func{T1, T2, T3, T4, T5, T6, TResult}, IEnumerable{ValueTuple{T1, T2, T3, T4, T5, T6}}, int)"/>, without waiting.</summary>
    public ShmAsyncResult<TResult[]> StarmapAsync<T1, T2, T3, T4, T5, T6, TResult>(Func<T1, T2, T3, T4, T5, T6, TResult> function, IEnumerable<(T1, T2, T3, T4, T5, T6)> items, int chunkSize = 0) =>
        MapCore<(T1, T2, T3, T4, T5, T6), TResult>(Register(function), items, chunkSize);

    /// <summary>As <see cref="Starmap{T1, T2, T3, T4, T5, T6, T7, TResult}(Func{T1, T2, T3, T4, T5, T6, T7, TResult}, IEnumerable{ValueTuple{T1, T2, T3, T4, T5, T6, T7}}, int)"/>, without waiting.</summary>
    public ShmAsyncResult<TResult[]> StarmapAsync<T1, T2, T3, T4, T5, T6, T7, TResult>(Func<T1, T2, T3, T4, T5, T6, T7, TResult> function, IEnumerable<(T1, T2, T3, T4, T5, T6, T7)> items, int chunkSize = 0) =>
        MapCore<(T1, T2, T3, T4, T5, T6, T7), TResult>(Register(function), items, chunkSize);

    private ShmAsyncResult<TResult[]> MapCore<TArg, TResult>(PoolFunction f, IEnumerable<TArg> items, int chunkSize)
    {
        ArgumentNullException.ThrowIfNull(items);
        ArgumentOutOfRangeException.ThrowIfNegative(chunkSize);
        MapTimeline.Mark("map-begin", 0);
        // An array is encoded from where it is (every chunk is encoded before this returns); anything else is read once.
        ReadOnlySpan<TArg> all = items switch
        {
            TArg[] array => array,
            List<TArg> list => System.Runtime.InteropServices.CollectionsMarshal.AsSpan(list),
            _ => items.ToArray(),
        };
        int size = ChunkSizeFor(all.Length, chunkSize);
        // Not zeroed (a 4 MB memset before the first chunk goes out): a Map returns its array only when every item's
        // value was written into it; arrays of references are zeroed by the runtime all the same.
        TResult[] results = GC.AllocateUninitializedArray<TResult>(all.Length);
        var chunks = new List<PoolChunk<TResult>>((int)(((long)all.Length + size - 1) / size));
        var completion = new MapCompletion<TResult>(results);
        if (IsBlockChunk<TArg, TResult>(f, out _))
        {
            // Blocks of unmanaged items (their encoding is a copy, it cannot fail): each chunk is queued as soon as it is
            // encoded, so the first workers run while the caller encodes the rest (encoding all first kept every worker
            // idle for 0.6-2.5 ms of a 6-17 ms Map of 1M ints). Every chunk is made (and tracked) first: one may settle
            // as soon as it is queued.
            for (int start = 0; start < all.Length; start += size)
            {
                chunks.Add(NewChunk(f, Math.Min(size, all.Length - start), target: results, targetOffset: start));
            }

            completion.Track(chunks);
            try
            {
                SubmitEach(chunks, all);
            }
            catch (InvalidOperationException)
            {
                _ = completion.Task.Exception; // failed with the chunks, reported by the throw: not an unobserved task exception
                throw;
            }

            // While the workers run: the result array's fresh pages faulted in by one call here rather than one fault per
            // page in the reader that copies each chunk's results in (see PagePrefault).
            long bytes = (long)results.Length * System.Runtime.CompilerServices.Unsafe.SizeOf<TResult>();
            if (bytes >= Memory.PagePrefault.MinimumBytes && bytes <= int.MaxValue)
            {
                Memory.PagePrefault.Populate(System.Runtime.InteropServices.MemoryMarshal.CreateSpan(
                    ref System.Runtime.CompilerServices.Unsafe.As<TResult, byte>(ref System.Runtime.InteropServices.MemoryMarshal.GetArrayDataReference(results)),
                    (int)bytes));
                MapTimeline.Mark("map-populated", 0);
            }
        }
        else
        {
            for (int start = 0; start < all.Length; start += size)
            {
                chunks.Add(MakeChunk<TArg, TResult>(f, all.Slice(start, Math.Min(size, all.Length - start)), target: results, targetOffset: start));
            }

            MapTimeline.Mark("map-encoded", chunks.Count);
            completion.Track(chunks);
            Submit(chunks);
        }

        MapTimeline.Mark("map-submitted", chunks.Count);
        return new ShmAsyncResult<TResult[]>(completion.Task, () => Cancel(chunks), () => DropQueued(chunks));
    }

    /// <summary>
    /// Encodes and queues <paramref name="chunks"/> one by one, each holding the items of <paramref name="all"/> from its <see cref="PoolChunk{TResult}.TargetOffset"/> on.
    /// When the pool refuses one (closed, broken), the chunks not queued fail with the same exception, which propagates.
    /// </summary>
    private void SubmitEach<TArg, TResult>(List<PoolChunk<TResult>> chunks, ReadOnlySpan<TArg> all)
    {
        for (int i = 0; i < chunks.Count; i++)
        {
            PoolChunk<TResult> chunk = chunks[i];
            Encode(chunk, all.Slice(chunk.TargetOffset, chunk.Count));
            try
            {
                Submit([chunk]);
            }
            catch (InvalidOperationException e)
            {
                for (int j = i; j < chunks.Count; j++)
                {
                    chunks[j].Fail(e);
                }

                throw;
            }
        }

        MapTimeline.Mark("map-encoded", chunks.Count);
    }

    /// <summary>
    /// Items per chunk: <paramref name="chunkSize"/>, else <see cref="ShmPoolOptions.DefaultChunkSize"/>, else about four
    /// chunks per worker that can run at once (<see cref="ChunkingWorkers"/>).
    /// </summary>
    private int ChunkSizeFor(int count, int chunkSize) =>
        chunkSize > 0 ? chunkSize
            : _options.DefaultChunkSize > 0 ? _options.DefaultChunkSize
            : Math.Max(1, (int)Math.Ceiling(count / (ChunkingWorkers * 4.0)));

    /// <summary>
    /// The workers the default chunk size is cut for: the pool's, but no more than the cores this process may use. More
    /// chunks than that run no sooner (the extra workers only share the same cores) and cost a round trip each: Pool(8) on
    /// 2 cores cut a Map of 1M trivial items into 32 chunks where 8 keep both cores as busy (probe, same run: Pool(8) over
    /// Pool(2) 0.90 with 32 chunks, 0.97 with 8, medians of 15). Four chunks per core still balance uneven items.
    /// </summary>
    private int ChunkingWorkers => Math.Max(1, Math.Min(ProcessCount, Environment.ProcessorCount));
}
