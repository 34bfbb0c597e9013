using System.Runtime.CompilerServices;
using ShmIpc.Endpoints;

namespace ShmIpc;

// The guard every call takes so that Dispose unmaps only once no thread is inside: the per-message calls through
// their thread's ThreadCallSlot (found through one of the queue's two caches, writing and reading calls, when the cache
// holds the caller's slot: ThreadStack), nested and other calls through the lifetime's count. The protocol is in
// ThreadCallSlot's Design remarks.
public sealed partial class ShmQueue
{
    /// <summary>This object's number in the threads' call slots (<see cref="ThreadCallSlot"/>).</summary>
    private readonly long _callId = ThreadCallSlot.NewEndpointId();

    /// <summary>
    /// The cached call slot of the writing calls (Enqueue, TryEnqueue: <see cref="EnterCall"/>), or null. The reading calls
    /// have their own (<see cref="_recentReadSlot"/>): a producer thread and a consumer thread of one process, calling one
    /// object, each keep theirs.
    /// </summary>
    private ThreadCallSlot? _recentWriteSlot;

    /// <summary>The cached call slot of the reading calls (Dequeue, TryDequeue), or null: as <see cref="_recentWriteSlot"/>.</summary>
    private ThreadCallSlot? _recentReadSlot;

    /// <summary>Test hook: <see cref="_recentWriteSlot"/>.</summary>
    internal ThreadCallSlot? RecentWriteSlot => _recentWriteSlot;

    /// <summary>Test hook: <see cref="_recentReadSlot"/>.</summary>
    internal ThreadCallSlot? RecentReadSlot => _recentReadSlot;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Enter()
    {
        if (!_lifetime.TryEnter())
        {
            ThrowDisposed();
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Exit() => _lifetime.Exit();

    /// <summary>
    /// Enter for the per-message calls: through this thread's <see cref="ThreadCallSlot"/> (two plain stores and a load, no
    /// interlocked instruction), or, for a nested call, through the count as <see cref="Enter"/>. Pass the result to
    /// <see cref="ExitCall"/>. Dispose sees both kinds (see ThreadCallSlot's Design remarks). The slot is found through
    /// <paramref name="cache"/> (<see cref="_recentWriteSlot"/>, or <see cref="_recentReadSlot"/> with
    /// <paramref name="reads"/>) when it holds this thread's slot, through thread-local storage otherwise.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ThreadCallSlot? EnterCall(ref ThreadCallSlot? cache, bool reads)
    {
        ThreadCallSlot? slot = cache;
        if (slot is null || !slot.TryEnterOnOwnerThread(_callId))
        {
            slot = EnterCallThroughThread(ref cache, reads);
            if (slot is null)
            {
                return null; // counted (a nested call)
            }
        }

        if (!_lifetime.IsOpen)
        {
            slot.Exit();
            ThrowDisposed();
        }

        return slot;
    }

    /// <summary>EnterCall's other way: the slot from thread-local storage (cached in <paramref name="cache"/> for this thread's next call), or the count.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private ThreadCallSlot? EnterCallThroughThread(ref ThreadCallSlot? cache, bool reads)
    {
        ThreadCallSlot? slot = ThreadCallSlot.TryEnter(_callId);
        if (slot is null)
        {
            Enter();
            return null;
        }

        // Any thread may read the cache (TryEnterOnOwnerThread admits the owner alone). The first thread takes it at once;
        // another takes it over only after a run of misses, so two threads making the same kind of call on one object in
        // turn do not write this line at every call (with one cache for both kinds and a write at every miss, a producer
        // thread and a consumer thread of one process moved 6.5-9.7 M msg/s on 2 cores; with the run of misses 17-19 M).
        ThreadCallSlot? cached = cache;
        // Misses are counted per cache (the endpoint number doubled, plus one for the read cache), not per object.
        if (slot.KnowsOwner && !ReferenceEquals(cached, slot) && (cached is null || slot.MissedCacheOf((_callId * 2) + (reads ? 1 : 0))))
        {
            cache = slot;
        }

        return slot;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void ExitCall(ThreadCallSlot? slot)
    {
        if (slot is null)
        {
            Exit();
        }
        else
        {
            slot.Exit();
        }
    }

    private void ThrowIfDisposed()
    {
        if (!_lifetime.IsOpen)
        {
            ThrowDisposed();
        }
    }
}
