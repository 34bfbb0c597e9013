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

    /// <summary>Pool(8).map over 1M ints, more processes than cores: py.pool8_map_1M_throughput.</summary>
    public static void Pool8Map(HarnessContext ctx) => Run(ctx, "pool8_map", new RunPlan(1_000_000, 10_000, ctx.Options.Runs));

    /// <summary>Pool(2) start to first result with fork only: py.pool2_fork_start_to_first_result (one warm-up start, then the runs).</summary>
    public static void PoolStartFork(HarnessContext ctx) => Run(ctx, "pool_start_fork", new RunPlan(1, 1, ctx.Options.Runs));

    /// <summary>
    /// One measured Pool(2) spawn start to first result (after one unmeasured start in the same interpreter), for a
    /// back-to-back pair: py.pool2_spawn_start_to_first_result. False when Python is missing or the run failed.
    /// </summary>
    public static bool PoolStartSpawnOnce(HarnessContext ctx)
    {
        string? python = s_python.Value;
        string script = Path.Combine(RepoPaths.Python, "mp_baselines.py");
        return python is not null && File.Exists(script)
            && ExternalBaseline.Run(ctx, python, [script, "pool_start_spawn", "1", "1", "1"], TimeSpan.FromMinutes(1), 0, RepoPaths.Python);
    }

    /// <summary>multiprocessing.Lock acquire+release, uncontended: py.lock_uncontended_ns.</summary>
    public static void LockUncontended(HarnessContext ctx) => Run(ctx, "lock", ctx.Plan(1_000_000, 100_000));

    /// <summary>Ping-pong of two multiprocessing.Event objects between two processes: py.event_pingpong_rtt_*.</summary>
    public static void EventPingPong(HarnessContext ctx) => Run(ctx, "event", ctx.Plan(5_000, 500));

    /// <summary>
    /// numpy over multiprocessing.shared_memory: one process writes 2^24 float64, another sums them (py.numpy_array_2p24_write_sum_ms).
    /// Needs a python3 with numpy: the first one of PATH's python3 and Debian's /usr/bin/python3 that imports it; as root,
    /// Debian's python3-numpy is installed once when neither does. Skipped with a note where it cannot be had.
    /// </summary>
    public static void NumpyArray(HarnessContext ctx, int length)
    {
        string? python = s_numpyPython.Value;
        if (python is null)
        {
            ctx.Note("py.numpy_array_2p24_write_sum_ms not measured: no python3 with numpy here, and python3-numpy could not be installed (needs root and apt-get).");
            return;
        }

        Run(ctx, "numpy_array", new RunPlan(length, 0, ctx.Options.Runs), python: python);
    }

    /// <summary>
    /// Pool(2).map of x -> 2x + 1 over <paramref name="length"/> float32 split into 8 numpy chunks: py.pool2_map_numpy_chunks_ms
    /// (beside shmipc.pool2_map_in_place_ms). Needs numpy, found as for <see cref="NumpyArray"/>.
    /// </summary>
    public static void PoolMapNumpyChunks(HarnessContext ctx, int length)
    {
        if (s_numpyPython.Value is not string python)
        {
            ctx.Note("py.pool2_map_numpy_chunks_ms not measured: no python3 with numpy here, and python3-numpy could not be installed (needs root and apt-get).");
            return;
        }

        Run(ctx, "pool_map_numpy_chunks", new RunPlan(length, 1, ctx.Options.Runs), python: python);
    }

    private static readonly Lazy<string?> s_numpyPython = new(static () =>
    {
        string[] candidates = ["python3", "/usr/bin/python3"];
        string? found = candidates.FirstOrDefault(static p => MachineInfo.Run(p, null, "-c", "import numpy") is not null);
        if (found is null && Environment.UserName == "root" && MachineInfo.Run("apt-get", null, "install", "-y", "-qq", "python3-numpy") is not null)
        {
            found = candidates.FirstOrDefault(static p => MachineInfo.Run(p, null, "-c", "import numpy") is not null);
        }

        return found;
    });

    private static void Run(HarnessContext ctx, string test, RunPlan plan, int bytesPerItem = 0, string? python = null)
    {
        python ??= s_python.Value;
        string script = Path.Combine(RepoPaths.Python, "mp_baselines.py");
        if (python is null || !File.Exists(script))
        {
            ctx.Note($"Python baseline '{test}' skipped: {(python is null ? "no python3" : script + " not found")}");
            return;
        }

        ctx.Progress.Step($"Python {test}");
        ExternalBaseline.Run(ctx, python,
            [script, test, Str(plan.Count), Str(plan.Runs), Str(plan.Warmup)],
            TimeSpan.FromMinutes(3), bytesPerItem, RepoPaths.Python);
    }

    private static string Str(long v) => v.ToString(CultureInfo.InvariantCulture);
}
