namespace ShmIpc.Signaling;

/// <summary>
/// The platform seam of the async waiter threads (<see cref="ShmIpc.Async.AsyncWaitEngine"/>): sleep until any of many
/// semaphores (<c>sem_t*</c> addresses) may have a count, or the thread's own kick semaphore is posted, or a timeout.
/// Consuming a post is always the caller's <c>sem_trywait</c>; this interface only decides how to sleep.
/// </summary>
internal interface IMultiSemaphoreWait
{
    /// <summary>A short name for diagnostics and the bench ("futex_waitv", "polling").</summary>
    string Mechanism { get; }

    /// <summary>How many semaphores one <see cref="Wait"/> sleeps on (besides the kick); more are polled by the caller.</summary>
    int MaxWatched { get; }

    /// <summary>This thread is about to sleep on <paramref name="semaphore"/> (until <see cref="EndWatch"/>): posts must wake it.</summary>
    void BeginWatch(nint semaphore);

    /// <summary>Ends one <see cref="BeginWatch"/>.</summary>
    void EndWatch(nint semaphore);

    /// <summary>False only when <paramref name="semaphore"/> certainly has no count (a plain read); true means "try to take one".</summary>
    bool MayHaveCount(nint semaphore);

    /// <summary>
    /// Sleeps until <paramref name="kick"/> or one of <paramref name="semaphores"/> (at most <see cref="MaxWatched"/>) may
    /// have a count, or <paramref name="timeoutMs"/> passes (-1: no timeout). May return early (a signal, a race): the
    /// caller re-checks everything after every return.
    /// </summary>
    void Wait(nint kick, ReadOnlySpan<nint> semaphores, int timeoutMs);
}

/// <summary>Picks the <see cref="IMultiSemaphoreWait"/> of this process once: futex_waitv where its self-test passes, else polling.</summary>
internal static class MultiSemaphoreWait
{
    private static IMultiSemaphoreWait? s_instance;

    /// <summary>Why the futex mechanism was not chosen (null when it was).</summary>
    public static string? FallbackReason { get; private set; }

    public static IMultiSemaphoreWait Instance => s_instance ?? Choose();

    private static IMultiSemaphoreWait Choose()
    {
        // Forcing the fallback (tests of the portable path, or a kernel where futex_waitv misbehaves).
        string? forced = Environment.GetEnvironmentVariable("SHMIPC_ASYNC_WAIT");
        IMultiSemaphoreWait chosen;
        if (string.Equals(forced, "polling", StringComparison.OrdinalIgnoreCase))
        {
            FallbackReason = "SHMIPC_ASYNC_WAIT=polling";
            chosen = new PollingMultiSemaphoreWait();
        }
        else if (FutexMultiSemaphoreWait.SelfTest() is string reason)
        {
            FallbackReason = reason;
            chosen = new PollingMultiSemaphoreWait();
        }
        else
        {
            chosen = new FutexMultiSemaphoreWait();
        }

        return Interlocked.CompareExchange(ref s_instance, chosen, null) ?? chosen;
    }
}
