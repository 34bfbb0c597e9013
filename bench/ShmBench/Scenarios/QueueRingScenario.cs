using ShmIpc.Bench.Baselines;
using ShmIpc.Bench.Harness;

namespace ShmIpc.Bench.Scenarios;

/// <summary>
/// queuering (issue 16, brief P: does the protocol or do the layers stop the queue at 0.3x of the best C ring?): the queue's
/// 64 B 1 -> 1 throughput and the same run through its ring alone (Children.RingOnly: the MPMC protocol, copies and reclaim,
/// without ShmQueue's call guard, notify, metrics; the consumer spins), alternating round by round with fresh processes, each
/// run right after a run of the best C ring (header commit). Compare the two pairs of the same run. The third pair is the
/// queue protocol itself in C (the C peer, bench/native/peer_queue.c), also right after a run of the best ring: when it reads
/// as low as the .NET queue, the protocol bounds the figure, not the .NET code.
/// </summary>
internal sealed class QueueRingScenario : IScenario
{
    private const int Rounds = 2;

    public string Name => "queuering";

    public string Title => "Queue ring alone: the MPMC protocol without the queue's layers, 64 B 1 -> 1";

    public void Run(HarnessContext ctx)
    {
        ctx.Note("queuering: producer CPU 1, consumer CPU 0; each run after one run of c.best_spsc_64B (header commit); *_ring_only_*: the ring's " +
            "TryWrite / TryBeginRead + EndRead (+ reclaim at a quarter of the ring), both sides spinning, no notify, no call guard, no metrics");
        RunPlan plan = ctx.Plan(10_000_000, 100_000);
        for (int round = 0; round < Rounds; round++)
        {
            QueueScenario.Throughput(ctx, "shmipc.queuering_queue_64B_1p1c_throughput", 64, 1, 1, plan,
                new Pairing("pair.queuering_queue_64B_1p1c_per_c_best_spsc", "shmipc.queuering_queue_64B_1p1c_throughput", "c.best_spsc_64B_throughput",
                    _ => NativeBaselines.BestSpscOnce(ctx)));
            QueueScenario.Throughput(ctx, "shmipc.queue_ring_only_64B_1p1c_throughput", 64, 1, 1, plan,
                new Pairing("pair.queue_ring_only_64B_1p1c_per_c_best_spsc", "shmipc.queue_ring_only_64B_1p1c_throughput", "c.best_spsc_64B_throughput",
                    _ => NativeBaselines.BestSpscOnce(ctx)), ringOnly: true);
            for (int r = 0; r < plan.Runs; r++)
            {
                ctx.PairOnce(
                    new Pairing("pair.c_peer_queue_64B_1p1c_per_c_best_spsc", "c.peer_queue_64B_1p1c_throughput", "c.best_spsc_64B_throughput",
                        _ => NativeBaselines.BestSpscOnce(ctx)),
                    () => NativeBaselines.PeerQueueOnce(ctx));
            }
        }
    }
}
