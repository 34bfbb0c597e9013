using System.Runtime.CompilerServices;

namespace ShmIpc.Endpoints;

/// <summary>
/// A per-thread record of the endpoint this thread is inside (a queue call in flight), so that a call's guard costs two
/// plain stores and a load instead of two interlocked read-modify-writes (<see cref="EndpointLifetime"/>'s count). The
/// disposer pays instead: one process-wide barrier and a scan of every thread's slot. The slot holds the endpoint's
/// number (<see cref="NewEndpointId"/>), not a reference: storing a reference into a heap object costs a GC write barrier
/// (a call and a card-table check) at every call.
/// </summary>
/// <remarks>
/// Design (process-local, no shared memory; an asymmetric Dekker handshake):
/// - Each thread owns one slot (a [ThreadStatic] object, registered once in <see cref="s_slots"/>, weakly, so a dead
///   thread's slot goes with it). Only that thread writes <see cref="_inside"/> (an endpoint number, 0 for none); the
///   disposer reads it.
/// - Enter (<see cref="TryEnter"/>): when the slot is empty, store the endpoint into it (volatile store), then load the
///   endpoint's state (volatile load): not open, clear the slot and refuse. A nested call (the slot already holds an
///   endpoint: a reader callback that calls a queue, a queue call inside another's) gets no slot and uses the
///   interlocked count instead, so a slot holds at most one call and never needs a count.
/// - Finding the slot: the thread-static read costs a call into the runtime's TLS resolver and a chain of dependent
///   loads, most of the guard's cost. An endpoint caches slots (a queue: one for its writing calls, one for its reading
///   calls; the first thread to make such a call takes the cache at once, another only after
///   <see cref="CacheTakeOverMisses"/> misses of it in a row, counted in its own slot: <see cref="MissedCacheOf"/>), and
///   a thread enters through a cache only if it is that slot's owner (<see cref="TryEnterOnOwnerThread"/>, told by its
///   stack: <see cref="ThreadStack"/>), so a slot is still written by its own thread alone and everything below holds as is.
/// - Exit (<see cref="Exit"/>): a release store of 0: every access of the mapping made by the call is ordered
///   before it.
/// - Dispose: the state CAS (a full fence on the disposer's side), then <see cref="Interlocked.MemoryBarrierProcessWide"/>
///   (membarrier / FlushProcessWriteBuffers: every other thread of the process runs a full barrier at whatever
///   instruction it is at), then <see cref="IsAnyInside"/> until no slot holds the endpoint, then unmap.
/// Why that is enough: take a thread T entering and the disposer D. T's store to its slot precedes its load of the
/// state in program order (volatile accesses are emitted in order by the JIT; only the hardware may let the load pass
/// the store, through the store buffer). The process-wide barrier interrupts T at one point of its instruction stream:
/// if the slot store is before that point, the barrier drains it and D's scan, after the barrier, sees it (D waits);
/// if the store is after it, so is T's state load, which then sees D's state store (made visible before the barrier):
/// T backs out without touching the mapping. Either way nobody touches the mapping after D unmaps it. A thread that
/// stored 0 in Exit is done with the mapping (release). The cost moves to Dispose: ~1 µs for the barrier plus a scan.
/// </remarks>
internal sealed class ThreadCallSlot
{
    [ThreadStatic]
    private static ThreadCallSlot? t_slot;

    private static readonly Lock s_gate = new();

    /// <summary>Every thread's slot, weakly held (under <see cref="s_gate"/>); dead entries are pruned on registration.</summary>
    private static readonly List<WeakReference<ThreadCallSlot>> s_slots = [];

    /// <summary>The last endpoint number given out (<see cref="NewEndpointId"/>).</summary>
    private static long s_lastId;

    /// <summary>The number of the endpoint this thread is inside through its slot, or 0 (written only by the owning thread).</summary>
    private long _inside;

    /// <summary>How many misses in a row on one endpoint's cache make this thread take the cache over (<see cref="MissedCacheOf"/>).</summary>
    internal const int CacheTakeOverMisses = 64;

    /// <summary>
    /// The cache this thread missed last and how many times in a row, kept twice: for even and odd cache numbers (an
    /// endpoint's writing and reading calls), so that alternating between the two kinds of calls counts both runs.
    /// Written by the owner thread only.
    /// </summary>
    private long _missedEven, _missedOdd;
    private int _missesEven, _missesOdd;

    /// <summary>The owning thread, told apart without thread-local storage (<see cref="TryEnterOnOwnerThread"/>); unknown off Linux.</summary>
    private readonly ThreadStack _owner;

    private ThreadCallSlot(ThreadStack owner) => _owner = owner;

    /// <summary>Test hook: this thread's slot (registered on first use).</summary>
    internal static ThreadCallSlot ForCurrentThread => t_slot ?? Register();

    /// <summary>Whether <see cref="TryEnterOnOwnerThread"/> can ever succeed: worth caching in an endpoint.</summary>
    public bool KnowsOwner => _owner.IsKnown;

    /// <summary>A number for a new endpoint, never 0 and never given out twice in this process.</summary>
    public static long NewEndpointId() => Interlocked.Increment(ref s_lastId);

    /// <summary>
    /// Puts this thread inside <paramref name="endpoint"/> if its slot is free; null when the slot is taken (a nested
    /// call: the caller counts itself in the endpoint's interlocked count instead). The caller must then check that the
    /// endpoint is still open (a volatile load after this call) and <see cref="Exit"/> when it is not or when done.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ThreadCallSlot? TryEnter(long endpoint)
    {
        ThreadCallSlot slot = t_slot ?? Register();
        if (slot._inside != 0)
        {
            return null;
        }

        Volatile.Write(ref slot._inside, endpoint); // before the caller's state load: see the Design remarks
        return slot;
    }

    /// <summary>
    /// <see cref="TryEnter"/> for a slot the caller found without thread-local storage (one of an endpoint's caches of a
    /// slot that entered it): enters only when the calling thread owns this slot (<see cref="ThreadStack"/>) and the
    /// slot is free. False otherwise, with nothing done (the caller takes the thread-static path).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryEnterOnOwnerThread(long endpoint)
    {
        // The owner first: a slot is entered only by the thread it belongs to (only that thread writes _inside).
        if (!_owner.IsCurrentThread() || _inside != 0)
        {
            return false;
        }

        Volatile.Write(ref _inside, endpoint); // before the caller's state load, as in TryEnter
        return true;
    }

    /// <summary>
    /// Called by the owning thread when a cache (<paramref name="cache"/>: a number for that cache, unique in the
    /// process; an endpoint's writing and reading caches differ in the lowest bit) held another thread's slot: true once
    /// every <see cref="CacheTakeOverMisses"/> misses of that cache (not interrupted by misses of another cache of the same
    /// parity); the caller then caches this slot. Only this thread's fields are written, so counting costs no shared line.
    /// </summary>
    public bool MissedCacheOf(long cache)
    {
        bool odd = (cache & 1) != 0;
        ref long missed = ref odd ? ref _missedOdd : ref _missedEven;
        ref int misses = ref odd ? ref _missesOdd : ref _missesEven;
        if (missed != cache)
        {
            missed = cache;
            misses = 0;
        }

        if (++misses < CacheTakeOverMisses)
        {
            return false;
        }

        misses = 0;
        return true;
    }

    /// <summary>Leaves the endpoint: every access of its mapping by this call happens before (release).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Exit() => Volatile.Write(ref _inside, 0);

    /// <summary>
    /// True when some thread is inside <paramref name="endpoint"/> through its slot. The disposer calls it only after
    /// stopping the endpoint and <see cref="Interlocked.MemoryBarrierProcessWide"/>.
    /// </summary>
    public static bool IsAnyInside(long endpoint)
    {
        lock (s_gate)
        {
            foreach (WeakReference<ThreadCallSlot> entry in s_slots)
            {
                if (entry.TryGetTarget(out ThreadCallSlot? slot) && Volatile.Read(ref slot._inside) == endpoint)
                {
                    return true;
                }
            }
        }

        return false;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static ThreadCallSlot Register()
    {
        var slot = new ThreadCallSlot(ThreadStack.TryDescribeCurrentThread(out ThreadStack owner) ? owner : default);
        lock (s_gate)
        {
            s_slots.RemoveAll(static entry => !entry.TryGetTarget(out _));
            s_slots.Add(new WeakReference<ThreadCallSlot>(slot));
        }

        t_slot = slot;
        return slot;
    }
}
