using System.Diagnostics;

namespace ShmIpc.Sync;

/// <summary>An async wait that did not complete at once: the poller asks it again until it does.</summary>
internal abstract class PendingWait
{
    protected PendingWait(CancellationToken cancellationToken) => CancellationToken = cancellationToken;

    public CancellationToken CancellationToken { get; }

    public TaskCompletionSource Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>
    /// One non-blocking attempt (take the lock, consume the count, see the event set). True when it succeeded.
    /// <paramref name="checkPeers"/> is true about once per sleep slice: the time to make the checks a sleeper
    /// makes before each slice (a dead lock holder). Throws to fault the wait.
    /// </summary>
    public abstract bool TryComplete(bool checkPeers);
}

/// <summary>
/// Serves every pending async wait of every shared-state object in this process with one background thread.
/// </summary>
/// <remarks>
/// Design: an async wait first tries once on the caller's thread (completing synchronously, without allocating, when it
/// can). Otherwise it becomes a <see cref="PendingWait"/> in one process-wide list; the poller thread re-tries each
/// pending wait every millisecond (so an async wait completes at most ~1 ms after it could) and runs the sleeper's
/// checks (peer liveness) every 100 ms. One thread for the whole process, never a thread or Task.Run per call; while
/// nothing is pending it blocks on an event. Completions run continuations asynchronously, off the poller thread.
/// Polling rather than sleeping on the named semaphores keeps the §4 protocol untouched: the poller never registers as a
/// sleeper, so it can never leave a registration or a post behind.
/// </remarks>
internal static class AsyncWaitPoller
{
    private static readonly Lock s_lock = new();
    private static readonly List<PendingWait> s_pending = [];
    private static readonly AutoResetEvent s_added = new(false);
    private static readonly long s_peerCheckInterval = Stopwatch.Frequency / 10;
    private static Thread? s_thread;

    public static Task Add(PendingWait wait)
    {
        lock (s_lock)
        {
            s_pending.Add(wait);
            if (s_thread is null)
            {
                s_thread = new Thread(Run) { IsBackground = true, Name = "ShmIpc async waits" };
                s_thread.Start();
            }
        }

        s_added.Set();
        return wait.Completion.Task;
    }

    private static void Run()
    {
        var batch = new List<PendingWait>();
        long lastPeerCheck = Stopwatch.GetTimestamp();
        while (true)
        {
            batch.Clear();
            lock (s_lock)
            {
                batch.AddRange(s_pending);
            }

            if (batch.Count == 0)
            {
                s_added.WaitOne();
                continue;
            }

            long now = Stopwatch.GetTimestamp();
            bool checkPeers = now - lastPeerCheck >= s_peerCheckInterval;
            if (checkPeers)
            {
                lastPeerCheck = now;
            }

            foreach (PendingWait wait in batch)
            {
                bool done = true;
                try
                {
                    if (wait.CancellationToken.IsCancellationRequested)
                    {
                        wait.Completion.TrySetCanceled(wait.CancellationToken);
                    }
                    else if (wait.TryComplete(checkPeers))
                    {
                        wait.Completion.TrySetResult();
                    }
                    else
                    {
                        done = false;
                    }
                }
                catch (Exception e)
                {
                    wait.Completion.TrySetException(e);
                }

                if (done)
                {
                    lock (s_lock)
                    {
                        s_pending.Remove(wait);
                    }
                }
            }

            s_added.WaitOne(1);
        }
    }
}
