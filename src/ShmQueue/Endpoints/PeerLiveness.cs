using System.Runtime.CompilerServices;
using ShmIpc.Memory;

namespace ShmIpc.Endpoints;

/// <summary>
/// The one policy by which queue and pipe endpoints decide that a peer process is gone: its identity word (pid and
/// start time, <see cref="ProcessIdentity"/>) names a process that no longer runs. A lookup reads /proc (microseconds),
/// so a caller that polls does it at most once per <see cref="CheckIntervalMs"/> (<see cref="LivenessThrottle"/>);
/// a caller that sleeps does it before each sleep slice.
/// </summary>
/// <remarks>
/// Design: one interval for every endpoint, 5 ms of <see cref="Environment.TickCount64"/> (a coarse clock, ~6 ns a read
/// against ~25 ns for Stopwatch: zero-timeout polls ask on every call). A spinning poller then spends well under 1 %
/// of a core on /proc, and a dead peer is noticed within 5 ms of the first poll that needs it gone; blocked callers
/// are bounded by their sleep slice instead. (The queue looked every 1 ms and the pipe every 5 ms before they shared this.)
/// </remarks>
internal static class PeerLiveness
{
    /// <summary>The least time between two /proc lookups of one endpoint's peers, in milliseconds of <see cref="Environment.TickCount64"/>.</summary>
    public const long CheckIntervalMs = 5;

    /// <summary>How many bits of the start time an identity word carries (the rest are the pid and the tag).</summary>
    public const int StartTimeBits = 32;

    /// <summary>True when <paramref name="word"/> is a process identity and that process runs (same pid, same start time).</summary>
    public static bool IsLiveIdentity(ISharedMemoryPlatform platform, ulong word) =>
        ProcessIdentity.IsIdentityWord(word) && platform.IsAlive(ProcessIdentity.FromWord(word), StartTimeBits);
}

/// <summary>Rate limit of <see cref="PeerLiveness"/> lookups for one endpoint: a field of it, never copied.</summary>
internal struct LivenessThrottle
{
    private long _next;

    /// <summary>True at most once per <see cref="PeerLiveness.CheckIntervalMs"/> (the caller looks then); racing threads may both get true, which is harmless.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryBegin()
    {
        long now = Environment.TickCount64;
        if (now < Volatile.Read(ref _next))
        {
            return false;
        }

        Volatile.Write(ref _next, now + PeerLiveness.CheckIntervalMs);
        return true;
    }

    /// <summary>
    /// The peer gave a sign of life another way (a message from it was received): the next lookup is due one interval
    /// from now, as if one had just been made. A waiter that sleeps once per message from a busy peer then never reads
    /// /proc (~13 µs a lookup on a VM: one per message when messages come every few ms); a dead peer is still found at
    /// the waiter's first sleep slice that starts an interval later, as after a lookup.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Defer() => Volatile.Write(ref _next, Environment.TickCount64 + PeerLiveness.CheckIntervalMs);
}
