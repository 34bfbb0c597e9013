using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace ShmIpc.Endpoints;

/// <summary>
/// The process-local lifetime of an endpoint object (a queue handle, a pipe end): whether it is open, and how many calls
/// of this process are inside its mapping. A mutable struct, held as a field of its owner (never copied), so the guard
/// costs one interlocked increment and decrement per call and no indirection.
/// </summary>
/// <remarks>
/// Design (no shared memory involved):
/// - State goes Open -> Closed (dispose) or Open -> HandedOver (a pipe end given to another process), once, by CAS in
///   <see cref="TryStop"/>.
/// - A call that touches the mapping enters first (<see cref="TryEnter"/>: increment, then read the state, and back
///   out when it is not Open) and exits when it no longer touches it. Owners with other guards of their own (a pipe
///   end's exclusive send and receive guards) count those as busy in <see cref="WaitUntilIdle"/>.
/// - The stopper CASes the state, then waits until no call is inside (<see cref="WaitUntilIdle"/>) before it unmaps.
///   Both the CAS and the caller's increment are full fences, so either the stopper sees the call counted (and waits)
///   or the caller sees the new state (and backs out): nobody touches an unmapped page.
/// - Waiters re-check the state in their wait conditions; <see cref="WaitUntilIdle"/> posts the owner's semaphores
///   a bounded number of times to wake them, and they notice at the end of their sleep slice at the latest
///   (another process may take a post: a harmless spurious wakeup for it).
/// </remarks>
internal struct EndpointLifetime
{
    public const int Open = 0;
    public const int Closed = 1;
    public const int HandedOver = 2;

    /// <summary>How long a stop waits for the calls of other threads to leave before it gives up unmapping (the mapping then leaks, logged by the owner).</summary>
    public static readonly TimeSpan DrainTimeout = TimeSpan.FromSeconds(10);

    /// <summary>How many times, at most, <see cref="WaitUntilIdle"/> wakes the owner's sleepers.</summary>
    private const int MaxWakes = 16;

    private int _state;
    private int _calls;

    /// <summary>Open, Closed or HandedOver.</summary>
    public readonly int State => Volatile.Read(ref Unsafe.AsRef(in _state));

    /// <summary>True until the endpoint is stopped.</summary>
    public readonly bool IsOpen
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => State == Open;
    }

    /// <summary>Calls inside now.</summary>
    public readonly int Calls => Volatile.Read(ref Unsafe.AsRef(in _calls));

    /// <summary>Counts a call in; false (nothing counted) when the endpoint is stopped: the caller throws its ObjectDisposedException.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryEnter()
    {
        Interlocked.Increment(ref _calls);
        if (Volatile.Read(ref _state) != Open)
        {
            Interlocked.Decrement(ref _calls);
            return false;
        }

        return true;
    }

    /// <summary>Counts a call out.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Exit() => Interlocked.Decrement(ref _calls);

    /// <summary>Moves Open to <paramref name="state"/>; false when already stopped (someone else does the rest).</summary>
    public bool TryStop(int state) => Interlocked.CompareExchange(ref _state, state, Open) == Open;

    /// <summary>
    /// After <see cref="TryStop"/>: waits until <paramref name="isBusy"/> says no call is inside, calling <paramref name="wake"/>
    /// (posting the semaphores the owner's own waiters sleep on) at once and now and then while it waits. False when
    /// <see cref="DrainTimeout"/> passed first: the caller must then leave the mapping in place.
    /// </summary>
    public static bool WaitUntilIdle(Func<bool> isBusy, Action wake)
    {
        if (!isBusy())
        {
            return true;
        }

        long deadline = Stopwatch.GetTimestamp() + (long)(DrainTimeout.TotalSeconds * Stopwatch.Frequency);
        var spinner = new SpinWait();
        int wakes = 0;
        while (isBusy())
        {
            if (wakes < MaxWakes && spinner.Count % 8 == 0)
            {
                wake();
                wakes++;
            }

            if (Stopwatch.GetTimestamp() >= deadline)
            {
                return false;
            }

            spinner.SpinOnce(sleep1Threshold: 20);
        }

        return true;
    }
}
