using System.Runtime.CompilerServices;
using ShmIpc.Pool;
using ShmIpc.Protocol;

namespace ShmIpc;

// MapInPlace and ForEachChunk: chunks of shared arrays worked on where they lie.
//
// Design: a call is split into chunks of element bounds, each an InPlaceChunk whose message names the arrays (name and
// token, see ArrayToken) and carries [start, start + count); only those few bytes cross the pipe, and the reply is done
// or failed. The worker (Hosting/InPlaceRunner.cs) maps each array once and keeps it mapped across chunks and calls, so
// neither the mapping nor the page-table faults of touching it are paid per chunk. Chunks go through the queue,
// dispatcher and supervisor as every other chunk: a chunk whose worker dies is sent again (InPlaceChunk.CrashRetries,
// whatever TaskRetries says: a second run writes the same slots with the same values), and cancellation, TaskTimeout
// and Terminate stop it as they stop a Map's. Chunks of one call write disjoint slots, so no two workers write the same
// element; the caller sees the workers' stores once the call completes (the worker's reply is sent after its stores, and
// the pipe's release/acquire pair orders them before the completion the caller waits on).
public sealed partial class ShmPool
{
    /// <summary>Tokens of the arrays passed to in-place calls (see <see cref="ArrayToken"/>).</summary>
    private static readonly ConditionalWeakTable<object, object> s_arrayTokens = new();
    private static long s_nextArrayToken;

    /// <summary>
    /// Sets <paramref name="output"/>[i] = <paramref name="function"/>(<paramref name="input"/>[i]) for every i, in chunks spread
    /// over the workers, which read their chunk of <paramref name="input"/> straight from shared memory and write
    /// <paramref name="output"/> in place: only the chunks' bounds cross the pipes.
    /// </summary>
    /// <typeparam name="TIn">The input's element type.</typeparam>
    /// <typeparam name="TOut">The output's element type.</typeparam>
    /// <param name="function">A static method or capture-free lambda.</param>
    /// <param name="input">The arguments. May be <paramref name="output"/> itself (each element is replaced by its result).</param>
    /// <param name="output">Where the results go; as long as <paramref name="input"/>.</param>
    /// <param name="chunkSize">Elements per chunk; 0 uses <see cref="ShmPoolOptions.DefaultChunkSize"/>, or about four chunks per worker (per core when the pool has more workers than the machine has cores).</param>
    /// <remarks>
    /// A chunk whose worker dies (killed, crashed) is run again on another worker, up to three times whatever
    /// <see cref="ShmPoolOptions.TaskRetries"/> says: its output slots are simply written again, and the call completes with
    /// every element computed. Each worker keeps the arrays of its recent in-place calls mapped (a repeated call neither maps
    /// them nor faults their pages in again): the memory of an array removed meanwhile is given back when a later in-place
    /// call displaces it, or when the pool ends.
    /// </remarks>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="input"/> and <paramref name="output"/> differ in length, or <paramref name="function"/> is not a static method.</exception>
    /// <exception cref="ObjectDisposedException">An array was disposed.</exception>
    /// <exception cref="ShmRemoteException">The function threw (the message names the element).</exception>
    /// <exception cref="ShmWorkerCrashedException">A chunk's workers died more often than it is retried.</exception>
    public void MapInPlace<TIn, TOut>(Func<TIn, TOut> function, ShmArray<TIn> input, ShmArray<TOut> output, int chunkSize = 0)
        where TIn : unmanaged
        where TOut : unmanaged =>
        MapInPlace(function, input, output, chunkSize, CancellationToken.None);

    /// <summary>As <see cref="MapInPlace{TIn, TOut}(Func{TIn, TOut}, ShmArray{TIn}, ShmArray{TOut}, int)"/>, until <paramref name="cancellationToken"/> is cancelled.</summary>
    /// <remarks>
    /// Cancellation ends the wait at once with <see cref="OperationCanceledException"/>. Chunks no worker has started yet are
    /// dropped; chunks the workers run already finish there (their output slots may still be written for a moment after the
    /// call returned). The pool stays usable.
    /// </remarks>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled first.</exception>
    public void MapInPlace<TIn, TOut>(Func<TIn, TOut> function, ShmArray<TIn> input, ShmArray<TOut> output, CancellationToken cancellationToken)
        where TIn : unmanaged
        where TOut : unmanaged =>
        MapInPlace(function, input, output, 0, cancellationToken);

    /// <summary>As <see cref="MapInPlace{TIn, TOut}(Func{TIn, TOut}, ShmArray{TIn}, ShmArray{TOut}, CancellationToken)"/>, in chunks of <paramref name="chunkSize"/> elements.</summary>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled first.</exception>
    public void MapInPlace<TIn, TOut>(Func<TIn, TOut> function, ShmArray<TIn> input, ShmArray<TOut> output, int chunkSize, CancellationToken cancellationToken)
        where TIn : unmanaged
        where TOut : unmanaged
    {
        cancellationToken.ThrowIfCancellationRequested();
        _ = WaitOrAbandon(StartMapInPlace(function, input, output, chunkSize), cancellationToken);
    }

    /// <summary>As <see cref="MapInPlace{TIn, TOut}(Func{TIn, TOut}, ShmArray{TIn}, ShmArray{TOut}, int, CancellationToken)"/>, without blocking a thread.</summary>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled first.</exception>
    public Task MapInPlaceAsync<TIn, TOut>(Func<TIn, TOut> function, ShmArray<TIn> input, ShmArray<TOut> output, int chunkSize = 0,
        CancellationToken cancellationToken = default)
        where TIn : unmanaged
        where TOut : unmanaged
    {
        cancellationToken.ThrowIfCancellationRequested();
        return AwaitOrAbandon(StartMapInPlace(function, input, output, chunkSize), cancellationToken);
    }

    /// <summary>
    /// Runs <paramref name="action"/> on every chunk of <paramref name="data"/>, in the workers, on the shared memory itself:
    /// for kernels that are not element by element (a chunk is sorted, smoothed, scanned).
    /// </summary>
    /// <typeparam name="T">The element type.</typeparam>
    /// <param name="data">The array.</param>
    /// <param name="action">A static method or capture-free lambda; gets each chunk and its offset in <paramref name="data"/>.</param>
    /// <param name="chunkSize">Elements per chunk; 0 uses <see cref="ShmPoolOptions.DefaultChunkSize"/>, or about four chunks per worker (per core when the pool has more workers than the machine has cores).</param>
    /// <remarks>
    /// As <see cref="MapInPlace{TIn, TOut}(Func{TIn, TOut}, ShmArray{TIn}, ShmArray{TOut}, int)"/>, a chunk whose worker dies is
    /// run again elsewhere: an action that reads what it writes (in-place updates such as x += 1) must tolerate running twice
    /// on a chunk it may have half updated.
    /// </remarks>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="action"/> is not a static method.</exception>
    /// <exception cref="ObjectDisposedException"><paramref name="data"/> was disposed.</exception>
    /// <exception cref="ShmRemoteException">The action threw (the message names the chunk).</exception>
    /// <exception cref="ShmWorkerCrashedException">A chunk's workers died more often than it is retried.</exception>
    public void ForEachChunk<T>(ShmArray<T> data, ShmSpanAction<T> action, int chunkSize = 0)
        where T : unmanaged =>
        ForEachChunk(data, action, chunkSize, CancellationToken.None);

    /// <summary>As <see cref="ForEachChunk{T}(ShmArray{T}, ShmSpanAction{T}, int)"/>, until <paramref name="cancellationToken"/> is cancelled (as <see cref="MapInPlace{TIn, TOut}(Func{TIn, TOut}, ShmArray{TIn}, ShmArray{TOut}, CancellationToken)"/>).</summary>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled first.</exception>
    public void ForEachChunk<T>(ShmArray<T> data, ShmSpanAction<T> action, CancellationToken cancellationToken)
        where T : unmanaged =>
        ForEachChunk(data, action, 0, cancellationToken);

    /// <summary>As <see cref="ForEachChunk{T}(ShmArray{T}, ShmSpanAction{T}, CancellationToken)"/>, in chunks of <paramref name="chunkSize"/> elements.</summary>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled first.</exception>
    public void ForEachChunk<T>(ShmArray<T> data, ShmSpanAction<T> action, int chunkSize, CancellationToken cancellationToken)
        where T : unmanaged
    {
        cancellationToken.ThrowIfCancellationRequested();
        _ = WaitOrAbandon(StartForEachChunk(data, action, chunkSize), cancellationToken);
    }

    /// <summary>As <see cref="ForEachChunk{T}(ShmArray{T}, ShmSpanAction{T}, int, CancellationToken)"/>, without blocking a thread.</summary>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled first.</exception>
    public Task ForEachChunkAsync<T>(ShmArray<T> data, ShmSpanAction<T> action, int chunkSize = 0, CancellationToken cancellationToken = default)
        where T : unmanaged
    {
        cancellationToken.ThrowIfCancellationRequested();
        return AwaitOrAbandon(StartForEachChunk(data, action, chunkSize), cancellationToken);
    }

    private ShmAsyncResult<bool> StartMapInPlace<TIn, TOut>(Func<TIn, TOut> function, ShmArray<TIn> input, ShmArray<TOut> output, int chunkSize)
        where TIn : unmanaged
        where TOut : unmanaged
    {
        ArgumentNullException.ThrowIfNull(function);
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(output);
        ArgumentOutOfRangeException.ThrowIfNegative(chunkSize);
        if (input.Length != output.Length)
        {
            throw new ArgumentException($"MapInPlace writes one output element per input element: the input array '{input.Name}' has {input.Length} " +
                $"elements and the output array '{output.Name}' has {output.Length}.", nameof(output));
        }

        _ = input.AsSpan(); // a disposed array is refused here, naming it, rather than in a worker
        _ = output.AsSpan();
        PoolFunction f = Register(function);
        return StartInPlace(f, input.Name, ArrayToken(input), output.Name, ArrayToken(output), input.Length, chunkSize);
    }

    private ShmAsyncResult<bool> StartForEachChunk<T>(ShmArray<T> data, ShmSpanAction<T> action, int chunkSize)
        where T : unmanaged
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(action);
        ArgumentOutOfRangeException.ThrowIfNegative(chunkSize);
        _ = data.AsSpan();
        PoolFunction f = Register(action, static _ => typeof(T));
        return StartInPlace(f, data.Name, ArrayToken(data), outputName: null, outputToken: 0, data.Length, chunkSize);
    }

    /// <summary>Splits [0, <paramref name="length"/>) into in-place chunks of <paramref name="f"/> and submits them.</summary>
    private ShmAsyncResult<bool> StartInPlace(PoolFunction f, string inputName, long inputToken, string? outputName, long outputToken, int length, int chunkSize)
    {
        int size = ChunkSizeFor(length, chunkSize);
        int count = (int)(((long)length + size - 1) / size);
        var call = new InPlaceCall(count);
        var chunks = new List<InPlaceChunk>(count);
        var writer = new MessageWriter();
        for (int start = 0; start < length; start += size)
        {
            long id = Interlocked.Increment(ref _nextChunkId);
            int n = Math.Min(size, length - start);
            writer.Reset(MessageKind.InPlaceChunk).WriteInt64(id);
            writer.WriteInt32(f.Id);
            writer.WriteString(inputName);
            writer.WriteInt64(inputToken);
            writer.WriteString(outputName);
            writer.WriteInt64(outputToken);
            writer.WriteInt32(start);
            writer.WriteInt32(n);
            var chunk = new InPlaceChunk(id, f, writer.Written.ToArray(), n, call);
            chunk.BeginTelemetry(TaskActivityName);
            chunks.Add(chunk);
            if (length - start <= size)
            {
                break; // start + size would overflow for an array near int.MaxValue elements
            }
        }

        Submit(chunks);
        return new ShmAsyncResult<bool>(call.Task, () => Cancel(chunks), () => DropQueued(chunks));
    }

    /// <summary>
    /// A number for this array object, the same for every call that passes it: the workers key their mappings by name and
    /// token, so an array removed and created again under the same name (a new object here) is mapped afresh, not found stale.
    /// </summary>
    private static long ArrayToken(object array) =>
        (long)s_arrayTokens.GetValue(array, static _ => Interlocked.Increment(ref s_nextArrayToken));

    /// <summary>Awaits a call; a cancelled wait abandons it as <see cref="WaitOrAbandon{TResult}"/> does.</summary>
    private static async Task AwaitOrAbandon(ShmAsyncResult<bool> pending, CancellationToken cancellationToken)
    {
        try
        {
            await pending.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested && !pending.Task.IsCompleted)
        {
            pending.Abandon();
            throw;
        }
    }
}
