using System.Globalization;
using ShmIpc.Bench.Harness;

namespace ShmIpc.Bench.Baselines;

/// <summary>
/// The C column: bench/native/shm_baselines.c, compiled at run time with "cc -O2" into the gitignored
/// bench/native/bin/ (rebuilt when the source is newer). Skipped with a note when there is no compiler.
/// </summary>
internal static class NativeBaselines
{
    private const string Source = "shm_baselines.c";
    private static readonly Lazy<string?> s_binary = new(Compile);
    private static string? s_problem;

    /// <summary>
    /// One run (after the program's own warm-up) of the 8 B spin ping-pong: c.spin_8B_rtt_*. Called before
    /// each run of shmipc.pipe_8B_rtt, so the two are measured back to back.
    /// </summary>
    public static void SpinPingPongOnce(HarnessContext ctx) => Run(ctx, "spin", ctx.Plan(200_000) with { Runs = 1 }, paired: true);

    /// <summary>
    /// One run of the 8 B ping-pong on POSIX semaphores on two CPUs: c.sem_8B_rtt_* and its
    /// c.sem_8B_rtt_unslept_pct. Called before each run of shmipc.pipe_8B_sleep_rtt.
    /// </summary>
    public static void SemaphorePingPongOnce(HarnessContext ctx) => Run(ctx, "sem", ctx.Plan(20_000) with { Runs = 1 }, paired: true);

    /// <summary>The same semaphore ping-pong with both processes on CPU 0: c.sem_same_cpu_8B_rtt_*.</summary>
    public static void SameCpuSemaphorePingPong(HarnessContext ctx) => Run(ctx, "sem_same_cpu", ctx.Plan(20_000));

    /// <summary>
    /// One run of the SPSC ring of 64 B messages, one release store per message: c.spsc_64B_throughput
    /// (+ _bandwidth), the median of five timed slices with a fresh producer, and the slices' best and worst
    /// (c.spsc_64B_best_throughput, c.spsc_64B_worst_throughput). Called before each run of
    /// shmipc.queue_64B_1p1c_throughput.
    /// </summary>
    public static void SpscRingOnce(HarnessContext ctx) => Run(ctx, "spsc", ctx.Plan(10_000_000, 100_000) with { Runs = 1 }, bytesPerItem: 64, paired: true);

    /// <summary>The ring publishing head/tail once per 32 messages: c.spsc_64B_batched_throughput.</summary>
    public static void SpscRingBatched(HarnessContext ctx) => Run(ctx, "spsc_batched", ctx.Plan(10_000_000, 100_000), bytesPerItem: 64);

    /// <summary>memcpy of 64 KiB messages: c.memcpy_64KiB_bandwidth.</summary>
    public static void MemcpyBandwidth(HarnessContext ctx) => Run(ctx, "memcpy", ctx.Plan(100_000, 1_000));

    /// <summary>Uncontended lock+unlock of a PTHREAD_PROCESS_SHARED + PTHREAD_MUTEX_ROBUST mutex in a shared mapping: c.robust_mutex_uncontended_ns.</summary>
    public static void RobustMutexUncontended(HarnessContext ctx) => Run(ctx, "robust_mutex", ctx.Plan(5_000_000, 1_000_000));

    /// <summary>Two processes taking that mutex <paramref name="perProcess"/> times each around a counter: c.robust_mutex_contended_2x&lt;k&gt;k_ms.</summary>
    public static void RobustMutexContended(HarnessContext ctx, int perProcess) => Run(ctx, "robust_mutex_contended", new RunPlan(perProcess, 0, ctx.Options.Runs));

    /// <summary>2^24 doubles written by one process and summed by another in a shared mapping: c.array_2p24_write_sum_ms.</summary>
    public static void ArrayWriteSum(HarnessContext ctx, int length) => Run(ctx, "array_sum", new RunPlan(length, 0, ctx.Options.Runs));

    /// <summary>Runs one C test; <paramref name="paired"/>: one run between the library's runs, shown as a detail of the library's step.</summary>
    private static void Run(HarnessContext ctx, string test, RunPlan plan, int bytesPerItem = 0, bool paired = false)
    {
        string? binary = s_binary.Value;
        if (binary is null)
        {
            ctx.Note($"C baseline '{test}' skipped: {s_problem}");
            return;
        }

        if (!paired)
        {
            ctx.Progress.Step($"C {test}");
        }

        ExternalBaseline.Run(ctx, binary,
            [test, Str(plan.Count), Str(plan.Runs), Str(plan.Warmup)],
            TimeSpan.FromMinutes(2), bytesPerItem);
    }

    private static string? Compile()
    {
        string source = Path.Combine(RepoPaths.Native, Source);
        if (!File.Exists(source))
        {
            s_problem = $"{source} not found";
            return null;
        }

        string dir = Path.Combine(RepoPaths.Native, "bin");
        string binary = Path.Combine(dir, "shm_baselines");
        if (File.Exists(binary) && File.GetLastWriteTimeUtc(binary) >= File.GetLastWriteTimeUtc(source))
        {
            return binary;
        }

        Directory.CreateDirectory(dir);
        string? output = MachineInfo.Run("cc", null, "-O2", "-pthread", "-Wall", "-o", binary, source);
        if (output is null || !File.Exists(binary))
        {
            s_problem = "no working C compiler ('cc -O2' failed or is missing)";
            return null;
        }

        return binary;
    }

    private static string Str(long v) => v.ToString(CultureInfo.InvariantCulture);
}
