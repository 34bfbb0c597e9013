using System.Globalization;
using ShmIpc.Bench.Harness;

namespace ShmIpc.Bench.Baselines;

/// <summary>The Python column: bench/python/mp_baselines.py under python3 (multiprocessing); skipped without python3.</summary>
internal static class PythonBaselines
{
    private static readonly Lazy<string?> s_python = new(() => MachineInfo.Run("python3", null, "--version") is null ? null : "python3");

    /// <summary>multiprocessing.Pipe 8 B round trip: py.pipe_8B_rtt_*.</summary>
    public static void PipeRoundTrip(HarnessContext ctx) => Run(ctx, "pipe", ctx.Plan(20_000));

    /// <summary>multiprocessing.Queue 64 B, one producer: py.queue_64B_throughput.</summary>
    public static void QueueThroughput(HarnessContext ctx) => Run(ctx, "queue", ctx.Plan(100_000, 10_000), bytesPerItem: 64);

    /// <summary>Pool(2).apply round trip: py.pool2_apply_rtt_*.</summary>
    public static void PoolApply(HarnessContext ctx) => Run(ctx, "pool_apply", ctx.Plan(5_000));

    /// <summary>Pool(2).map over 1M ints (always 1M: the figure's name says so): py.pool2_map_1M_throughput.</summary>
    public static void PoolMap(HarnessContext ctx) => Run(ctx, "pool_map", new RunPlan(1_000_000, 10_000, ctx.Options.Runs));

    /// <summary>Pool(2) start to first result, spawn and fork: py.pool2_spawn_/fork_start_to_first_result.</summary>
    public static void PoolStart(HarnessContext ctx) => Run(ctx, "pool_start", new RunPlan(1, 0, ctx.Options.Runs));

    /// <summary>multiprocessing.Lock acquire+release, uncontended: py.lock_uncontended_ns.</summary>
    public static void LockUncontended(HarnessContext ctx) => Run(ctx, "lock", ctx.Plan(1_000_000, 100_000));

    /// <summary>Ping-pong of two multiprocessing.Event objects between two processes: py.event_pingpong_rtt_*.</summary>
    public static void EventPingPong(HarnessContext ctx) => Run(ctx, "event", ctx.Plan(5_000, 500));

    private static void Run(HarnessContext ctx, string test, RunPlan plan, int bytesPerItem = 0)
    {
        string script = Path.Combine(RepoPaths.Python, "mp_baselines.py");
        if (s_python.Value is null || !File.Exists(script))
        {
            ctx.Note($"Python baseline '{test}' skipped: {(s_python.Value is null ? "no python3" : script + " not found")}");
            return;
        }

        ctx.Progress.Step($"Python {test}");
        ExternalBaseline.Run(ctx, s_python.Value,
            [script, test, Str(plan.Count), Str(plan.Runs), Str(plan.Warmup)],
            TimeSpan.FromMinutes(3), bytesPerItem, RepoPaths.Python);
    }

    private static string Str(long v) => v.ToString(CultureInfo.InvariantCulture);
}
