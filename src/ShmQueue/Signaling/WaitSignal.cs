using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace ShmIpc.Signaling;

/// <summary>
/// What a waiter waits for. <see cref="IsSatisfied"/> is polled (cheap: a few shared-memory reads,
/// no syscall); <see cref="BeforeSleep"/> runs before each sleep slice and may throw (the object was
/// disposed, the peer is gone) or repair shared state (skip a dead producer's record).
/// </summary>
internal interface IWaitCondition
{
    bool IsSatisfied();

    void BeforeSleep();
}

/// <summary>
/// One "something changed" signal shared by processes: a count of sleepers in shared memory plus a
/// named semaphore. Notifiers post only when somebody sleeps, so the hot path has no syscall.
/// </summary>
/// <remarks>
/// Design:
/// - <c>sleepers</c> (int32 in shared memory) counts registrations of waiters about to sleep or asleep.
///   A waiter registers with an atomic increment; a notifier takes all registrations at once with an
///   atomic exchange to 0 and posts the semaphore once for each (capped), so every registered sleeper
///   gets one post and the count cannot stick above 0 when a registered waiter died.
/// - No lost wakeup: the waiter does increment (a full fence) then re-checks the condition; the
///   notifier publishes, does a full fence, then reads <c>sleepers</c>. Either the notifier sees the
///   registration (and posts), or the waiter's re-check sees the publication. Both fences are needed:
///   without them the store of one side and the load of the other may pass each other (store-load
///   reordering is allowed even on x86).
/// - A waiter whose slice ran out removes its own registration if any is left (decrement while
///   positive). It may remove another waiter's instead; that waiter then learns of the change at the
///   end of its own slice at the latest. Stale posts only cause spurious wakeups, which re-check.
/// - Sleeping is in slices (<see cref="ShmWaitStrategy.SleepSlice"/>): a notifier that dies before it
///   posts costs a waiter at most one slice, and <see cref="IWaitCondition.BeforeSleep"/> gets to check
///   the health of peers regularly.
/// The semaphore's count stays bounded: at most one post per registration, plus a cap per wake.
/// </remarks>
internal sealed unsafe class WaitSignal
{
    private const int MaxPostsPerWake = 64;

    private readonly int* _sleepers;
    private readonly NamedSemaphore _semaphore;

    public WaitSignal(int* sleepers, NamedSemaphore semaphore)
    {
        _sleepers = sleepers;
        _semaphore = semaphore;
    }

    public NamedSemaphore Semaphore => _semaphore;

    /// <summary>Call after publishing a change that waiters may be waiting for.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Notify()
    {
        // Full fence: our publishing store must be globally visible before we read the sleeper count
        // (pairs with the waiter's Interlocked.Increment in SleepOnce).
        Interlocked.MemoryBarrier();
        if (Volatile.Read(ref *_sleepers) != 0)
        {
            WakeSleepers();
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void WakeSleepers()
    {
        int registered = Interlocked.Exchange(ref *_sleepers, 0);

        // Another process can write anything here: a negative or huge count is clamped.
        int posts = Math.Clamp(registered, 0, MaxPostsPerWake);
        for (int i = 0; i < posts; i++)
        {
            _semaphore.Post();
        }
    }

    /// <summary>Wakes every local waiter early (dispose, cancellation): they re-check and see why.</summary>
    public void PostOnce() => _semaphore.Post();

    /// <summary>
    /// Waits until <paramref name="condition"/> holds (true) or the deadline passes (false).
    /// <paramref name="deadline"/> is a <see cref="Stopwatch"/> timestamp; <see cref="long.MaxValue"/> waits forever.
    /// </summary>
    public bool Wait<TCondition>(ref TCondition condition, ShmWaitStrategy strategy, long deadline, CancellationToken cancellationToken)
        where TCondition : struct, IWaitCondition
    {
        if (condition.IsSatisfied())
        {
            return true;
        }

        if (Spin(ref condition, strategy, deadline))
        {
            return true;
        }

        CancellationTokenRegistration registration = default;
        if (cancellationToken.CanBeCanceled)
        {
            // Wakes a sleeper of this semaphore so a cancelled wait ends at once rather than at the slice's end.
            registration = cancellationToken.UnsafeRegister(static s => ((NamedSemaphore)s!).Post(), _semaphore);
        }

        try
        {
            while (true)
            {
                cancellationToken.ThrowIfCancellationRequested();
                condition.BeforeSleep();

                long now = Stopwatch.GetTimestamp();
                if (now >= deadline)
                {
                    return condition.IsSatisfied();
                }

                TimeSpan slice = strategy.SleepSlice;
                if (deadline != long.MaxValue)
                {
                    TimeSpan remaining = Stopwatch.GetElapsedTime(now, deadline);
                    if (remaining < slice)
                    {
                        slice = remaining;
                    }
                }

                if (SleepOnce(ref condition, slice))
                {
                    return true;
                }
            }
        }
        finally
        {
            registration.Dispose();
        }
    }

    private static bool Spin<TCondition>(ref TCondition condition, ShmWaitStrategy strategy, long deadline)
        where TCondition : struct, IWaitCondition
    {
        if (strategy.SpinDuration <= TimeSpan.Zero)
        {
            return false;
        }

        long spinEnd = Stopwatch.GetTimestamp() + (long)(strategy.SpinDuration.Ticks * (Stopwatch.Frequency / (double)TimeSpan.TicksPerSecond));
        if (spinEnd > deadline)
        {
            spinEnd = deadline;
        }

        int i = 0;
        while (true)
        {
            Thread.SpinWait(1);
            if (condition.IsSatisfied())
            {
                return true;
            }

            // Reading the clock costs more than a pause: look at it every 16 polls.
            if ((++i & 15) == 0 && Stopwatch.GetTimestamp() >= spinEnd)
            {
                return false;
            }
        }
    }

    private bool SleepOnce<TCondition>(ref TCondition condition, TimeSpan slice)
        where TCondition : struct, IWaitCondition
    {
        // Register, then re-check (the increment is a full fence; pairs with Notify's fence).
        Interlocked.Increment(ref *_sleepers);
        if (condition.IsSatisfied())
        {
            Unregister();
            return true;
        }

        if (!_semaphore.Wait(slice))
        {
            // Timed out: nobody took our registration (or someone took it just now: then the
            // decrement below finds 0 or removes a fresh one; see the class remarks).
            Unregister();
        }

        return condition.IsSatisfied();
    }

    private void Unregister()
    {
        int current = Volatile.Read(ref *_sleepers);
        while (current > 0)
        {
            int seen = Interlocked.CompareExchange(ref *_sleepers, current - 1, current);
            if (seen == current)
            {
                return;
            }

            current = seen;
        }
    }

    /// <summary>A deadline timestamp for a timeout; infinite (-1 ms) maps to <see cref="long.MaxValue"/>.</summary>
    public static long DeadlineFrom(TimeSpan timeout)
    {
        if (timeout == Timeout.InfiniteTimeSpan)
        {
            return long.MaxValue;
        }

        if (timeout < TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(timeout), timeout, "The timeout must be non-negative or Timeout.InfiniteTimeSpan.");
        }

        long ticks = (long)(timeout.Ticks * (Stopwatch.Frequency / (double)TimeSpan.TicksPerSecond));
        long now = Stopwatch.GetTimestamp();
        return ticks >= long.MaxValue - now ? long.MaxValue : now + ticks;
    }
}
