using ShmIpc.Signaling;

namespace ShmIpc.Async;

/// <summary>
/// The process's async waiter threads: every pending async call of every ShmIpc object waits here, never on a thread of
/// its own. Threads start lazily, one per <see cref="IMultiSemaphoreWait.MaxWatched"/> attached queues, up to
/// <see cref="MaxThreads"/>; an idle thread blocks (no timer).
/// </summary>
/// <remarks>
/// Design: an <see cref="AsyncWaitQueue"/> that gets its first pending call is attached to the least loaded thread; a new
/// thread starts only when every thread already watches as many semaphores as one futex_waitv can take (127). Past
/// <see cref="MaxThreads"/> threads, queues still go to the least loaded thread, which then sleeps on 127 of its
/// semaphores at a time (rotating) with a 1 ms timeout and checks the others' values after every wake: a plain read per
/// semaphore, so an overflowed semaphore is seen within about a millisecond (bench "async": 1,000 pending receives on
/// 2 cores, 2 threads, all 1,000 completed 16 ms after the first send). Choosing futex_waitv over the former 1 ms
/// polling: see <see cref="AsyncWaiterThread"/>.
/// </remarks>
internal static class AsyncWaitEngine
{
    private static readonly Lock s_lock = new();
    private static readonly List<AsyncWaiterThread> s_threads = [];

    /// <summary>The most waiter threads this process starts: one per core, at least two.</summary>
    public static int MaxThreads { get; } = Math.Max(2, Environment.ProcessorCount);

    /// <summary>How many waiter threads run now (tests and the bench).</summary>
    public static int ThreadCount
    {
        get
        {
            lock (s_lock)
            {
                return s_threads.Count;
            }
        }
    }

    /// <summary>The sleeping mechanism chosen for this process.</summary>
    public static string Mechanism => MultiSemaphoreWait.Instance.Mechanism;

    public static void Attach(AsyncWaitQueue queue)
    {
        IMultiSemaphoreWait wait = MultiSemaphoreWait.Instance;
        AsyncWaiterThread? chosen = null;
        lock (s_lock)
        {
            foreach (AsyncWaiterThread thread in s_threads)
            {
                if (chosen is null || thread.Load < chosen.Load)
                {
                    chosen = thread;
                }
            }

            if (chosen is null || (chosen.Load >= Math.Max(1, wait.MaxWatched) && s_threads.Count < MaxThreads))
            {
                chosen = new AsyncWaiterThread(wait, s_threads.Count);
                s_threads.Add(chosen);
            }

            chosen.Load++;
        }

        chosen.Enqueue(queue);
    }

    /// <summary>Called by a thread when it dropped a queue.</summary>
    internal static void Detached(AsyncWaiterThread thread)
    {
        lock (s_lock)
        {
            thread.Load--;
        }
    }
}
