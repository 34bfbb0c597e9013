using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace ShmIpc.Signaling;

/// <summary>What a producer or consumer of the queue's ring does after losing a race to another of its role.</summary>
internal static class LostRace
{
    /// <summary>Thread.SpinWait iterations after a first lost race (doubled after each further one): ~0.3 µs here.</summary>
    public const int FirstSpin = 8;

    /// <summary>The longest spin after lost races, in Thread.SpinWait iterations: ~5 µs here.</summary>
    public const int MaxSpin = 128;

    /// <summary>
    /// Called by the queue's ring (MpmcRing) after a lost race: another producer claimed the record at Tail first, or another
    /// consumer took the record at ReadPosition (<paramref name="losses"/>: how many in a row in this call, from 1). On a
    /// machine with more runnable threads than cores (<see cref="MachineLoad"/>) it gives up the core (sched_yield);
    /// otherwise it spins a while, longer after each loss (<see cref="FirstSpin"/> Thread.SpinWait iterations after the
    /// first, ~0.3 µs here, doubling, at most <see cref="MaxSpin"/>, ~5 µs), then the caller retries.
    /// </summary>
    /// <remarks>
    /// Why: two producers (or two consumers) that run at once on two cores fall into step: the loser helps Tail (or
    /// ReadPosition) on at once and claims the next record, whose header shares a line with the winner's payload, so every
    /// message takes Tail, the claim word and that line from the other core, a few hundred nanoseconds each on this
    /// machine. Stepping aside lets the winner run alone for a while, at the speed of one producer:
    /// - More processes than cores: the core goes to the scheduler, which runs a process of the other role (the messages or
    ///   the room the losers need). Bench <c>oversubscribed</c> on 2 cores, alternated with the build without it, 3 rounds:
    ///   queue 64 B 4 -> 4 ÷ 1 -> 1 0.41 / 0.64 / 0.36 -> 0.56 / 0.67 / 0.65; 8 -> 8 ÷ 1 -> 1 0.32 / 0.44 / 0.32 -> 0.42 /
    ///   0.40 / 0.41. Yielding on one side only gained about half.
    /// - Free cores: a yield would return at once and change nothing, so the loser spins; the backoff has to be long
    ///   enough for the winner to get ahead (0.6 µs did not help, 3-10 µs did). Bench <c>queue</c>,
    ///   <c>shmipc.queue_64B_burst_2t_throughput</c> (two producer threads write a burst into the queue, then two consumer
    ///   threads drain it), alternated, 4 rounds: 1.9 / 6.4 / 2.6 / 2.2 -> 9.9 / 8.0 / 10.8 / 8.1 M msg/s (one thread doing
    ///   both in turn: 15.5-20.2). What a loser's extra wait (at most ~5 µs a loss) does to latency was not measured.
    /// Nothing any peer sees changes (the caller retries its loop from the start); 1 -> 1 never loses a race.
    /// </remarks>
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void StepAside(int losses)
    {
        if (MachineLoad.IsOversubscribed(Stopwatch.GetTimestamp()))
        {
            Thread.Yield();
            return;
        }

        Thread.SpinWait(SpinFor(losses));
    }

    /// <summary>The spin after the <paramref name="losses"/>-th lost race in a row (1 for the first): 8, 16, 32, 64, then 128 iterations; any other value (a counter that wrapped) gets the longest.</summary>
    internal static int SpinFor(int losses)
    {
        int doublings = (uint)(losses - 1) < 4u ? losses - 1 : 4;
        return Math.Min(FirstSpin << doublings, MaxSpin);
    }
}
