using ShmIpc.Interop;

namespace ShmIpc.Signaling;

/// <summary>
/// The portable fallback: watches nothing (MaxWatched 0), so the engine polls every watched semaphore each <see cref="PollMs"/>;
/// this only sleeps on the kick semaphore. Costs one wake-up per millisecond per busy waiter thread and up to a millisecond of latency.
/// </summary>
internal sealed unsafe class PollingMultiSemaphoreWait : IMultiSemaphoreWait
{
    public const int PollMs = 1;

    public string Mechanism => "polling";

    public int MaxWatched => 0;

    public void BeginWatch(nint semaphore)
    {
    }

    public void EndWatch(nint semaphore)
    {
    }

    public bool MayHaveCount(nint semaphore) => true;

    public void Wait(nint kick, ReadOnlySpan<nint> semaphores, int timeoutMs)
    {
        // MaxWatched is 0, so the engine counts every semaphore as overflow and passes a PollMs timeout while any is watched.
        Libc.TimeSpec deadline = FutexMultiSemaphoreWait.MonotonicDeadline(timeoutMs < 0 ? 3_600_000 : timeoutMs);
        _ = Libc.SemClockWait((void*)kick, Libc.CLOCK_MONOTONIC, &deadline);
    }
}
