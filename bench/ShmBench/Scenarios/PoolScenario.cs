using System.Diagnostics;
using System.Globalization;
using ShmIpc.Bench.Baselines;
using ShmIpc.Bench.Harness;

namespace ShmIpc.Bench.Scenarios;

/// <summary>pool: Pool(2) Apply round trip, Map throughput, CPU-bound scaling. Baselines: Python's Pool(2).</summary>
internal sealed class PoolScenario : IScenario
{
    /// <summary>Map's chunk size: 0, the pool's default of about four chunks per worker (125,000 items for 1M over 2), the same rule as Python's Pool.map default.</summary>
    public const int MapChunkSize = 0;

    private const int MapItems = 1_000_000;

    /// <summary>The fewest recorded Maps of 1M the figure's median is taken over (see <see cref="MapThroughput"/>).</summary>
    private const int MapRuns = 9;

    public string Name => "pool";

    public string Title => "Pool: apply, map and scaling with two workers";

    public void Run(HarnessContext ctx)
    {
        using (ShmPool pool = Cleanup.Own(new ShmPool(2)))
        {
            ApplyRoundTrip(ctx, pool, ctx.Plan(20_000));
            MapThroughput(ctx, pool);
        }

        CpuBoundScaling(ctx, ctx.Plan(400, 40));
        ctx.Note("shmipc.pool2_map_1M: chunk size left to the pool (about four chunks per worker: 125,000 items), the rule Python's Pool.map uses too");

        PythonBaselines.PoolApply(ctx);
        PythonBaselines.PoolMap(ctx);
    }

    /// <summary>
    /// Pool(2).Apply of the trivial function, in steady state, nothing pinned (the scheduler places caller and workers):
    /// shmipc.pool2_apply_rtt_median, _p90, ... Before each run, one run of the 8 B pipe ping-pong it is compared
    /// with (parent on CPU 0, echo on CPU 1, as shmipc.pipe_8B_rtt: shmipc.pipe_8B_rtt_beside_pool_*), and their ratio (pair.pool2_apply_per_pipe_rtt):
    /// these VMs' cross-core latency moves by 2x from one minute to the next, so a ratio of figures taken minutes
    /// apart says little.
    /// </summary>
    public static void ApplyRoundTrip(HarnessContext ctx, ShmPool pool, RunPlan plan)
    {
        ctx.Progress.Step("ShmIpc Pool(2).Apply round trip");
        using var echo = new EchoPipe(8, sleeping: false);
        long[] PipeRun(int n)
        {
            using (Affinity.PinCurrentThread(0))
            {
                return echo.RoundTrips(n);
            }
        }

        // Steady state first: the runtime compiles hot methods fully only after ~100 ms of calls (tiered
        // compilation), in the library and in the workers; a 20,000-call run takes ~20 ms, so without this the
        // first runs measure half-optimized code on both sides. One second of each, as a long-lived pool would be.
        for (long until = Stopwatch.GetTimestamp() + Stopwatch.Frequency; Stopwatch.GetTimestamp() < until;)
        {
            PipeRun(1_000);
            for (int i = 0; i < 1_000; i++)
            {
                _ = pool.Apply(PoolTargets.Identity, i);
            }
        }

        var pairing = new Pairing("pair.pool2_apply_per_pipe_rtt", "shmipc.pool2_apply_rtt_median", "shmipc.pipe_8B_rtt_beside_pool_median",
            _ => ctx.RecordLatency("shmipc.pipe_8B_rtt_beside_pool", LatencyStats.From(PipeRun(plan.Count), plan.Count)));
        ctx.Latency("shmipc.pool2_apply_rtt", plan, n => CpuBoundMaps.TimedApplies(pool, n), pairing);
        ctx.Note("shmipc.pool2_apply_rtt: after 1 s of calls (tiered compilation done on both sides), nothing pinned; each run follows a run of shmipc.pipe_8B_rtt_beside_pool (pinned as shmipc.pipe_8B_rtt), pair.pool2_apply_per_pipe_rtt is their ratio");
    }

    /// <summary>
    /// Pool(2).Map of the trivial function over 1M ints (always 1M: the name says so): shmipc.pool2_map_1M_throughput.
    /// Warmed up with whole Maps of 1M for up to a second (as the Apply figure is): after one Map of 10,000 items the first
    /// recorded Map ran the workers' block loop before tiered compilation had optimized it (one Map of 1M in 30 ms, the
    /// next ones in 6-10 ms), and was one of the three values the median took. A Map takes ~10 ms, so the figure is the
    /// median of at least <see cref="MapRuns"/> of them: three such short runs on a shared 2-core machine gave medians
    /// from 52 to 94 M items/s 13 minutes apart.
    /// </summary>
    private static void MapThroughput(HarnessContext ctx, ShmPool pool)
    {
        ctx.Progress.Step("ShmIpc Pool(2).Map over 1M ints");
        int[] items = Enumerable.Range(0, MapItems).ToArray();
        var plan = new RunPlan(MapItems, MapItems, Math.Max(ctx.Options.Runs, MapRuns)) { SteadyState = true };
        ctx.Rate("shmipc.pool2_map_1M_throughput", "items/s", plan, n =>
        {
            int[] input = n == items.Length ? items : items[..n];
            long start = Stopwatch.GetTimestamp();
            int[] results = pool.Map(PoolTargets.Identity, input, MapChunkSize);
            long ticks = Stopwatch.GetTimestamp() - start;
            if (results.Length != n || results[^1] != n - 1)
            {
                throw new InvalidOperationException("Map returned wrong results.");
            }

            return ticks;
        });
    }

    /// <summary>
    /// The same CPU-bound Map (about 1 ms per item, chunk size 1) on Pool(1) and on Pool(2):
    /// shmipc.pool_cpu_bound_scaling = Pool(1) time / Pool(2) time, one value per run.
    /// </summary>
    private static void CpuBoundScaling(HarnessContext ctx, RunPlan plan)
    {
        ctx.Progress.Step("ShmIpc CPU-bound Map on Pool(1) and Pool(2)");
        int perMs = PoolTargets.IterationsPerMillisecond();
        using ShmPool one = Cleanup.Own(new ShmPool(1));
        using ShmPool two = Cleanup.Own(new ShmPool(2));
        foreach ((double t1, double t2) in CpuBoundMaps.Compare(ctx, plan, perMs, one, two, warmSeconds: 3)) // workers tier up for seconds (OversubscribedScenario.CpuBound)
        {
            ctx.Record("shmipc.pool1_cpu_bound_ms", "ms", t1);
            ctx.Record("shmipc.pool2_cpu_bound_ms", "ms", t2);
            ctx.Record("shmipc.pool_cpu_bound_scaling", "ratio", t1 / t2);
        }

        ctx.Note(string.Create(CultureInfo.InvariantCulture,
            $"shmipc.pool_cpu_bound_scaling: Map of {plan.Count} items of ~1 ms ({perMs} xorshift steps, calibrated in the parent), chunk size 1, Pool(1) time / Pool(2) time; the machine's other load shares the same CPUs"));
    }
}
