using ShmIpc.Bench.Baselines;
using ShmIpc.Bench.Harness;

namespace ShmIpc.Bench.Scenarios;

/// <summary>pool: Pool(2) Apply round trip, Map throughput, CPU-bound scaling. Baselines: Python's Pool(2).</summary>
internal sealed class PoolScenario : IScenario
{
    public string Name => "pool";

    public string Title => "Pool: apply, map and scaling with two workers";

    public void Run(HarnessContext ctx)
    {
        // TODO(pool): shmipc.pool2_apply_rtt (ctx.Latency), shmipc.pool2_map_1M_throughput (ctx.Rate, "items/s",
        // always 1M items: the name says so), shmipc.pool_cpu_bound_scaling (ctx.Record, "ratio": Pool(2) time
        // over Pool(1) time for the same CPU-bound work).
        PythonBaselines.PoolApply(ctx);
        PythonBaselines.PoolMap(ctx);
    }
}
