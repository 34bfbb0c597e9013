namespace ShmIpc.Pool;

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
