using System.Globalization;
using ShmIpc.Bench.Harness;

namespace ShmIpc.Bench.Baselines;

/// <summary>
/// The C column, compiled at run time into the gitignored bench/native/bin/ (rebuilt when a source is newer); skipped
/// with a note when there is no compiler. Two programs: bench/native/shm_baselines.c ("cc -O2": the first issues' floor,
/// a naive ring with one store of head/tail per message, kept for history) and bench/native/best_spsc.c ("cc -O2
/// -march=native": the strongest floor of issue 16, the field's best-practice SPSC ring; the goals compare with it).
/// </summary>
internal static class NativeBaselines
{
    private static readonly NativeProgram s_baselines = new("shm_baselines.c", ["-O2"]);
    private static readonly NativeProgram s_best = new("best_spsc.c", ["-O2", "-march=native"]);

    /// <summary>The queue protocol in C: bench/native/peer_queue.c over the C peer (native-notes/c), the same flags as the best ring.</summary>
    private static readonly NativeProgram s_peerQueue = new("peer_queue.c", ["-O2", "-march=native"], withPeer: true);

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

    /// <summary>
    /// One run of the 8 B ping-pong over two best-practice rings, header commit: c.best_spin_8B_rtt_*. Called before
    /// each run of shmipc.pipe_8B_rtt (after a run of the old c.spin_8B_rtt), so the two are measured back to back.
    /// </summary>
    public static void BestSpinPingPongOnce(HarnessContext ctx) => Run(ctx, "spin", ctx.Plan(200_000) with { Runs = 1 }, paired: true, program: s_best);

    /// <summary>The same ping-pong with tail commit: c.best_spin_8B_tail_rtt_*.</summary>
    public static void BestSpinPingPongTail(HarnessContext ctx) => Run(ctx, "spin_tail", ctx.Plan(200_000), program: s_best);

    /// <summary>
    /// One run of the best-practice ring, 64 B records, header commit, one publication per message:
    /// c.best_spsc_64B_throughput (median of 5 slices, fresh producer), with its best and worst slice. Called before
    /// each run of shmipc.queue_64B_1p1c_throughput (after a run of the old c.spsc_64B_throughput).
    /// </summary>
    public static void BestSpscOnce(HarnessContext ctx) => Run(ctx, "spsc", ctx.Plan(10_000_000, 100_000) with { Runs = 1 }, bytesPerItem: 64, paired: true, program: s_best);

    /// <summary>
    /// One run of the queue protocol itself in C (the C peer's blocking put / get, 64 B, 1 MiB, pinned as the best ring):
    /// c.peer_queue_64B_1p1c_throughput, the median of 5 slices with a fresh producer. Beside the .NET queue's figure it
    /// says whether the protocol or the .NET code bounds the queue against the best ring (scenario queuering).
    /// </summary>
    public static void PeerQueueOnce(HarnessContext ctx) => Run(ctx, "queue", ctx.Plan(10_000_000, 100_000) with { Runs = 1 }, bytesPerItem: 64, paired: true, program: s_peerQueue);

    /// <summary>
    /// The best-practice ring's other 64 B figures: tail commit per message (c.best_spsc_64B_tail_throughput) and
    /// tail published every 64 messages (c.best_spsc_64B_batched_throughput).
    /// </summary>
    public static void BestSpscTailAndBatched(HarnessContext ctx)
    {
        Run(ctx, "spsc_tail", ctx.Plan(10_000_000, 100_000), bytesPerItem: 64, program: s_best);
        Run(ctx, "spsc_batched", ctx.Plan(10_000_000, 100_000), bytesPerItem: 64, program: s_best);
    }

    /// <summary>
    /// 64 KiB records copied in and out of the best-practice ring of 8 MiB: c.best_spsc_64KiB_bandwidth (tail commit, the
    /// consumer need not zero) and c.best_spsc_64KiB_header_bandwidth (header commit: the consumer zeroes what it read).
    /// </summary>
    public static void BestSpscBandwidth(HarnessContext ctx)
    {
        Run(ctx, "bandwidth", ctx.Plan(100_000, 1_000), bytesPerItem: 64 * 1024, program: s_best);
        Run(ctx, "bandwidth_header", ctx.Plan(100_000, 1_000), bytesPerItem: 64 * 1024, program: s_best);
    }

    /// <summary>
    /// One run of one process copying 64 KiB blocks that miss every cache (256 MiB regions walked in order):
    /// c.memcpy_64KiB_cold_bandwidth, what the loan streams are held against (issue 17), back to back with them.
    /// </summary>
    public static void MemcpyColdOnce(HarnessContext ctx) =>
        Run(ctx, "memcpy_cold", ctx.Plan(50_000, 1_000) with { Runs = 1 }, bytesPerItem: 64 * 1024, paired: true, program: s_best);

    /// <summary>One run of the best ring's 64 KiB copy-in / copy-out stream (c.best_spsc_64KiB_*), back to back with a loan stream's run.</summary>
    public static void BestSpscBandwidthOnce(HarnessContext ctx) =>
        Run(ctx, "bandwidth", ctx.Plan(100_000, 1_000) with { Runs = 1 }, bytesPerItem: 64 * 1024, paired: true, program: s_best);

    /// <summary>Runs one C test; <paramref name="paired"/>: one run between the library's runs, shown as a detail of the library's step.</summary>
    private static void Run(HarnessContext ctx, string test, RunPlan plan, int bytesPerItem = 0, bool paired = false, NativeProgram? program = null)
    {
        program ??= s_baselines;
        string? binary = program.Binary;
        if (binary is null)
        {
            ctx.Note($"C baseline '{test}' ({program.Source}) skipped: {program.Problem}");
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

    private static string Str(long v) => v.ToString(CultureInfo.InvariantCulture);
}

/// <summary>
/// One C program of bench/native, compiled once per run of the harness (when it, bench_common.h or, for a program built
/// with the C peer, the peer's sources are newer than its binary).
/// </summary>
internal sealed class NativeProgram
{
    private const string CommonHeader = "bench_common.h";
    private readonly string[] _flags;
    private readonly bool _withPeer;
    private readonly Lazy<string?> _compiled;

    /// <param name="source">The file in bench/native.</param>
    /// <param name="flags">The compiler's flags.</param>
    /// <param name="withPeer">Compile and link the C peer (native-notes/c/shmipc.c, its header on the include path) too.</param>
    public NativeProgram(string source, string[] flags, bool withPeer = false)
    {
        Source = source;
        _flags = flags;
        _withPeer = withPeer;
        _compiled = new Lazy<string?>(Compile);
    }

    private static string PeerDirectory => Path.Combine(RepoPaths.Root, "native-notes", "c");

    public string Source { get; }

    /// <summary>The compiled program, or null (see <see cref="Problem"/>).</summary>
    public string? Binary => _compiled.Value;

    /// <summary>Why there is no binary.</summary>
    public string? Problem { get; private set; }

    private string? Compile()
    {
        string path = Path.Combine(RepoPaths.Native, Source);
        if (!File.Exists(path))
        {
            Problem = $"{path} not found";
            return null;
        }

        string dir = Path.Combine(RepoPaths.Native, "bin");
        string binary = Path.Combine(dir, Path.GetFileNameWithoutExtension(Source));
        string[] peer = _withPeer ? [Path.Combine(PeerDirectory, "shmipc.c")] : [];
        string[] peerHeaders = _withPeer ? [Path.Combine(PeerDirectory, "shmipc.h")] : [];
        DateTime newest = new[] { path, Path.Combine(RepoPaths.Native, CommonHeader) }.Concat(peer).Concat(peerHeaders)
            .Where(File.Exists).Max(File.GetLastWriteTimeUtc);
        if (File.Exists(binary) && File.GetLastWriteTimeUtc(binary) >= newest)
        {
            return binary;
        }

        Directory.CreateDirectory(dir);
        string[] include = _withPeer ? ["-I", PeerDirectory] : [];
        string? output = MachineInfo.Run("cc", null, [.. _flags, "-pthread", "-Wall", .. include, "-o", binary, path, .. peer]);
        if (output is null || !File.Exists(binary))
        {
            Problem = $"no working C compiler ('cc {string.Join(' ', _flags)}' failed or is missing)";
            return null;
        }

        return binary;
    }
}
