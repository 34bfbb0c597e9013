using System.Runtime.CompilerServices;
using ShmIpc.Hosting;
using ShmIpc.Nats.Internal;

namespace ShmIpc.Nats;

// The IShmPool calls: each is a Map of chunks underneath (an Apply is a chunk of one).
public sealed partial class NatsPool
{
    /// <inheritdoc/>
    public TResult Apply<TArg, TResult>(Func<TArg, TResult> function, TArg arg) => ApplyAsync(function, arg).Get();

    /// <inheritdoc/>
    public TResult Apply<TArg, TResult>(Func<TArg, TResult> function, TArg arg, CancellationToken cancellationToken) =>
        WaitOrCancel(ApplyAsync(function, arg), cancellationToken);

    /// <inheritdoc/>
    public TResult Apply<TArg, TResult>(Func<TArg, TResult> function, TArg arg, TimeSpan timeout) => ApplyAsync(function, arg).Get(timeout);

    /// <inheritdoc/>
    public bool TryApply<TArg, TResult>(Func<TArg, TResult> function, TArg arg, out TResult result, TimeSpan timeout) =>
        ApplyAsync(function, arg).TryGet(out result, timeout);

    /// <inheritdoc/>
    public ShmAsyncResult<TResult> ApplyAsync<TArg, TResult>(Func<TArg, TResult> function, TArg arg)
    {
        TargetMethod target = TargetMethod.From(function, nameof(function));
        PendingTask<TResult> task = Submit<TArg, TResult>(target, new ArraySegment<TArg>([arg]), "Apply");
        return new ShmAsyncResult<TResult>(SingleAsync(task), () => Abandon(task));
    }

    private static async Task<TResult> SingleAsync<TResult>(PendingTask<TResult> task)
    {
        (TResult[] values, Dictionary<int, ShmRemoteException>? errors) = await task.Task.ConfigureAwait(false);
        return errors is not null && errors.TryGetValue(0, out ShmRemoteException? error) ? throw error : values[0];
    }

    /// <inheritdoc/>
    public TResult[] Map<TArg, TResult>(Func<TArg, TResult> function, IEnumerable<TArg> items, int chunkSize = 0) => MapAsync(function, items, chunkSize).Get();

    /// <inheritdoc/>
    public TResult[] Map<TArg, TResult>(Func<TArg, TResult> function, IEnumerable<TArg> items, CancellationToken cancellationToken) =>
        Map(function, items, 0, cancellationToken);

    /// <inheritdoc/>
    public TResult[] Map<TArg, TResult>(Func<TArg, TResult> function, IEnumerable<TArg> items, int chunkSize, CancellationToken cancellationToken) =>
        WaitOrCancel(MapAsync(function, items, chunkSize), cancellationToken);

    /// <inheritdoc/>
    public ShmAsyncResult<TResult[]> MapAsync<TArg, TResult>(Func<TArg, TResult> function, IEnumerable<TArg> items, int chunkSize = 0) =>
        MapCore<TArg, TResult>(TargetMethod.From(function, nameof(function)), items, chunkSize, "Map");

    private ShmAsyncResult<TResult[]> MapCore<TArg, TResult>(TargetMethod target, IEnumerable<TArg> items, int chunkSize, string what)
    {
        ArgumentNullException.ThrowIfNull(items);
        ArgumentOutOfRangeException.ThrowIfNegative(chunkSize);
        TArg[] array = items.ToArray();
        List<(int Offset, PendingTask<TResult> Task)> chunks = SubmitChunks<TArg, TResult>(target, array, chunkSize == 0 ? DefaultChunkSize(array.Length) : chunkSize, what);
        return new ShmAsyncResult<TResult[]>(GatherAsync(chunks, array.Length), () => Abandon(chunks.Select(static c => c.Task)));
    }

    /// <summary>The results of all chunks in input order; the first failed item (in input order) throws.</summary>
    private static async Task<TResult[]> GatherAsync<TResult>(List<(int Offset, PendingTask<TResult> Task)> chunks, int count)
    {
        var results = new TResult[count];
        foreach ((int offset, PendingTask<TResult> task) in chunks)
        {
            (TResult[] values, Dictionary<int, ShmRemoteException>? errors) = await task.Task.ConfigureAwait(false);
            if (errors is not null)
            {
                throw errors[errors.Keys.Min()];
            }

            values.CopyTo(results, offset);
        }

        return results;
    }

    /// <inheritdoc/>
    /// <remarks>At most <see cref="NatsPoolOptions.ImapWindow"/> tasks are out at a time: the input is read as results are read, so it may be endless.</remarks>
    public IEnumerable<TResult> Imap<TArg, TResult>(Func<TArg, TResult> function, IEnumerable<TArg> items, int chunkSize = 0) =>
        Imap(function, items, chunkSize, CancellationToken.None);

    /// <inheritdoc/>
    /// <remarks>At most <see cref="NatsPoolOptions.ImapWindow"/> tasks are out at a time: the input is read as results are read, so it may be endless.</remarks>
    public IEnumerable<TResult> Imap<TArg, TResult>(Func<TArg, TResult> function, IEnumerable<TArg> items, CancellationToken cancellationToken) =>
        Imap(function, items, 0, cancellationToken);

    /// <inheritdoc/>
    /// <remarks>At most <see cref="NatsPoolOptions.ImapWindow"/> tasks are out at a time: the input is read as results are read, so it may be endless.</remarks>
    public IEnumerable<TResult> Imap<TArg, TResult>(Func<TArg, TResult> function, IEnumerable<TArg> items, int chunkSize, CancellationToken cancellationToken) =>
        ImapWindowAsync<TArg, TResult>(ImapTarget(function, items, chunkSize), items, chunkSize, ordered: true, cancellationToken).ToBlockingEnumerable(cancellationToken);

    /// <inheritdoc/>
    /// <remarks>At most <see cref="NatsPoolOptions.ImapWindow"/> tasks are out at a time: the input is read as results are read, so it may be endless.</remarks>
    public IAsyncEnumerable<TResult> ImapAsync<TArg, TResult>(Func<TArg, TResult> function, IEnumerable<TArg> items, int chunkSize = 0) =>
        ImapWindowAsync<TArg, TResult>(ImapTarget(function, items, chunkSize), items, chunkSize, ordered: true);

    /// <inheritdoc/>
    /// <remarks>At most <see cref="NatsPoolOptions.ImapWindow"/> tasks are out at a time: the input is read as results are read, so it may be endless.</remarks>
    public IEnumerable<TResult> ImapUnordered<TArg, TResult>(Func<TArg, TResult> function, IEnumerable<TArg> items, int chunkSize = 0) =>
        ImapUnordered(function, items, chunkSize, CancellationToken.None);

    /// <inheritdoc/>
    /// <remarks>At most <see cref="NatsPoolOptions.ImapWindow"/> tasks are out at a time: the input is read as results are read, so it may be endless.</remarks>
    public IEnumerable<TResult> ImapUnordered<TArg, TResult>(Func<TArg, TResult> function, IEnumerable<TArg> items, CancellationToken cancellationToken) =>
        ImapUnordered(function, items, 0, cancellationToken);

    /// <inheritdoc/>
    /// <remarks>At most <see cref="NatsPoolOptions.ImapWindow"/> tasks are out at a time: the input is read as results are read, so it may be endless.</remarks>
    public IEnumerable<TResult> ImapUnordered<TArg, TResult>(Func<TArg, TResult> function, IEnumerable<TArg> items, int chunkSize, CancellationToken cancellationToken) =>
        ImapWindowAsync<TArg, TResult>(ImapTarget(function, items, chunkSize), items, chunkSize, ordered: false, cancellationToken).ToBlockingEnumerable(cancellationToken);

    /// <inheritdoc/>
    /// <remarks>At most <see cref="NatsPoolOptions.ImapWindow"/> tasks are out at a time: the input is read as results are read, so it may be endless.</remarks>
    public IAsyncEnumerable<TResult> ImapUnorderedAsync<TArg, TResult>(Func<TArg, TResult> function, IEnumerable<TArg> items, int chunkSize = 0) =>
        ImapWindowAsync<TArg, TResult>(ImapTarget(function, items, chunkSize), items, chunkSize, ordered: false);

    /// <summary>Checks an Imap call's arguments when it is made (the tasks go out once its results are enumerated).</summary>
    private static TargetMethod ImapTarget<TArg, TResult>(Func<TArg, TResult> function, IEnumerable<TArg> items, int chunkSize)
    {
        TargetMethod target = TargetMethod.From(function, nameof(function));
        ArgumentNullException.ThrowIfNull(items);
        ArgumentOutOfRangeException.ThrowIfNegative(chunkSize);
        return target;
    }

    /// <summary>
    /// Imap's engine: reads the input a chunk at a time (Imap's default chunk is one item, as Python's) and keeps at most
    /// <see cref="NatsPoolOptions.ImapWindow"/> tasks out; yields the results in input order, or as they come.
    /// </summary>
    /// <remarks>
    /// Design: the window is refilled only between results, inside the enumeration: while the caller does not read, no
    /// more input is read and no more tasks are sent, so at most window x chunk items are taken from the input ahead of
    /// the results read. Tasks still out when the enumeration ends early (break, an exception, cancellation) are
    /// abandoned: taken off the queue and their results dropped.
    /// </remarks>
    private async IAsyncEnumerable<TResult> ImapWindowAsync<TArg, TResult>(TargetMethod target, IEnumerable<TArg> items, int chunkSize, bool ordered,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        int size = Math.Max(1, chunkSize);
        var window = new List<PendingTask<TResult>>(_options.ImapWindow);
        using IEnumerator<TArg> source = items.GetEnumerator();
        bool exhausted = false;
        try
        {
            while (true)
            {
                while (!exhausted && window.Count < _options.ImapWindow)
                {
                    var chunk = new List<TArg>(Math.Min(size, 1024));
                    while (chunk.Count < size && source.MoveNext())
                    {
                        chunk.Add(source.Current);
                    }

                    exhausted = chunk.Count < size;
                    if (chunk.Count > 0)
                    {
                        window.AddRange(SubmitChunks<TArg, TResult>(target, chunk.ToArray(), size, "Imap").Select(static c => c.Task));
                    }
                }

                if (window.Count == 0)
                {
                    yield break;
                }

                PendingTask<TResult> next = ordered ? window[0] : await FirstDoneAsync(window, cancellationToken).ConfigureAwait(false);
                (TResult[] Values, Dictionary<int, ShmRemoteException>? Errors) chunkResults = await next.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
                window.Remove(next);
                foreach (TResult value in ItemsOf(chunkResults))
                {
                    yield return value;
                }
            }
        }
        finally
        {
            Abandon(window);
        }
    }

    /// <summary>The first task of <paramref name="window"/> to be over.</summary>
    private static async Task<PendingTask<TResult>> FirstDoneAsync<TResult>(List<PendingTask<TResult>> window, CancellationToken cancellationToken)
    {
        Task done = await Task.WhenAny(window.Select(static t => t.Completion)).WaitAsync(cancellationToken).ConfigureAwait(false);
        return window.First(t => t.Completion == done);
    }

    /// <summary>A chunk's values in order, throwing at the first item that failed.</summary>
    private static IEnumerable<TResult> ItemsOf<TResult>((TResult[] Values, Dictionary<int, ShmRemoteException>? Errors) chunk)
    {
        for (int i = 0; i < chunk.Values.Length; i++)
        {
            if (chunk.Errors is not null && chunk.Errors.TryGetValue(i, out ShmRemoteException? error))
            {
                throw error;
            }

            yield return chunk.Values[i];
        }
    }

    /// <inheritdoc/>
    public TResult[] Starmap<T1, T2, TResult>(Func<T1, T2, TResult> function, IEnumerable<(T1, T2)> items, int chunkSize = 0) => StarmapAsync(function, items, chunkSize).Get();

    /// <inheritdoc/>
    public TResult[] Starmap<T1, T2, TResult>(Func<T1, T2, TResult> function, IEnumerable<(T1, T2)> items, CancellationToken cancellationToken) => Starmap(function, items, 0, cancellationToken);

    /// <inheritdoc/>
    public TResult[] Starmap<T1, T2, TResult>(Func<T1, T2, TResult> function, IEnumerable<(T1, T2)> items, int chunkSize, CancellationToken cancellationToken) =>
        WaitOrCancel(StarmapAsync(function, items, chunkSize), cancellationToken);

    /// <inheritdoc/>
    public ShmAsyncResult<TResult[]> StarmapAsync<T1, T2, TResult>(Func<T1, T2, TResult> function, IEnumerable<(T1, T2)> items, int chunkSize = 0) =>
        MapCore<(T1, T2), TResult>(TargetMethod.From(function, nameof(function)), items, chunkSize, "Starmap");

    /// <inheritdoc/>
    public TResult[] Starmap<T1, T2, T3, TResult>(Func<T1, T2, T3, TResult> function, IEnumerable<(T1, T2, T3)> items, int chunkSize = 0) => StarmapAsync(function, items, chunkSize).Get();

    /// <inheritdoc/>
    public TResult[] Starmap<T1, T2, T3, TResult>(Func<T1, T2, T3, TResult> function, IEnumerable<(T1, T2, T3)> items, CancellationToken cancellationToken) => Starmap(function, items, 0, cancellationToken);

    /// <inheritdoc/>
    public TResult[] Starmap<T1, T2, T3, TResult>(Func<T1, T2, T3, TResult> function, IEnumerable<(T1, T2, T3)> items, int chunkSize, CancellationToken cancellationToken) =>
        WaitOrCancel(StarmapAsync(function, items, chunkSize), cancellationToken);

    /// <inheritdoc/>
    public ShmAsyncResult<TResult[]> StarmapAsync<T1, T2, T3, TResult>(Func<T1, T2, T3, TResult> function, IEnumerable<(T1, T2, T3)> items, int chunkSize = 0) =>
        MapCore<(T1, T2, T3), TResult>(TargetMethod.From(function, nameof(function)), items, chunkSize, "Starmap");

    /// <inheritdoc/>
    public TResult[] Starmap<T1, T2, T3, T4, TResult>(Func<T1, T2, T3, T4, TResult> function, IEnumerable<(T1, T2, T3, T4)> items, int chunkSize = 0) => StarmapAsync(function, items, chunkSize).Get();

    /// <inheritdoc/>
    public TResult[] Starmap<T1, T2, T3, T4, TResult>(Func<T1, T2, T3, T4, TResult> function, IEnumerable<(T1, T2, T3, T4)> items, CancellationToken cancellationToken) => Starmap(function, items, 0, cancellationToken);

    /// <inheritdoc/>
    public TResult[] Starmap<T1, T2, T3, T4, TResult>(Func<T1, T2, T3, T4, TResult> function, IEnumerable<(T1, T2, T3, T4)> items, int chunkSize, CancellationToken cancellationToken) =>
        WaitOrCancel(StarmapAsync(function, items, chunkSize), cancellationToken);

    /// <inheritdoc/>
    public ShmAsyncResult<TResult[]> StarmapAsync<T1, T2, T3, T4, TResult>(Func<T1, T2, T3, T4, TResult> function, IEnumerable<(T1, T2, T3, T4)> items, int chunkSize = 0) =>
        MapCore<(T1, T2, T3, T4), TResult>(TargetMethod.From(function, nameof(function)), items, chunkSize, "Starmap");

    /// <inheritdoc/>
    public TResult[] Starmap<T1, T2, T3, T4, T5, TResult>(Func<T1, T2, T3, T4, T5, TResult> function, IEnumerable<(T1, T2, T3, T4, T5)> items, int chunkSize = 0) => StarmapAsync(function, items, chunkSize).Get();

    /// <inheritdoc/>
    public TResult[] Starmap<T1, T2, T3, T4, T5, TResult>(Func<T1, T2, T3, T4, T5, TResult> function, IEnumerable<(T1, T2, T3, T4, T5)> items, CancellationToken cancellationToken) => Starmap(function, items, 0, cancellationToken);

    /// <inheritdoc/>
    public TResult[] Starmap<T1, T2, T3, T4, T5, TResult>(Func<T1, T2, T3, T4, T5, TResult> function, IEnumerable<(T1, T2, T3, T4, T5)> items, int chunkSize, CancellationToken cancellationToken) =>
        WaitOrCancel(StarmapAsync(function, items, chunkSize), cancellationToken);

    /// <inheritdoc/>
    public ShmAsyncResult<TResult[]> StarmapAsync<T1, T2, T3, T4, T5, TResult>(Func<T1, T2, T3, T4, T5, TResult> function, IEnumerable<(T1, T2, T3, T4, T5)> items, int chunkSize = 0) =>
        MapCore<(T1, T2, T3, T4, T5), TResult>(TargetMethod.From(function, nameof(function)), items, chunkSize, "Starmap");

    /// <inheritdoc/>
    public TResult[] Starmap<T1, T2, T3, T4, T5, T6, TResult>(Func<T1, T2, T3, T4, T5, T6, TResult> function, IEnumerable<(T1, T2, T3, T4, T5, T6)> items, int chunkSize = 0) => StarmapAsync(function, items, chunkSize).Get();

    /// <inheritdoc/>
    public TResult[] Starmap<T1, T2, T3, T4, T5, T6, TResult>(Func<T1, T2, T3, T4, T5, T6, TResult> function, IEnumerable<(T1, T2, T3, T4, T5, T6)> items, CancellationToken cancellationToken) => Starmap(function, items, 0, cancellationToken);

    /// <inheritdoc/>
    public TResult[] Starmap<T1, T2, T3, T4, T5, T6, TResult>(Func<T1, T2, T3, T4, T5, T6, TResult> function, IEnumerable<(T1, T2, T3, T4, T5, T6)> items, int chunkSize, CancellationToken cancellationToken) =>
        WaitOrCancel(StarmapAsync(function, items, chunkSize), cancellationToken);

    /// <inheritdoc/>
    public ShmAsyncResult<TResult[]> StarmapAsync<T1, T2, T3, T4, T5, T6, TResult>(Func<T1, T2, T3, T4, T5, T6, TResult> function, IEnumerable<(T1, T2, T3, T4, T5, T6)> items, int chunkSize = 0) =>
        MapCore<(T1, T2, T3, T4, T5, T6), TResult>(TargetMethod.From(function, nameof(function)), items, chunkSize, "Starmap");

    /// <inheritdoc/>
    public TResult[] Starmap<T1, T2, T3, T4, T5, T6, T7, TResult>(Func<T1, T2, T3, T4, T5, T6, T7, TResult> function, IEnumerable<(T1, T2, T3, T4, T5, T6, T7)> items, int chunkSize = 0) => StarmapAsync(function, items, chunkSize).Get();

    /// <inheritdoc/>
    public TResult[] Starmap<T1, T2, T3, T4, T5, T6, T7, TResult>(Func<T1, T2, T3, T4, T5, T6, T7, TResult> function, IEnumerable<(T1, T2, T3, T4, T5, T6, T7)> items, CancellationToken cancellationToken) => Starmap(function, items, 0, cancellationToken);

    /// <inheritdoc/>
    public TResult[] Starmap<T1, T2, T3, T4, T5, T6, T7, TResult>(Func<T1, T2, T3, T4, T5, T6, T7, TResult> function, IEnumerable<(T1, T2, T3, T4, T5, T6, T7)> items, int chunkSize, CancellationToken cancellationToken) =>
        WaitOrCancel(StarmapAsync(function, items, chunkSize), cancellationToken);

    /// <inheritdoc/>
    public ShmAsyncResult<TResult[]> StarmapAsync<T1, T2, T3, T4, T5, T6, T7, TResult>(Func<T1, T2, T3, T4, T5, T6, T7, TResult> function, IEnumerable<(T1, T2, T3, T4, T5, T6, T7)> items, int chunkSize = 0) =>
        MapCore<(T1, T2, T3, T4, T5, T6, T7), TResult>(TargetMethod.From(function, nameof(function)), items, chunkSize, "Starmap");

    /// <summary>Waits for <paramref name="result"/>; on cancellation stops waiting and drops the tasks not done.</summary>
    private static T WaitOrCancel<T>(ShmAsyncResult<T> result, CancellationToken cancellationToken)
    {
        try
        {
            return result.Get(cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            result.Cancel();
            throw;
        }
    }

    /// <summary>Stops waiting for these tasks: any not done are taken off the queue (best effort) and their results dropped.</summary>
    private void Abandon(params IEnumerable<PendingTask> tasks)
    {
        foreach (PendingTask task in tasks)
        {
            if (_pending.TryRemove(task.Id, out _))
            {
                _bySequence.TryRemove(task.Sequence, out _);
                task.Fail(new OperationCanceledException($"{task.Describe} was cancelled."));
                DeleteTask(task.Sequence);
            }
        }
    }
}
