using System.Diagnostics;
using System.Runtime.CompilerServices;
using ShmIpc.Timing;

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
/// - The asymmetric form (<see cref="SleeperFence"/>, on segments marked for it): a registered publisher skips its fence
///   (<see cref="_publishWithoutFence"/>) and every waiter issues membarrier(GLOBAL_EXPEDITED) between its increment and
///   its re-check (<see cref="_sleeperBarrier"/>): the cost moves to the side that is about to sleep anyway.
/// - Every registration is settled exactly once: by consuming a post (woken), or, when the waiter does
///   not sleep or its slice runs out, by decrementing the count while it is positive, or if it is 0 (a
///   notifier took the registration) by consuming the post that notifier is making. So the semaphore's
///   count never exceeds the number of registered waiters: posts cannot pile up.
/// - Sleeping is in slices (<see cref="ShmWaitStrategy.SleepSlice"/>): a notifier that dies before it
///   posts costs a waiter at most one slice, and <see cref="IWaitCondition.BeforeSleep"/> gets to check
///   the health of peers regularly.
/// Cancellation is seen at the end of a slice (at most 20 ms for cancellable waits), never by a post.
/// </remarks>
internal sealed unsafe class WaitSignal
{
    private const int MaxPostsPerWake = 64;

    private readonly int* _sleepers;
    private readonly NamedSemaphore _semaphore;

    /// <summary>The segment is marked and this process is registered: Notify needs no fence (SleeperFence).</summary>
    private readonly bool _publishWithoutFence;

    /// <summary>The segment is marked: a registration is followed by membarrier(GLOBAL_EXPEDITED) (SleeperFence).</summary>
    private readonly bool _sleeperBarrier;

    /// <param name="sleepers">The sleeper count in shared memory.</param>
    /// <param name="semaphore">The semaphore sleepers sleep on.</param>
    /// <param name="asymmetricFence">The segment is marked for the asymmetric fence (LAYOUT.md §4, <see cref="SleeperFence"/>).</param>
    public WaitSignal(int* sleepers, NamedSemaphore semaphore, bool asymmetricFence = false)
    {
        _sleepers = sleepers;
        _semaphore = semaphore;
        _sleeperBarrier = asymmetricFence;
        _publishWithoutFence = asymmetricFence && SleeperFence.MayPublishWithoutFence;
    }

    /// <summary>Whether notifications on this signal skip the full fence (the asymmetric form of LAYOUT.md §4).</summary>
    public bool PublishesWithoutFence => _publishWithoutFence;

    public NamedSemaphore Semaphore => _semaphore;

    /// <summary>What the waits are for, in the <c>shmipc.waits.slept</c> metric ("queue", "pipe").</summary>
    public string MetricKind { get; init; } = "other";

    /// <summary>Call after publishing a change that waiters may be waiting for.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Notify()
    {
        // Full fence: our publishing store must be globally visible before we read the sleeper count
        // (pairs with the waiter's Interlocked.Increment in SleepOnce), unless the sleepers pay for it (SleeperFence).
        if (!_publishWithoutFence)
        {
            Interlocked.MemoryBarrier();
        }

        if (Volatile.Read(ref *_sleepers) != 0)
        {
            WakeSleepers();
        }
    }

    /// <summary>
    /// <see cref="Notify"/> for a publisher whose publishing store was itself a full-fence RMW (Interlocked.Exchange,
    /// Increment): that RMW already orders the store before this read of the sleeper count, so no second fence.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void NotifyFenced()
    {
        if (Volatile.Read(ref *_sleepers) != 0)
        {
            WakeSleepers();
        }
    }

    /// <summary>
    /// <see cref="Notify"/> for a change that one waiter can use (one message enqueued): takes one registration and posts
    /// once, instead of waking every sleeper to find one message. With 8 consumers asleep on 2 cores, waking all of them
    /// for each message cost the producer 8 futex wakes and the machine 7 useless context switches per message.
    /// </summary>
    /// <remarks>
    /// Design: each publication of a message wakes one registered sleeper, so k messages published while k sleepers are
    /// registered wake k of them; a woken sleeper that finds the message taken (a spinner won) registers again, and the
    /// message was consumed anyway: nothing is stranded. A registration left by a dead sleeper absorbs one wake (its post
    /// stays in the semaphore and lets the next sleeper return at once and re-check): a live sleeper is late by at most one
    /// sleep slice, once. A caller that publishes something many waiters need (shutdown, a skipped record with messages
    /// behind it, a consumer that leaves a message it could not take) uses <see cref="Notify"/>. Peers that always wake
    /// everyone (LAYOUT.md §4 allows both) stay compatible: both settle each registration exactly once.
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void NotifyOne()
    {
        // Full fence: as in Notify.
        if (!_publishWithoutFence)
        {
            Interlocked.MemoryBarrier();
        }

        if (Volatile.Read(ref *_sleepers) != 0)
        {
            WakeOneSleeper();
        }
    }

    /// <summary>Whether a waiter is registered (a plain read: a hint for passing a wake on, not a fence of the protocol).</summary>
    public bool HasSleepers => Volatile.Read(ref *_sleepers) > 0;

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void WakeOneSleeper()
    {
        int current = Volatile.Read(ref *_sleepers);
        while (current > 0)
        {
            int seen = Interlocked.CompareExchange(ref *_sleepers, current - 1, current);
            if (seen == current)
            {
                _semaphore.Post();
                return;
            }

            current = seen;
        }

        if (current < 0)
        {
            // Another process wrote a negative count: wake-all clamps it back to 0.
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

        if (deadline == Immediate)
        {
            cancellationToken.ThrowIfCancellationRequested();
            condition.BeforeSleep();
            return condition.IsSatisfied();
        }

        if (Spin(ref condition, strategy, deadline))
        {
            return true;
        }

        // A cancellable wait sleeps in short slices rather than being woken by a post: a post that no
        // registration asked for would stay in the shared semaphore and wake someone else for nothing.
        TimeSpan maxSlice = cancellationToken.CanBeCanceled && strategy.SleepSlice > s_cancellableSlice ? s_cancellableSlice : strategy.SleepSlice;
        Diagnostics.ShmMetrics.RecordSlept(MetricKind); // one wait that sleeps, however many slices it takes
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            condition.BeforeSleep();

            long now = Stopwatch.GetTimestamp();
            if (now >= deadline)
            {
                return condition.IsSatisfied();
            }

            TimeSpan slice = maxSlice;
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

    /// <summary>The longest sleep of a wait that can be cancelled: bounds how late a cancellation is seen.</summary>
    private static readonly TimeSpan s_cancellableSlice = TimeSpan.FromMilliseconds(20);

    /// <summary>After this much pure spinning, the spinner yields its core now and then (see <see cref="Spin"/>).</summary>
    private static readonly long s_yieldAfter = Stopwatch.Frequency / 500_000; // 2 us

    internal static bool Spin<TCondition>(ref TCondition condition, ShmWaitStrategy strategy, long deadline)
        where TCondition : struct, IWaitCondition
    {
        if (strategy.SpinDuration <= TimeSpan.Zero)
        {
            return false;
        }

        long start = Stopwatch.GetTimestamp();

        // More runnable threads than cores: spin about as long as a sleep and a wake cost, no longer (MachineLoad).
        TimeSpan budget = MachineLoad.SpinBudget(strategy.SpinDuration, start);
        long spinEnd = start + (long)(budget.Ticks * (Stopwatch.Frequency / (double)TimeSpan.TicksPerSecond));
        if (spinEnd > deadline)
        {
            spinEnd = deadline;
        }

        if (start >= spinEnd)
        {
            return false;
        }

        // Pure spinning for the first ~2 us (the peer is on another core: lowest latency); after that,
        // yield the core every 16 polls, so that a peer the scheduler put on the same core (2-core
        // machines, other load) gets to run instead of waiting for our whole spin budget.
        long yieldFrom = start + s_yieldAfter;
        int i = 0;
        while (true)
        {
            Thread.SpinWait(1);
            if (condition.IsSatisfied())
            {
                return true;
            }

            // Reading the clock costs more than a pause: look at it every 16 polls.
            if ((++i & 15) == 0)
            {
                long now = Stopwatch.GetTimestamp();
                if (now >= spinEnd)
                {
                    return false;
                }

                if (now >= yieldFrom)
                {
                    Thread.Yield();
                }
            }
        }
    }

    private bool SleepOnce<TCondition>(ref TCondition condition, TimeSpan slice)
        where TCondition : struct, IWaitCondition
    {
        // Register, then re-check (the increment is a full fence; pairs with Notify's fence, or on a marked segment the
        // membarrier stands in for the fence the publishers skip).
        Register();
        if (condition.IsSatisfied())
        {
            SettleRegistration();
            return true;
        }

        // A post consumed here settles our registration; a timeout leaves it to settle.
        if (!_semaphore.Wait(slice))
        {
            SettleRegistration();
        }

        return condition.IsSatisfied();
    }

    /// <summary>
    /// Every registration must end exactly one way: taken back (the count decremented while positive), or
    /// turned into a post by a notifier and that post consumed. Otherwise posts nobody waits for pile up in
    /// the semaphore and later sleepers return at once, spinning on syscalls. Taking back another waiter's
    /// registration is fine: the counts still match, and that waiter consumes the post meant for us.
    /// </summary>
    private void SettleRegistration()
    {
        if (TryTakeBackRegistration())
        {
            return;
        }

        // A notifier took our registration: its post is due (microseconds). Consume it. A notifier that
        // died between its exchange and its post leaves nothing: give up after a short while.
        _semaphore.Wait(s_settleTimeout);
    }

    /// <summary>
    /// Registers one sleeper (a full fence: pairs with <see cref="Notify"/>'s fence). The caller must re-check its condition
    /// afterwards and settle the registration exactly once (see <see cref="SettleRegistration"/>): the async waiter threads
    /// (ShmIpc.Async) use this half of the protocol and sleep on the semaphore themselves.
    /// </summary>
    public void Register()
    {
        Interlocked.Increment(ref *_sleepers);
        if (_sleeperBarrier)
        {
            SleeperFence.BarrierForSleeper();
        }
    }

    /// <summary>
    /// The non-blocking half of settling a registration: true when it was taken back (the count decremented while
    /// positive); false when a notifier took it, so its post is due and must be consumed by whoever registered.
    /// </summary>
    public bool TryTakeBackRegistration()
    {
        int current = Volatile.Read(ref *_sleepers);
        while (current > 0)
        {
            int seen = Interlocked.CompareExchange(ref *_sleepers, current - 1, current);
            if (seen == current)
            {
                return true;
            }

            current = seen;
        }

        return false;
    }

    /// <summary>How long a registration taken by a notifier waits for that notifier's post before giving up (it died between).</summary>
    public static TimeSpan SettleTimeout => s_settleTimeout;

    private static readonly TimeSpan s_settleTimeout = TimeSpan.FromMilliseconds(10);

    /// <summary>The deadline of a zero timeout (<see cref="Deadline.Immediate"/>).</summary>
    public const long Immediate = Deadline.Immediate;

    /// <summary>A deadline timestamp for a timeout (<see cref="Deadline.From"/>).</summary>
    public static long DeadlineFrom(TimeSpan timeout) => Deadline.From(timeout);
}
