using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace ShmIpc.Timing;

/// <summary>
/// Deadlines as <see cref="Stopwatch"/> timestamps: the one clock every layer (segments, rings, waits) measures
/// timeouts with. Depends on nothing of ShmIpc, so any layer may use it.
/// </summary>
internal static class Deadline
{
    /// <summary>
    /// The deadline of a zero timeout: one look, then the checks a sleeper would make (a peer's death, disposal),
    /// never a spin or a sleep. A timestamp long past (timestamps count from boot), so every "deadline passed"
    /// test agrees with it; what it saves is the clock: a zero-timeout poll that finds its message, or a spin
    /// loop of such polls, reads no clock at all (~25 ns a read, more than the poll itself).
    /// </summary>
    public const long Immediate = 1;

    /// <summary>A deadline that never comes.</summary>
    public const long Never = long.MaxValue;

    /// <summary>
    /// Not a timestamp: "compute the deadline from the timeout passed beside it, if and when the call has to wait". A
    /// dequeue that finds its message at once then reads no clock (~100 instructions of a 64 B message's ~1000). The caller
    /// validates the timeout first (<see cref="CheckTimeout"/>), so a bad timeout throws whether or not the call waits.
    /// </summary>
    public const long Deferred = long.MinValue;

    /// <summary>Throws what <see cref="From"/> throws for <paramref name="timeout"/>, without reading the clock.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The timeout is negative and not infinite.</exception>
    /// <remarks>
    /// On the ticks, with constants: in the ReadyToRun image, TimeSpan's operators and its static Zero and
    /// Timeout.InfiniteTimeSpan are calls and static-base lookups into CoreLib, paid by every dequeue with a timeout.
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void CheckTimeout(TimeSpan timeout)
    {
        long ticks = timeout.Ticks;
        if (ticks < 0 && ticks != -TimeSpan.TicksPerMillisecond)
        {
            ThrowNegative(timeout);
        }
    }

    private static void ThrowNegative(TimeSpan timeout) =>
        throw new ArgumentOutOfRangeException(nameof(timeout), timeout, "The timeout must be non-negative or Timeout.InfiniteTimeSpan.");

    /// <summary>A deadline timestamp for a timeout; infinite (-1 ms) maps to <see cref="Never"/>, zero to <see cref="Immediate"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The timeout is negative and not infinite.</exception>
    public static long From(TimeSpan timeout)
    {
        if (timeout == Timeout.InfiniteTimeSpan)
        {
            return Never;
        }

        if (timeout == TimeSpan.Zero)
        {
            return Immediate;
        }

        if (timeout < TimeSpan.Zero)
        {
            ThrowNegative(timeout);
        }

        long ticks = (long)(timeout.Ticks * (Stopwatch.Frequency / (double)TimeSpan.TicksPerSecond));
        long now = Stopwatch.GetTimestamp();
        return ticks >= Never - now ? Never : now + ticks;
    }
}
