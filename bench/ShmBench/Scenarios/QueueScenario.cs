using ShmIpc.Bench.Baselines;
using ShmIpc.Bench.Harness;

namespace ShmIpc.Bench.Scenarios;

/// <summary>queue: many-to-many 64 B messages. Baselines: the C SPSC ring, the UDS one-write-per-message stream, Python's Queue.</summary>
internal sealed class QueueScenario : IScenario
{
    public string Name => "queue";

    public string Title => "Queue: 64 B messages between producer and consumer processes";

    public void Run(HarnessContext ctx)
    {
        // TODO(queue): shmipc.queue_64B_1p1c_throughput and shmipc.queue_64B_2p2c_throughput with
        // ctx.Rate(name, "msg/s", ctx.Plan(10_000_000), n => ..., bytesPerItem: 64) and producer/consumer
        // child roles; pin 1p1c peers to CPUs 0 and 1 if either side spins (Affinity, ChildProcesses.Start cpu:).
        NativeBaselines.SpscRing(ctx);
        DotnetBaselines.UdsStreamPerMessage(ctx);
        PythonBaselines.QueueThroughput(ctx);
    }
}
