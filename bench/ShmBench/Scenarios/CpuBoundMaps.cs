using System.Diagnostics;
using ShmIpc.Bench.Harness;

namespace ShmIpc.Bench.Scenarios;

/// <summary>The pool measurements two scenarios share: the CPU-bound Map (about 1 ms per item, chunk size 1) timed on two pools, and timed Apply calls.</summary>
internal static class CpuBoundMaps
{
    /// <summary><paramref name="n"/> synchronous <c>Apply(Identity, i)</c> calls, each timed (Stopwatch ticks) and its result checked.</summary>
    public static long[] TimedApplies(IShmPool pool, int n)
    {
        long[] ticks = new long[n];
        for (int i = 0; i < n; i++)
        {
            long start = Stopwatch.GetTimestamp();
            int result = pool.Apply(PoolTargets.Identity, i);
            ticks[i] = Stopwatch.GetTimestamp() - start;
            if (result != i)
            {
                throw new InvalidOperationException($"Apply returned {result} for {i}.");
            }
        }

        return ticks;
    }

    /// <summary>
    /// Warms both pools for <paramref name="warmSeconds"/> (tiered compilation runs the function half-optimized in each
    /// worker until ~100 ms of calls: a short warm-up made the first runs' Pool(2) scaling read 1.6 where later ones read 1.95),
    /// then times <c>plan.Count</c> items on <paramref name="first"/> then <paramref name="second"/>, once per run.
    /// </summary>
    public static IEnumerable<(double FirstMs, double SecondMs)> Compare(HarnessContext ctx, RunPlan plan, int iterationsPerMs, IShmPool first, IShmPool second, double warmSeconds)
    {
        double Time(IShmPool pool, int n)
        {
            int[] work = Enumerable.Repeat(iterationsPerMs, n).ToArray();
            long start = Stopwatch.GetTimestamp();
            _ = pool.Map(PoolTargets.Burn, work, chunkSize: 1);
            return Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        }

        for (long until = Stopwatch.GetTimestamp() + (long)(warmSeconds * Stopwatch.Frequency); Stopwatch.GetTimestamp() < until;)
        {
            Time(first, plan.Warmup);
            Time(second, plan.Warmup);
        }

        for (int r = 0; r < plan.Runs; r++)
        {
            ctx.Progress.Detail($"run {r + 1}/{plan.Runs}");
            yield return (Time(first, plan.Count), Time(second, plan.Count));
        }
    }
}
