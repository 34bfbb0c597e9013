namespace ShmIpc;

/// <summary>
/// A pool of worker processes that run static methods on arguments, whatever carries the tasks: <see cref="ShmPool"/>
/// (workers on this machine, over shared memory) or a network backend such as <c>ShmIpc.Nats.NatsPool</c> (workers on
/// any host). Code written against this interface runs on either; the semantics of each member are those documented
/// on <see cref="ShmPool"/>.
/// </summary>
/// <remarks>
/// Functions must be static methods or capture-free lambdas: a worker finds them by assembly and metadata token.
/// Faults: an exception in the function comes back as <see cref="ShmRemoteException"/>; a worker that dies holding a
/// task fails it with <see cref="ShmWorkerCrashedException"/> once the backend's retries are spent.
/// </remarks>
// CA1716 ('function' is a VB keyword): the parameter names are ShmPool's, shipped before this interface; renaming them
// would break callers that pass them by name.
#pragma warning disable CA1716
public interface IShmPool : IDisposable, IAsyncDisposable
{
    /// <summary>Runs <paramref name="function"/>(<paramref name="arg"/>) in a worker and returns its result.</summary>
    TResult Apply<TArg, TResult>(Func<TArg, TResult> function, TArg arg);

    /// <summary>As <see cref="Apply{TArg, TResult}(Func{TArg, TResult}, TArg)"/>, until <paramref name="cancellationToken"/> is cancelled.</summary>
    TResult Apply<TArg, TResult>(Func<TArg, TResult> function, TArg arg, CancellationToken cancellationToken);

    /// <summary>As <see cref="Apply{TArg, TResult}(Func{TArg, TResult}, TArg)"/>, waiting at most <paramref name="timeout"/> (then <see cref="TimeoutException"/>).</summary>
    TResult Apply<TArg, TResult>(Func<TArg, TResult> function, TArg arg, TimeSpan timeout);

    /// <summary>As <see cref="Apply{TArg, TResult}(Func{TArg, TResult}, TArg, TimeSpan)"/>, false instead of a timeout.</summary>
    bool TryApply<TArg, TResult>(Func<TArg, TResult> function, TArg arg, out TResult result, TimeSpan timeout);

    /// <summary>Starts <paramref name="function"/>(<paramref name="arg"/>) in a worker without waiting.</summary>
    ShmAsyncResult<TResult> ApplyAsync<TArg, TResult>(Func<TArg, TResult> function, TArg arg);

    /// <summary>Applies <paramref name="function"/> to every item, in chunks spread over the workers; results in input order.</summary>
    TResult[] Map<TArg, TResult>(Func<TArg, TResult> function, IEnumerable<TArg> items, int chunkSize = 0);

    /// <summary>As the Map above, until <paramref name="cancellationToken"/> is cancelled.</summary>
    TResult[] Map<TArg, TResult>(Func<TArg, TResult> function, IEnumerable<TArg> items, CancellationToken cancellationToken);

    /// <summary>As the Map above, in chunks of <paramref name="chunkSize"/> items, until <paramref name="cancellationToken"/> is cancelled.</summary>
    TResult[] Map<TArg, TResult>(Func<TArg, TResult> function, IEnumerable<TArg> items, int chunkSize, CancellationToken cancellationToken);

    /// <summary>As the Map above, without waiting.</summary>
    ShmAsyncResult<TResult[]> MapAsync<TArg, TResult>(Func<TArg, TResult> function, IEnumerable<TArg> items, int chunkSize = 0);

    /// <summary>A lazy Map: the results in input order, each as soon as it and those before it are done.</summary>
    IEnumerable<TResult> Imap<TArg, TResult>(Func<TArg, TResult> function, IEnumerable<TArg> items, int chunkSize = 0);

    /// <summary>As the Imap above, until <paramref name="cancellationToken"/> is cancelled.</summary>
    IEnumerable<TResult> Imap<TArg, TResult>(Func<TArg, TResult> function, IEnumerable<TArg> items, CancellationToken cancellationToken);

    /// <summary>As the Imap above, in chunks of <paramref name="chunkSize"/> items, until <paramref name="cancellationToken"/> is cancelled.</summary>
    IEnumerable<TResult> Imap<TArg, TResult>(Func<TArg, TResult> function, IEnumerable<TArg> items, int chunkSize, CancellationToken cancellationToken);

    /// <summary>As the Imap above, to <c>await foreach</c>.</summary>
    IAsyncEnumerable<TResult> ImapAsync<TArg, TResult>(Func<TArg, TResult> function, IEnumerable<TArg> items, int chunkSize = 0);

    /// <summary>As Imap, but each chunk's results as soon as it completes, in any order.</summary>
    IEnumerable<TResult> ImapUnordered<TArg, TResult>(Func<TArg, TResult> function, IEnumerable<TArg> items, int chunkSize = 0);

    /// <summary>As the ImapUnordered above, until <paramref name="cancellationToken"/> is cancelled.</summary>
    IEnumerable<TResult> ImapUnordered<TArg, TResult>(Func<TArg, TResult> function, IEnumerable<TArg> items, CancellationToken cancellationToken);

    /// <summary>As the ImapUnordered above, in chunks of <paramref name="chunkSize"/> items, until <paramref name="cancellationToken"/> is cancelled.</summary>
    IEnumerable<TResult> ImapUnordered<TArg, TResult>(Func<TArg, TResult> function, IEnumerable<TArg> items, int chunkSize, CancellationToken cancellationToken);

    /// <summary>As the ImapUnordered above, to <c>await foreach</c>.</summary>
    IAsyncEnumerable<TResult> ImapUnorderedAsync<TArg, TResult>(Func<TArg, TResult> function, IEnumerable<TArg> items, int chunkSize = 0);

    /// <summary>Map for a function of 2 parameters: each item is a tuple of its arguments (Python's <c>starmap</c>).</summary>
    TResult[] Starmap<T1, T2, TResult>(Func<T1, T2, TResult> function, IEnumerable<(T1, T2)> items, int chunkSize = 0);

    /// <summary>As the Starmap above, until <paramref name="cancellationToken"/> is cancelled.</summary>
    TResult[] Starmap<T1, T2, TResult>(Func<T1, T2, TResult> function, IEnumerable<(T1, T2)> items, CancellationToken cancellationToken);

    /// <summary>As the Starmap above, in chunks of <paramref name="chunkSize"/> items, until <paramref name="cancellationToken"/> is cancelled.</summary>
    TResult[] Starmap<T1, T2, TResult>(Func<T1, T2, TResult> function, IEnumerable<(T1, T2)> items, int chunkSize, CancellationToken cancellationToken);

    /// <summary>As the Starmap above, without waiting.</summary>
    ShmAsyncResult<TResult[]> StarmapAsync<T1, T2, TResult>(Func<T1, T2, TResult> function, IEnumerable<(T1, T2)> items, int chunkSize = 0);

    /// <summary>Map for a function of 3 parameters: each item is a tuple of its arguments (Python's <c>starmap</c>).</summary>
    TResult[] Starmap<T1, T2, T3, TResult>(Func<T1, T2, T3, TResult> function, IEnumerable<(T1, T2, T3)> items, int chunkSize = 0);

    /// <summary>As the Starmap above, until <paramref name="cancellationToken"/> is cancelled.</summary>
    TResult[] Starmap<T1, T2, T3, TResult>(Func<T1, T2, T3, TResult> function, IEnumerable<(T1, T2, T3)> items, CancellationToken cancellationToken);

    /// <summary>As the Starmap above, in chunks of <paramref name="chunkSize"/> items, until <paramref name="cancellationToken"/> is cancelled.</summary>
    TResult[] Starmap<T1, T2, T3, TResult>(Func<T1, T2, T3, TResult> function, IEnumerable<(T1, T2, T3)> items, int chunkSize, CancellationToken cancellationToken);

    /// <summary>As the Starmap above, without waiting.</summary>
    ShmAsyncResult<TResult[]> StarmapAsync<T1, T2, T3, TResult>(Func<T1, T2, T3, TResult> function, IEnumerable<(T1, T2, T3)> items, int chunkSize = 0);

    /// <summary>Map for a function of 4 parameters: each item is a tuple of its arguments (Python's <c>starmap</c>).</summary>
    TResult[] Starmap<T1, T2, T3, T4, TResult>(Func<T1, T2, T3, T4, TResult> function, IEnumerable<(T1, T2, T3, T4)> items, int chunkSize = 0);

    /// <summary>As the Starmap above, until <paramref name="cancellationToken"/> is cancelled.</summary>
    TResult[] Starmap<T1, T2, T3, T4, TResult>(Func<T1, T2, T3, T4, TResult> function, IEnumerable<(T1, T2, T3, T4)> items, CancellationToken cancellationToken);

    /// <summary>As the Starmap above, in chunks of <paramref name="chunkSize"/> items, until <paramref name="cancellationToken"/> is cancelled.</summary>
    TResult[] Starmap<T1, T2, T3, T4, TResult>(Func<T1, T2, T3, T4, TResult> function, IEnumerable<(T1, T2, T3, T4)> items, int chunkSize, CancellationToken cancellationToken);

    /// <summary>As the Starmap above, without waiting.</summary>
    ShmAsyncResult<TResult[]> StarmapAsync<T1, T2, T3, T4, TResult>(Func<T1, T2, T3, T4, TResult> function, IEnumerable<(T1, T2, T3, T4)> items, int chunkSize = 0);

    /// <summary>Map for a function of 5 parameters: each item is a tuple of its arguments (Python's <c>starmap</c>).</summary>
    TResult[] Starmap<T1, T2, T3, T4, T5, TResult>(Func<T1, T2, T3, T4, T5, TResult> function, IEnumerable<(T1, T2, T3, T4, T5)> items, int chunkSize = 0);

    /// <summary>As the Starmap above, until <paramref name="cancellationToken"/> is cancelled.</summary>
    TResult[] Starmap<T1, T2, T3, T4, T5, TResult>(Func<T1, T2, T3, T4, T5, TResult> function, IEnumerable<(T1, T2, T3, T4, T5)> items, CancellationToken cancellationToken);

    /// <summary>As the Starmap above, in chunks of <paramref name="chunkSize"/> items, until <paramref name="cancellationToken"/> is cancelled.</summary>
    TResult[] Starmap<T1, T2, T3, T4, T5, TResult>(Func<T1, T2, T3, T4, T5, TResult> function, IEnumerable<(T1, T2, T3, T4, T5)> items, int chunkSize, CancellationToken cancellationToken);

    /// <summary>As the Starmap above, without waiting.</summary>
    ShmAsyncResult<TResult[]> StarmapAsync<T1, T2, T3, T4, T5, TResult>(Func<T1, T2, T3, T4, T5, TResult> function, IEnumerable<(T1, T2, T3, T4, T5)> items, int chunkSize = 0);

    /// <summary>Map for a function of 6 parameters: each item is a tuple of its arguments (Python's <c>starmap</c>).</summary>
    TResult[] Starmap<T1, T2, T3, T4, T5, T6, TResult>(Func<T1, T2, T3, T4, T5, T6, TResult> function, IEnumerable<(T1, T2, T3, T4, T5, T6)> items, int chunkSize = 0);

    /// <summary>As the Starmap above, until <paramref name="cancellationToken"/> is cancelled.</summary>
    TResult[] Starmap<T1, T2, T3, T4, T5, T6, TResult>(Func<T1, T2, T3, T4, T5, T6, TResult> function, IEnumerable<(T1, T2, T3, T4, T5, T6)> items, CancellationToken cancellationToken);

    /// <summary>As the Starmap above, in chunks of <paramref name="chunkSize"/> items, until <paramref name="cancellationToken"/> is cancelled.</summary>
    TResult[] Starmap<T1, T2, T3, T4, T5, T6, TResult>(Func<T1, T2, T3, T4, T5, T6, TResult> function, IEnumerable<(T1, T2, T3, T4, T5, T6)> items, int chunkSize, CancellationToken cancellationToken);

    /// <summary>As the Starmap above, without waiting.</summary>
    ShmAsyncResult<TResult[]> StarmapAsync<T1, T2, T3, T4, T5, T6, TResult>(Func<T1, T2, T3, T4, T5, T6, TResult> function, IEnumerable<(T1, T2, T3, T4, T5, T6)> items, int chunkSize = 0);

    /// <summary>Map for a function of 7 parameters: each item is a tuple of its arguments (Python's <c>starmap</c>).</summary>
    TResult[] Starmap<T1, T2, T3, T4, T5, T6, T7, TResult>(Func<T1, T2, T3, T4, T5, T6, T7, TResult> function, IEnumerable<(T1, T2, T3, T4, T5, T6, T7)> items, int chunkSize = 0);

    /// <summary>As the Starmap above, until <paramref name="cancellationToken"/> is cancelled.</summary>
    TResult[] Starmap<T1, T2, T3, T4, T5, T6, T7, TResult>(Func<T1, T2, T3, T4, T5, T6, T7, TResult> function, IEnumerable<(T1, T2, T3, T4, T5, T6, T7)> items, CancellationToken cancellationToken);

    /// <summary>As the Starmap above, in chunks of <paramref name="chunkSize"/> items, until <paramref name="cancellationToken"/> is cancelled.</summary>
    TResult[] Starmap<T1, T2, T3, T4, T5, T6, T7, TResult>(Func<T1, T2, T3, T4, T5, T6, T7, TResult> function, IEnumerable<(T1, T2, T3, T4, T5, T6, T7)> items, int chunkSize, CancellationToken cancellationToken);

    /// <summary>As the Starmap above, without waiting.</summary>
    ShmAsyncResult<TResult[]> StarmapAsync<T1, T2, T3, T4, T5, T6, T7, TResult>(Func<T1, T2, T3, T4, T5, T6, T7, TResult> function, IEnumerable<(T1, T2, T3, T4, T5, T6, T7)> items, int chunkSize = 0);

    /// <summary>Stops the pool taking work; what was submitted finishes. Then <see cref="Join(TimeSpan)"/>.</summary>
    void Close();

    /// <summary>Stops the pool at once: pending tasks fail, the pool's own workers are stopped.</summary>
    void Terminate();

    /// <summary>Waits up to <paramref name="timeout"/> for the pool to finish after <see cref="Close"/> or <see cref="Terminate"/>; false if it did not.</summary>
    bool Join(TimeSpan timeout);

    /// <summary>Waits for the pool to finish after <see cref="Close"/> or <see cref="Terminate"/>.</summary>
    Task JoinAsync(CancellationToken cancellationToken = default);
}
#pragma warning restore CA1716
