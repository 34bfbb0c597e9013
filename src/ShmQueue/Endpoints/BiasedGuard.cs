using System.Runtime.CompilerServices;

namespace ShmIpc.Endpoints;

/// <summary>
/// The exclusive guard of one direction (sending or receiving) of a pipe end within this process: one thread at a time
/// is inside. Biased to the thread that keeps using it: that thread enters and leaves with plain stores and loads (no
/// locked instruction), any other thread takes a CAS lock, and moving the bias away from a thread costs one
/// process-wide barrier. A mutable struct, held as a field of its owner (never copied).
/// </summary>
/// <remarks>
/// Design (process-local memory only; the peer process never sees these words):
/// - Words. <c>_lock</c> (0/1, CAS) is held by a thread that is inside without the bias, and by a thread that is
///   taking the bias away. <c>_bias</c> is the biased thread's token (its managed thread id and its own <c>Inside</c>
///   flag) or null; it changes only while <c>_lock</c> is held (as does <c>_revoked</c>, the token being taken away).
///   <c>Inside</c> of a token is written only by that token's thread. <c>_enteredBiased</c> tells the holder how it
///   entered (written by the holder).
/// - Invariant: at most one thread is inside, that is: either <c>_lock</c> is held by a thread that is inside (and no
///   token has <c>Inside</c> = 1 with a completed fast entry), or the thread of <c>_bias</c> is inside with
///   <c>Inside</c> = 1 and <c>_lock</c> is free or held by a thread waiting for that <c>Inside</c> to drop to 0.
/// - Fast entry (the biased thread): reads <c>_bias</c>, sees its own token with <c>Inside</c> = 0 (1 would be a
///   re-entry from the same thread: the slow path reports or waits, as for any busy guard), stores <c>Inside</c> = 1,
///   then re-reads <c>_bias</c>: still its token, it is in; otherwise it stores 0 again and takes the slow path.
/// - Revocation (any other thread, or the biased one after a revocation it did not see): CAS <c>_lock</c> 0 -> 1,
///   store <c>_bias</c> = null, <see cref="Interlocked.MemoryBarrierProcessWide"/>, then wait until the old token's
///   <c>Inside</c> is 0. Why this excludes the biased thread without a fence on its side: the process-wide barrier runs
///   a full fence on every thread of the process at some point of its instruction stream. If that point lies after the
///   biased thread's store of <c>Inside</c> = 1, the store is visible to the revoker's later load (it waits); if it lies
///   before that store, the biased thread's re-read of <c>_bias</c> comes after the fence and so after the revoker's
///   store of null (it backs out). The loads and stores of the fast path are Volatile (the JIT keeps them in program
///   order); the hardware's store-load reordering is what the barrier covers. A revoker that gives up (deadline,
///   cancellation, the end stopped) puts the old token back before it lets go of <c>_lock</c>: the thread may still be
///   inside, and must still be seen as holding the guard.
/// - Becoming biased: a thread that took <c>_lock</c> <see cref="BiasAfter"/> times in a row (no other thread between)
///   gets a new token with <c>Inside</c> = 1, published in <c>_bias</c> while it still holds <c>_lock</c>, then lets go
///   of <c>_lock</c>: it is inside through the bias from then on. Threads that alternate (async continuations on pool
///   threads, a waiter thread) stay on the CAS path and never pay the barrier more than once per BiasAfter entries.
/// - Leaving: the holder that entered through the bias clears <c>_enteredBiased</c> and release-stores its token's
///   <c>Inside</c> = 0 (its token is <c>_bias</c>, or <c>_revoked</c> while a revoker waits for it); a
///   lock holder release-stores <c>_lock</c> = 0. Either pairs with the acquire load of the next thread (its CAS, or a
///   revoker's / stopper's load of <c>Inside</c>): what the holder did inside happens before.
/// - Stopping (dispose, handover): the stopper changes the endpoint's state (a CAS), calls
///   <see cref="Interlocked.MemoryBarrierProcessWide"/> (<see cref="BarrierBeforeIdleCheck"/>), then polls
///   <see cref="IsHeld"/>. A fast entry checks the state after it is in: by the argument above, either the stopper sees
///   its <c>Inside</c> = 1 (and waits for it to leave) or the entering thread sees the new state (and backs out).
/// </remarks>
internal struct BiasedGuard
{
    /// <summary>Entries in a row through the lock by one thread before that thread is given the bias.</summary>
    public const int BiasAfter = 64;

    private Bias? _bias;

    /// <summary>The token a revoker took away and waits on (while <c>_bias</c> is null); read by its thread at exit.</summary>
    private Bias? _revoked;

    /// <summary>The holder entered through its bias (written by the holder: a plain flag, no reference store and so no GC write barrier).</summary>
    private bool _enteredBiased;
    private int _lock;
    private int _lastThread;
    private int _streak;

    /// <summary>True while a thread is inside (or taking the bias away). After <see cref="BarrierBeforeIdleCheck"/> for a stopper.</summary>
    public readonly bool IsHeld =>
        Volatile.Read(ref Unsafe.AsRef(in _lock)) != 0
        || (Volatile.Read(ref Unsafe.AsRef(in _bias)) is { } bias && Volatile.Read(ref bias.Inside) != 0);

    /// <summary>The thread the guard is biased to now, or 0 (tests, diagnostics).</summary>
    public readonly int BiasedThread => Volatile.Read(ref Unsafe.AsRef(in _bias))?.ThreadId ?? 0;

    /// <summary>The barrier a stopper runs between its state change and its first <see cref="IsHeld"/> (see the Design).</summary>
    public static void BarrierBeforeIdleCheck() => Interlocked.MemoryBarrierProcessWide();

    /// <summary>The biased thread's entry: plain stores and loads; false (nothing taken) for any other case.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryEnterBiased()
    {
        Bias? bias = Volatile.Read(ref _bias);
        if (bias is null || bias.ThreadId != Environment.CurrentManagedThreadId || bias.Inside != 0)
        {
            return false;
        }

        Volatile.Write(ref bias.Inside, 1);
        if (Volatile.Read(ref _bias) != bias)
        {
            Volatile.Write(ref bias.Inside, 0); // being revoked: the slow path waits its turn
            return false;
        }

        _enteredBiased = true;
        return true;
    }

    /// <summary>Leaves the guard, whichever way it was entered.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Exit()
    {
        if (_enteredBiased)
        {
            // Our token: _bias, or, while a revoker waits for us, the one it took away (stored before it nulled _bias:
            // the acquire load that sees null sees it).
            _enteredBiased = false;
            Bias bias = Volatile.Read(ref _bias) ?? _revoked!;
            Volatile.Write(ref bias.Inside, 0); // release: our accesses finish before a revoker or stopper sees 0
        }
        else
        {
            Volatile.Write(ref _lock, 0);
        }
    }

    /// <summary>
    /// The slow path: takes the lock (a CAS), takes the bias away from its thread if there is one (and waits for that
    /// thread to leave), and is in. <paramref name="wait"/> is asked between attempts whether to go on (it spins, sleeps,
    /// watches a deadline, and may throw); false from it gives up, leaving the guard as it was.
    /// </summary>
    public bool EnterSlow<TWait>(ref TWait wait)
        where TWait : struct, IGuardWait
    {
        while (Volatile.Read(ref _lock) != 0 || Interlocked.CompareExchange(ref _lock, 1, 0) != 0)
        {
            if (!wait.KeepWaiting())
            {
                return false;
            }
        }

        Bias? revoked = _bias;
        if (revoked is not null)
        {
            // Revocation: see the Design block. The lock is ours, so nobody else changes _bias or _revoked meanwhile.
            _revoked = revoked;
            Volatile.Write(ref _bias, null); // release: _revoked is seen by the thread that finds _bias null at its exit
            Interlocked.MemoryBarrierProcessWide();
            try
            {
                while (Volatile.Read(ref revoked.Inside) != 0) // acquire: its accesses inside happen before ours
                {
                    if (!wait.KeepWaiting())
                    {
                        Abandon(revoked);
                        return false;
                    }
                }
            }
            catch
            {
                Abandon(revoked);
                throw;
            }
        }

        Entered();
        return true;
    }

    /// <summary>Enters now or never: no waiting, no exception (a revocation that finds the biased thread inside gives up).</summary>
    public bool TryEnterNow()
    {
        var never = default(NoWait);
        return TryEnterBiased() || EnterSlow(ref never);
    }

    /// <summary>A revoker giving up (lock held): the token goes back (its thread may still be inside), then the lock.</summary>
    private void Abandon(Bias revoked)
    {
        Volatile.Write(ref _bias, revoked);
        Volatile.Write(ref _lock, 0);
    }

    /// <summary>
    /// The lock is held and nobody else is inside: this thread is in. After <see cref="BiasAfter"/> such entries in a row
    /// it moves inside through a new bias of its own and lets go of the lock.
    /// </summary>
    private void Entered()
    {
        int thread = Environment.CurrentManagedThreadId;
        if (_lastThread != thread)
        {
            _lastThread = thread;
            _streak = 1;
            return;
        }

        if (++_streak < BiasAfter)
        {
            return;
        }

        _streak = 0;
        var bias = new Bias(thread) { Inside = 1 };
        _enteredBiased = true;
        Volatile.Write(ref _bias, bias); // under the lock, the bias null: no fast entry can race with it
        Volatile.Write(ref _lock, 0);
    }

    private readonly struct NoWait : IGuardWait
    {
        public bool KeepWaiting() => false;
    }

    /// <summary>The biased thread's token: only that thread writes <see cref="Inside"/>.</summary>
    private sealed class Bias(int threadId)
    {
        public readonly int ThreadId = threadId;
        public int Inside;
    }
}

/// <summary>How a thread waits for a <see cref="BiasedGuard"/>: asked between attempts.</summary>
internal interface IGuardWait
{
    /// <summary>Waits a little (spin, yield, sleep) and returns true to try again, or false to give up; may throw (the owner stopped, cancellation).</summary>
    bool KeepWaiting();
}
