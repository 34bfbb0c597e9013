using System.Runtime.InteropServices;
using ShmIpc.Interop;
using ShmIpc.Signaling;

namespace ShmIpc.Async;

/// <summary>
/// One waiter thread of <see cref="AsyncWaitEngine"/>: sleeps on the semaphores of the queues attached to it (and on its
/// own private "kick" semaphore), and serves the queues whose semaphore was posted, that were kicked (new call,
/// cancellation, disposal), or whose peers are due a liveness check.
/// </summary>
/// <remarks>
/// Design:
/// - Only this thread touches its <c>_watched</c> list and the queues' registration state; other threads hand queues over
///   through <c>_inbox</c> (under its lock) and wake it by posting the kick semaphore, at most once per pass
///   (<c>_kickPending</c>: reset before the inbox is read, so a kick after that reset always posts and a kick before it is
///   seen by the read).
/// - A pass: drain the kick, take the inbox, then for each queue: if it is registered and its semaphore may have a count,
///   try to take one post (sem_trywait; a post taken settles the registration); serve the queue when a post was taken,
///   it is dirty, or peers are due (every <see cref="PeerCheckMs"/>); drop it when it detached. Then consume or give up
///   owed posts, and sleep: until the next peer check, or 1 ms when a queue asked for a retry or some semaphores are not
///   in the sleep set (more than <see cref="IMultiSemaphoreWait.MaxWatched"/>; the set rotates between passes).
/// - Measured (bench "async", 2-core VM, both processes awaiting): 8 B awaited round trip median 30.6 us with
///   futex_waitv against 1.23 ms with the 1 ms polling fallback (same code, the fallback chosen), which also costs a
///   wake-up per millisecond per thread while anything is pending. Each leg is a futex wake of the waiter thread plus the
///   thread-pool hop of the continuation (the synchronous spinning round trip is 0.24 us, a Channel ping-pong 0.67 us).
///   That is why the sleep is futex_waitv, with polling only as the fallback where the self-test fails. Since then the
///   callers spin adaptively before going pending (see <see cref="AsyncWaitQueue"/>): a ping-pong of awaited calls no
///   longer reaches this thread at all (0.8-1.5 us); the 30-50 us above is what a leg costs when the answer takes longer
///   than the caller's spin (probe: futex post to this thread's wake 8-15 us, wake to completion ~1 us, completion to the
///   continuation on the thread pool 6-12 us).
/// </remarks>
internal sealed unsafe class AsyncWaiterThread
{
    /// <summary>How often pending calls make the sleeper's checks (a dead peer, a dead lock holder).</summary>
    public const int PeerCheckMs = 100;

    private const int RetryMs = 1;

    private readonly IMultiSemaphoreWait _wait;
    private readonly Lock _inboxLock = new();
    private readonly List<AsyncWaitQueue> _inbox = [];
    private readonly List<AsyncWaitQueue> _watched = [];
    private readonly List<(nint Address, NamedSemaphore Semaphore, long Deadline)> _owed = [];
    private readonly nint _kick;
    private int _kickPending;
    private int _rotation;

    public AsyncWaiterThread(IMultiSemaphoreWait wait, int index)
    {
        _wait = wait;
        _kick = (nint)NativeMemory.AlignedAlloc(64, 64);
        if (Libc.SemInit((void*)_kick, 0, 0) != 0)
        {
            throw new IOException($"Cannot create the kick semaphore of an async waiter thread: errno {Marshal.GetLastPInvokeError()}.");
        }

        // The kick is watched for the thread's whole life: every post of it makes a futex wake.
        _wait.BeginWatch(_kick);
        var thread = new Thread(Run) { IsBackground = true, Name = $"ShmIpc async {index}" };
        thread.UnsafeStart();
    }

    /// <summary>Queues attached (under <see cref="AsyncWaitEngine"/>'s lock).</summary>
    internal int Load { get; set; }

    public void Enqueue(AsyncWaitQueue queue)
    {
        lock (_inboxLock)
        {
            _inbox.Add(queue);
        }

        Kick();
    }

    public void Kick()
    {
        if (Interlocked.Exchange(ref _kickPending, 1) == 0)
        {
            _ = Libc.SemPost((void*)_kick);
        }
    }

    /// <summary>A detaching queue's registration was taken by a notifier: consume that post when it comes (bounded).</summary>
    internal void AddOwedPost(nint address, NamedSemaphore semaphore) =>
        _owed.Add((address, semaphore, Environment.TickCount64 + (long)WaitSignal.SettleTimeout.TotalMilliseconds));

    private void Run()
    {
        nint[] sleepSet = new nint[Math.Max(1, _wait.MaxWatched)];
        long nextPeerCheck = Environment.TickCount64 + PeerCheckMs;
        while (true)
        {
            Volatile.Write(ref _kickPending, 0);
            while (Libc.SemTryWait((void*)_kick) == 0)
            {
            }

            lock (_inboxLock)
            {
                foreach (AsyncWaitQueue queue in _inbox)
                {
                    queue.OnAttached(this, _wait);
                    _watched.Add(queue);
                }

                _inbox.Clear();
            }

            long now = Environment.TickCount64;
            bool checkPeers = now >= nextPeerCheck;
            if (checkPeers)
            {
                nextPeerCheck = now + PeerCheckMs;
            }

            bool retry = ServeAll(checkPeers);
            SettleOwed(now);

            int count = FillSleepSet(sleepSet, out bool overflow);
            int timeout = retry || overflow ? RetryMs
                : _watched.Count > 0 ? (int)Math.Clamp(nextPeerCheck - Environment.TickCount64, 1, PeerCheckMs)
                : _owed.Count > 0 ? RetryMs
                : -1;
            _wait.Wait(_kick, sleepSet.AsSpan(0, count), timeout);
        }
    }

    private bool ServeAll(bool checkPeers)
    {
        bool retry = false;
        for (int i = _watched.Count - 1; i >= 0; i--)
        {
            AsyncWaitQueue queue = _watched[i];
            bool posted = false;
            if (queue.IsRegistered && _wait.MayHaveCount(queue.SemaphoreAddress) && Libc.SemTryWait((void*)queue.SemaphoreAddress) == 0)
            {
                queue.OnPostConsumed();
                posted = true;
            }

            if (posted || checkPeers || queue.IsDirty || !queue.IsRegistered)
            {
                bool attached;
                try
                {
                    attached = queue.Service(this, _wait, checkPeers);
                }
#pragma warning disable CA1031 // Service stages every error into the operations; anything else must not end the thread of every pending call.
                catch (Exception)
#pragma warning restore CA1031
                {
                    attached = true;
                    retry = true;
                }

                if (!attached)
                {
                    _watched[i] = _watched[^1];
                    _watched.RemoveAt(_watched.Count - 1);
                    AsyncWaitEngine.Detached(this);
                    continue;
                }
            }

            retry |= queue.IsDirty;
        }

        return retry;
    }

    private void SettleOwed(long now)
    {
        for (int i = _owed.Count - 1; i >= 0; i--)
        {
            (nint address, NamedSemaphore semaphore, long deadline) = _owed[i];
            bool consumed = _wait.MayHaveCount(address) && Libc.SemTryWait((void*)address) == 0;
            if (consumed || now >= deadline)
            {
                _wait.EndWatch(address);
                semaphore.ReleaseAddress();
                _owed[i] = _owed[^1];
                _owed.RemoveAt(_owed.Count - 1);
            }
        }
    }

    /// <summary>The semaphores to sleep on: owed posts first, then registered queues from a rotating start.</summary>
    private int FillSleepSet(nint[] set, out bool overflow)
    {
        int capacity = _wait.MaxWatched;
        int count = 0;
        int total = _owed.Count;
        foreach ((nint address, _, _) in _owed)
        {
            if (count < capacity)
            {
                set[count++] = address;
            }
        }

        int n = _watched.Count;
        int start = n == 0 ? 0 : _rotation % n;
        for (int k = 0; k < n; k++)
        {
            AsyncWaitQueue queue = _watched[(start + k) % n];
            if (!queue.IsRegistered)
            {
                continue;
            }

            total++;
            if (count < capacity)
            {
                set[count++] = queue.SemaphoreAddress;
            }
        }

        overflow = total > capacity;
        if (overflow)
        {
            _rotation += capacity;
        }

        return count;
    }
}
