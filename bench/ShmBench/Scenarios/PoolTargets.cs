namespace ShmIpc.Bench.Scenarios;

/// <summary>
/// The functions the pool and process scenarios (and the demo) run in worker processes: static methods of
/// this assembly, which the workers load by path.
/// </summary>
internal static class PoolTargets
{
    /// <summary>The trivial function: what an apply round trip or a map item costs beyond the work itself.</summary>
    public static int Identity(int x) => x;

    /// <summary>CPU-bound work: <paramref name="iterations"/> steps of xorshift64, about 1 ms per <see cref="IterationsPerMillisecond"/>.</summary>
    public static long Burn(int iterations)
    {
        ulong x = 88172645463325252UL;
        for (int i = 0; i < iterations; i++)
        {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
        }

        return (long)x;
    }

    /// <summary>How many <see cref="Burn"/> steps take about 1 ms here (measured in this process, after the JIT warmed up).</summary>
    public static int IterationsPerMillisecond()
    {
        Burn(1_000_000);
        const int Probe = 4_000_000;
        long best = long.MaxValue;
        for (int i = 0; i < 3; i++)
        {
            long start = System.Diagnostics.Stopwatch.GetTimestamp();
            Burn(Probe);
            best = Math.Min(best, System.Diagnostics.Stopwatch.GetTimestamp() - start);
        }

        double ms = best * 1000.0 / System.Diagnostics.Stopwatch.Frequency;
        return (int)Math.Max(1, Probe / ms);
    }
}
