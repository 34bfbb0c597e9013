using System.Runtime.CompilerServices;
using ShmIpc.Endpoints;

namespace ShmIpc;

// The guard every call takes so that Dispose unmaps only once no thread is inside: the per-message calls through
// their thread's ThreadCallSlot (found through the queue's cache of the last slot when the caller is its thread,
// ThreadStack), nested and other calls through the lifetime's count. The protocol is in ThreadCallSlot's Design remarks.
public sealed partial class ShmQueue
{
    /// <summary>This object's number in the threads' call slots (<see cref="ThreadCallSlot"/>).</summary>
    private readonly long _callId = ThreadCallSlot.NewEndpointId();

    /// <summary>The slot of the thread that last entered through thread-local storage (<see cref="EnterCall"/>), or null.</summary>
    private ThreadCallSlot? _recentSlot;

    /// <summary>Test hook: <see cref="_recentSlot"/>.</summary>
    internal ThreadCallSlot? RecentCallSlot => _recentSlot;

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
    /// <see cref="_recentSlot"/> when this thread entered last, through thread-local storage otherwise.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ThreadCallSlot? EnterCall()
    {
        ThreadCallSlot? slot = _recentSlot;
        if (slot is null || !slot.TryEnterOnOwnerThread(_callId))
        {
            slot = EnterCallThroughThread();
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

    /// <summary>EnterCall's other way: the slot from thread-local storage (cached for this thread's next call), or the count.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private ThreadCallSlot? EnterCallThroughThread()
    {
        ThreadCallSlot? slot = ThreadCallSlot.TryEnter(_callId);
        if (slot is null)
        {
            Enter();
            return null;
        }

        // Any thread may read the cache (TryEnterOnOwnerThread admits the owner alone). The first thread takes it at once;
        // another takes it over only after a run of misses, so two threads calling one object in turn (a producer thread
        // and a consumer thread of one process) do not write this line at every call: in-process 1 -> 1 on 2 cores read
        // 6.5-9.7 M msg/s with a write at every miss, 22-31 M msg/s without.
        ThreadCallSlot? cached = _recentSlot;
        if (slot.KnowsOwner && !ReferenceEquals(cached, slot) && (cached is null || slot.MissedCacheOf(_callId)))
        {
            _recentSlot = slot;
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
