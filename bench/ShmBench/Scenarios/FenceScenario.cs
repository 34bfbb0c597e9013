using ShmIpc.Bench.Baselines;
using ShmIpc.Bench.Harness;
using ShmIpc.Signaling;

namespace ShmIpc.Bench.Scenarios;

/// <summary>
/// fence (issue 16, "the cost of one message"): the Queue's 64 B 1 -> 1 throughput and the Pipe's 64 B one-way stream with
/// the asymmetric sleeper fence (LAYOUT.md §4: registered publishers skip the full fence, sleepers issue
/// membarrier(GLOBAL_EXPEDITED)) and with the symmetric one (SHMIPC_FENCE=full in the children and an unmarked segment:
/// every publication fences), alternating round by round with fresh processes, each run right after a run of the best C
/// ring (header commit, c.best_spsc_64B_throughput). Compare _membarrier with _fullfence of the same run.
/// </summary>
internal sealed class FenceScenario : IScenario
{
    private const int Rounds = 3;

    public string Name => "fence";

    public string Title => "Fence: one message with the asymmetric (membarrier) and the full sleeper fence";

    /// <summary>The bench's line about this process's fence mode.</summary>
    public static string Describe() =>
        $"publishers on marked segments: {SleeperFence.ModeName} (SHMIPC_FENCE={Environment.GetEnvironmentVariable(SleeperFence.EnvironmentVariable) ?? "unset"}; " +
        $"membarrier GLOBAL_EXPEDITED {(SleeperFence.CanWaitOnMarkedSegments ? "available" : "unavailable")}); " +
        "segments created by default here are " + (SleeperFence.MarkNewSegments ? "marked (sleepers issue membarrier, publishers skip the fence)" : "unmarked (a full fence per publication)");

    public void Run(HarnessContext ctx)
    {
        ctx.Note($"fence: {Describe()}");
        ctx.Note("fence: *_membarrier: marked segment (every process registered, skipping the fence); *_fullfence: unmarked segment, children with SHMIPC_FENCE=full " +
            "(today's symmetric protocol); queue producer CPU 1, consumer CPU 0; pipe sender CPU 0, sink CPU 1; each run after one run of c.best_spsc_64B; " +
            "pipe_8B_sleep_rtt_*: NoSpin on both ends, every message wakes a sleeper (the membarrier's cost lands here)");
        RunPlan queuePlan = ctx.Plan(5_000_000, 100_000);
        RunPlan pipePlan = ctx.Plan(5_000_000, 100_000);
        RunPlan sleepPlan = ctx.Plan(10_000, 1_000);
        for (int round = 0; round < Rounds; round++)
        {
            foreach (bool full in new[] { false, true })
            {
                string mode = full ? "fullfence" : "membarrier";
                using (FullFence(full))
                {
                    QueueScenario.Throughput(ctx, $"shmipc.queue_64B_1p1c_{mode}_throughput", 64, 1, 1, queuePlan,
                        new Pairing($"pair.queue_64B_1p1c_{mode}_per_c_best_spsc", $"shmipc.queue_64B_1p1c_{mode}_throughput", "c.best_spsc_64B_throughput",
                            _ => NativeBaselines.BestSpscOnce(ctx)));
                    PipeScenario.Stream(ctx, $"shmipc.pipe_64B_stream_{mode}_throughput", 64, pipePlan,
                        pairing: new Pairing($"pair.pipe_64B_stream_{mode}_per_c_best_spsc", $"shmipc.pipe_64B_stream_{mode}_throughput", "c.best_spsc_64B_throughput",
                            _ => NativeBaselines.BestSpscOnce(ctx)));

                    // What the sleepers pay: every message of this ping-pong wakes a sleeper (NoSpin on both ends).
                    PipeScenario.RoundTrip(ctx, $"shmipc.pipe_8B_sleep_rtt_{mode}", 8, sleepPlan, sleeping: true);
                }
            }
        }
    }

    /// <summary>
    /// Without <paramref name="full"/>: segments this thread creates are marked. With it: unmarked, and children start with
    /// SHMIPC_FENCE=full.
    /// </summary>
    private static IDisposable FullFence(bool full)
    {
        if (!full)
        {
            return SleeperFence.CreateMarkedForTests();
        }

        string? previous = Environment.GetEnvironmentVariable(SleeperFence.EnvironmentVariable);
        Environment.SetEnvironmentVariable(SleeperFence.EnvironmentVariable, "full");
        IDisposable unmarked = SleeperFence.CreateUnmarkedForTests();
        return new Restore(unmarked, previous);
    }

    private sealed class Restore(IDisposable unmarked, string? previous) : IDisposable
    {
        public void Dispose()
        {
            unmarked.Dispose();
            Environment.SetEnvironmentVariable(SleeperFence.EnvironmentVariable, previous);
        }
    }
}
