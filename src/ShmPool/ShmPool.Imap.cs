using System.Runtime.CompilerServices;
using ShmIpc.Pool;

namespace ShmIpc;

// Imap: a lazy Map whose results stream back as they come, with a bounded window of chunks out.
public sealed partial class ShmPool
{
    /// <summary>
    /// Lazily applies <paramref name="function"/> to the items and yields the results in input order as they
    /// come: items are read and sent while earlier results stream back, with a bounded number of chunks out.
    /// An item whose function threw rethrows when its turn comes.
    /// </summary>
    /// <param name="function">A static method or capture-free lambda.</param>
    /// <param name="items">Read lazily.</param>
    /// <param name="chunkSize">Items per chunk; 0 uses <see cref="ShmPoolOptions.DefaultChunkSize"/>, or 1.</param>
    public IEnumerable<TResult> Imap<TArg, TResult>(Func<TArg, TResult> function, IEnumerable<TArg> items, int chunkSize = 0) =>
        Imap(function, items, chunkSize, CancellationToken.None);

    /// <summary>
    /// As <see cref="Imap{TArg, TResult}(Func{TArg, TResult}, IEnumerable{TArg}, int)"/>; a cancelled <paramref name="cancellationToken"/>
    /// ends the enumeration at once with <see cref="OperationCanceledException"/> (from the next MoveNext, or the one waiting now).
    /// </summary>
    /// <remarks>As when the enumeration is left early: chunks no worker has started yet are dropped; running ones finish, unseen.</remarks>
    public IEnumerable<TResult> Imap<TArg, TResult>(Func<TArg, TResult> function, IEnumerable<TArg> items, CancellationToken cancellationToken) =>
        Imap(function, items, 0, cancellationToken);

    /// <summary>As <see cref="Imap{TArg, TResult}(Func{TArg, TResult}, IEnumerable{TArg}, CancellationToken)"/>, in chunks of <paramref name="chunkSize"/> items.</summary>
    public IEnumerable<TResult> Imap<TArg, TResult>(Func<TArg, TResult> function, IEnumerable<TArg> items, int chunkSize, CancellationToken cancellationToken) =>
        StartImap(function, items, chunkSize, ordered: true, cancellationToken);

    /// <summary>As <see cref="Imap{TArg, TResult}(Func{TArg, TResult}, IEnumerable{TArg}, int)"/>, but yields each chunk's results as soon as it completes, in any order.</summary>
    public IEnumerable<TResult> ImapUnordered<TArg, TResult>(Func<TArg, TResult> function, IEnumerable<TArg> items, int chunkSize = 0) =>
        ImapUnordered(function, items, chunkSize, CancellationToken.None);

    /// <summary>As <see cref="ImapUnordered{TArg, TResult}(Func{TArg, TResult}, IEnumerable{TArg}, int)"/>, cancellable as <see cref="Imap{TArg, TResult}(Func{TArg, TResult}, IEnumerable{TArg}, CancellationToken)"/>.</summary>
    public IEnumerable<TResult> ImapUnordered<TArg, TResult>(Func<TArg, TResult> function, IEnumerable<TArg> items, CancellationToken cancellationToken) =>
        ImapUnordered(function, items, 0, cancellationToken);

    /// <summary>As <see cref="ImapUnordered{TArg, TResult}(Func{TArg, TResult}, IEnumerable{TArg}, CancellationToken)"/>, in chunks of <paramref name="chunkSize"/> items.</summary>
    public IEnumerable<TResult> ImapUnordered<TArg, TResult>(Func<TArg, TResult> function, IEnumerable<TArg> items, int chunkSize, CancellationToken cancellationToken) =>
        StartImap(function, items, chunkSize, ordered: false, cancellationToken);

    /// <summary>Checks the arguments at the call (not at the first MoveNext) and returns the lazy enumeration.</summary>
    private IEnumerable<TResult> StartImap<TArg, TResult>(Func<TArg, TResult> function, IEnumerable<TArg> items, int chunkSize, bool ordered, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(items);
        return ImapCore<TArg, TResult>(Register(function), items, LazyChunkSize(chunkSize), ordered, cancellationToken);
    }

    /// <summary>As <see cref="Imap{TArg, TResult}(Func{TArg, TResult}, IEnumerable{TArg}, int)"/>, to <c>await foreach</c> (cancellable with <c>WithCancellation</c>).</summary>
    public IAsyncEnumerable<TResult> ImapAsync<TArg, TResult>(Func<TArg, TResult> function, IEnumerable<TArg> items, int chunkSize = 0)
    {
        ArgumentNullException.ThrowIfNull(items);
        return ImapCoreAsync<TArg, TResult>(Register(function), items, LazyChunkSize(chunkSize), ordered: true, default);
    }

    /// <summary>As <see cref="ImapUnordered{TArg, TResult}(Func{TArg, TResult}, IEnumerable{TArg}, int)"/>, to <c>await foreach</c> (cancellable with <c>WithCancellation</c>).</summary>
    public IAsyncEnumerable<TResult> ImapUnorderedAsync<TArg, TResult>(Func<TArg, TResult> function, IEnumerable<TArg> items, int chunkSize = 0)
    {
        ArgumentNullException.ThrowIfNull(items);
        return ImapCoreAsync<TArg, TResult>(Register(function), items, LazyChunkSize(chunkSize), ordered: false, default);
    }

    private int LazyChunkSize(int chunkSize)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(chunkSize);
        return chunkSize > 0 ? chunkSize : _options.DefaultChunkSize > 0 ? _options.DefaultChunkSize : 1;
    }

    /// <summary>Chunks an Imap keeps out (sent, or done and not yet yielded): enough to keep every worker busy.</summary>
    private int ImapWindow => ProcessCount * (_options.MaxChunksInFlightPerWorker + 1);

    private IEnumerable<TResult> ImapCore<TArg, TResult>(PoolFunction f, IEnumerable<TArg> items, int chunkSize, bool ordered, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
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
                    index = Task.WaitAny(window.Select(static c => (Task)c.Task).ToArray(), cancellationToken);
                }

                PoolChunk<TResult> next = window[index];
                WaitCompleted(next.Task, cancellationToken);
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

    /// <summary>Waits until <paramref name="task"/> completed, one way or another (its outcome is read after); cancellable.</summary>
    private static void WaitCompleted(Task task, CancellationToken cancellationToken)
    {
        if (task.IsCompleted)
        {
            return;
        }

        try
        {
            task.Wait(cancellationToken);
        }
        catch (AggregateException)
        {
            // Completed unsuccessfully: the caller reads the outcome and rethrows the original exception.
        }
    }
}
