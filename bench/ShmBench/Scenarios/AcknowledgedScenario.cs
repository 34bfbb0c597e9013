using System.Diagnostics;
using ShmIpc.Bench.Harness;

namespace ShmIpc.Bench.Scenarios;

/// <summary>
/// acknowledged (issue 18): the cost of Take + Ack per message against the plain queue of the same run (64 B, 1 -> 1,
/// pinned), and the redelivery latency: from a taker's SIGKILL to the message's retake by a consumer that waits in
/// Take with the default strategy (its sleep slices end at most 100 ms apart, and before each it looks for dead takers).
/// </summary>
internal sealed class AcknowledgedScenario : IScenario
{
    public string Name => "acknowledged";

    public string Title => "Acknowledged queue: Take + Ack throughput, redelivery after a SIGKILL";

    public void Run(HarnessContext ctx)
    {
        RunPlan plan = ctx.Plan(4_000_000, 100_000);
        QueueScenario.Throughput(ctx, "shmipc.ack_plain_queue_64B_1p1c_throughput", 64, 1, 1, plan);
        QueueScenario.Throughput(ctx, "shmipc.ack_queue_64B_1p1c_throughput", 64, 1, 1, plan, acknowledged: true);
        QueueScenario.Throughput(ctx, "shmipc.ack_joinable_queue_64B_1p1c_throughput", 64, 1, 1, plan, joinable: true);
        ctx.Note("shmipc.ack_*_1p1c: the queue scenario's harness (producer on CPU 1, consumer on CPU 0); the acknowledged consumer does Take, reads the first byte, Ack; the joinable one Dequeue, then TaskDone (and its producer counts each put)");
        Redelivery(ctx, ctx.Plan(10, 5));
    }

    /// <summary>
    /// Each sample: a child takes the one message and says TAKEN; a parent thread waits in Take; the parent SIGKILLs the
    /// child and times until the waiting Take returns the message (delivery 2). One child process per sample.
    /// </summary>
    private static void Redelivery(HarnessContext ctx, RunPlan plan)
    {
        ctx.Progress.Step("Acknowledged queue: redelivery after SIGKILL");
        string name = Foundation.NewSegmentName("ackq");
        using ShmQueue queue = ShmQueue.Create(name, new ShmQueueOptions { Capacity = 1 << 16, Acknowledged = true });
        ctx.Latency("shmipc.ack_redelivery", plan with { Warmup = 1 }, n =>
        {
            long[] ticks = new long[n];
            for (int i = 0; i < n; i++)
            {
                queue.Enqueue([1, 2, 3]);
                using Process holder = ChildProcesses.Start("queue-ack-hold", null, name);
                ChildProcesses.Expect(holder, "READY");
                ChildProcesses.Expect(holder, "TAKEN");
                ShmDelivery again = default;
                using var waiting = new ManualResetEventSlim();
                var consumer = new Thread(() =>
                {
                    waiting.Set();
                    again = queue.Take(TimeSpan.FromSeconds(30));
                })
                { IsBackground = true, Name = "waiting consumer" };
                consumer.Start();
                waiting.Wait();
                SpinWait.SpinUntil(() => queue.SleepingConsumers > 0, TimeSpan.FromSeconds(5)); // the consumer is asleep in Take
                long killed = Stopwatch.GetTimestamp();
                holder.Kill();
                consumer.Join();
                ticks[i] = Stopwatch.GetTimestamp() - killed;
                if (again.DeliveryCount != 2)
                {
                    throw new InvalidOperationException($"the redelivered message had delivery count {again.DeliveryCount}");
                }

                again.Ack();
                holder.WaitForExit(10_000);
            }

            return ticks;
        });
        ctx.Note("shmipc.ack_redelivery: one child per sample takes the message and is SIGKILLed right after a parent thread fell asleep in Take (default strategy; Take sleeps in slices of at most 20 ms and looks for dead takers before each), so a sample is close to a whole slice: the worst case, not the average");
    }
}
