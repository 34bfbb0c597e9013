using System.Diagnostics;
using ShmIpc.Signaling;

namespace ShmIpc;

/// <summary>
/// Waits for the first of several queues, pipe ends and processes to become ready, as
/// <see cref="WaitHandle.WaitAny(WaitHandle[], TimeSpan)"/> does for wait handles and Python's
/// <c>multiprocessing.connection.wait</c> for connections and process sentinels.
/// </summary>
/// <remarks>
/// <para>What "ready" means for each kind is on <see cref="IShmWaitable"/>. Nothing is consumed: call the
/// object's own receive, dequeue or join afterwards.</para>
/// <para>How it waits: the objects sleep on different semaphores (a queue's, a pipe ring's) or none (a process),
/// so a wait over several of them polls. It looks at every object, spins for about 50 µs, then yields the core
/// for a while, then sleeps 1 ms between looks. A wait that lasts costs about a thousand looks a second;
/// an object that becomes ready is noticed within about a millisecond (within microseconds while spinning).
/// Waiting on one object alone is better done with that object's own blocking call, which sleeps on its
/// semaphore and wakes at once.</para>
/// <para>For the duration of a wait, a pipe end's receive guard is held: another thread's receive on that end
/// fails with <see cref="InvalidOperationException"/>, as it would during a receive.</para>
/// </remarks>
public static class ShmWait
{
    /// <summary>How long a wait spins (polls without giving up the core) before it starts yielding.</summary>
    private static readonly long s_spinTicks = Stopwatch.Frequency / 20_000; // 50 µs

    /// <summary>How long it then yields between looks, before it sleeps 1 ms between them.</summary>
    private static readonly long s_yieldTicks = Stopwatch.Frequency / 2_000; // 500 µs

    /// <summary>
    /// Waits up to <paramref name="timeout"/> until one of <paramref name="items"/> is ready, and returns the index
    /// of a ready one (the lowest, when several are); -1 when the time ran out.
    /// </summary>
    /// <param name="items">Queues, typed queues, pipe ends (that receive) and processes, each at most once.</param>
    /// <param name="timeout">How long to wait: <see cref="TimeSpan.Zero"/> looks once, <see cref="Timeout.InfiniteTimeSpan"/> waits for ever.</param>
    /// <exception cref="ArgumentException">The list is empty, or holds null, an object twice, or a pipe end that only sends.</exception>
    /// <exception cref="ArgumentOutOfRangeException">The timeout is negative (and not infinite).</exception>
    /// <exception cref="ObjectDisposedException">One of the objects is disposed (also by another thread during the wait).</exception>
    /// <exception cref="InvalidOperationException">Another thread is receiving on one of the pipe ends.</exception>
    public static int WaitAny(IReadOnlyList<IShmWaitable> items, TimeSpan timeout) => WaitAny(items, timeout, CancellationToken.None);

    /// <summary>Waits until one of <paramref name="items"/> is ready, or <paramref name="cancellationToken"/> is cancelled; returns its index.</summary>
    /// <exception cref="OperationCanceledException">Cancelled first.</exception>
    /// <inheritdoc cref="WaitAny(IReadOnlyList{IShmWaitable}, TimeSpan)" path="/exception"/>
    public static int WaitAny(IReadOnlyList<IShmWaitable> items, CancellationToken cancellationToken) =>
        WaitAny(items, Timeout.InfiniteTimeSpan, cancellationToken);

    /// <summary>
    /// Waits up to <paramref name="timeout"/> until one of <paramref name="items"/> is ready, or
    /// <paramref name="cancellationToken"/> is cancelled; returns its index, or -1 when the time ran out.
    /// </summary>
    /// <exception cref="OperationCanceledException">Cancelled first (noticed within about a millisecond).</exception>
    /// <inheritdoc cref="WaitAny(IReadOnlyList{IShmWaitable}, TimeSpan)" path="/param"/>
    /// <inheritdoc cref="WaitAny(IReadOnlyList{IShmWaitable}, TimeSpan)" path="/exception"/>
    public static int WaitAny(IReadOnlyList<IShmWaitable> items, TimeSpan timeout, CancellationToken cancellationToken) =>
        PollBegun(items, timeout, static (_, first) => first, cancellationToken);

    /// <summary>
    /// Waits up to <paramref name="timeout"/> until at least one of <paramref name="items"/> is ready, and returns
    /// every one that is (in the order given); an empty list when the time ran out. Python's
    /// <c>multiprocessing.connection.wait(object_list, timeout)</c>.
    /// </summary>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled first.</exception>
    /// <inheritdoc cref="WaitAny(IReadOnlyList{IShmWaitable}, TimeSpan)" path="/param"/>
    /// <inheritdoc cref="WaitAny(IReadOnlyList{IShmWaitable}, TimeSpan)" path="/exception"/>
    public static IReadOnlyList<IShmWaitable> WaitReady(IReadOnlyList<IShmWaitable> items, TimeSpan timeout, CancellationToken cancellationToken = default) =>
        PollBegun<IReadOnlyList<IShmWaitable>>(items, timeout, static (items, first) =>
        {
            if (first < 0)
            {
                return [];
            }

            var ready = new List<IShmWaitable> { items[first] };
            for (int i = first + 1; i < items.Count; i++)
            {
                if (items[i].PollReady())
                {
                    ready.Add(items[i]);
                }
            }

            return ready;
        }, cancellationToken);

    /// <summary>
    /// Validates, begins the wait on every item, polls until one is ready or the deadline passes, gives <paramref name="then"/>
    /// the first ready index (-1: none) while the waits are still begun (so it may poll the others), and ends every wait begun.
    /// </summary>
    private static T PollBegun<T>(IReadOnlyList<IShmWaitable> items, TimeSpan timeout, Func<IReadOnlyList<IShmWaitable>, int, T> then, CancellationToken cancellationToken)
    {
        Validate(items);
        long deadline = WaitSignal.DeadlineFrom(timeout);
        cancellationToken.ThrowIfCancellationRequested();
        int entered = 0;
        try
        {
            for (; entered < items.Count; entered++)
            {
                items[entered].BeginWait();
            }

            return then(items, Poll(items, deadline, cancellationToken));
        }
        finally
        {
            for (int i = 0; i < entered; i++)
            {
                items[i].EndWait();
            }
        }
    }

    private static void Validate(IReadOnlyList<IShmWaitable> items)
    {
        ArgumentNullException.ThrowIfNull(items);
        if (items.Count == 0)
        {
            throw new ArgumentException("There is nothing to wait for: the list is empty.", nameof(items));
        }

        for (int i = 0; i < items.Count; i++)
        {
            IShmWaitable item = items[i] ?? throw new ArgumentException($"Item {i} is null.", nameof(items));
            for (int j = 0; j < i; j++)
            {
                if (ReferenceEquals(items[j], item))
                {
                    throw new ArgumentException($"Item {i} is item {j} again; each object may appear once.", nameof(items));
                }
            }
        }
    }

    /// <summary>Looks at every item until one is ready (its index), the deadline passes (-1) or the token is cancelled.</summary>
    private static int Poll(IReadOnlyList<IShmWaitable> items, long deadline, CancellationToken cancellationToken)
    {
        long start = 0;
        for (int round = 0; ; round++)
        {
            for (int i = 0; i < items.Count; i++)
            {
                if (items[i].PollReady())
                {
                    return i;
                }
            }

            cancellationToken.ThrowIfCancellationRequested();
            if (deadline == WaitSignal.Immediate)
            {
                return -1;
            }

            long now = Stopwatch.GetTimestamp();
            if (now >= deadline)
            {
                return -1;
            }

            if (round == 0)
            {
                start = now;
            }

            long waited = now - start;
            if (waited < s_spinTicks)
            {
                Thread.SpinWait(20);
            }
            else if (waited < s_spinTicks + s_yieldTicks)
            {
                Thread.Yield();
            }
            else if (cancellationToken.CanBeCanceled)
            {
                // Ends at once when the token is cancelled.
                cancellationToken.WaitHandle.WaitOne(1);
            }
            else
            {
                Thread.Sleep(1);
            }
        }
    }
}
