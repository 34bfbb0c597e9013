using System.Diagnostics;

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
            throw new ArgumentOutOfRangeException(nameof(timeout), timeout, "The timeout must be non-negative or Timeout.InfiniteTimeSpan.");
        }

        long ticks = (long)(timeout.Ticks * (Stopwatch.Frequency / (double)TimeSpan.TicksPerSecond));
        long now = Stopwatch.GetTimestamp();
        return ticks >= Never - now ? Never : now + ticks;
    }
}
