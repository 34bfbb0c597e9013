using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using ShmIpc.Bench.Baselines;
using ShmIpc.Bench.Children;
using ShmIpc.Bench.Harness;
using ShmIpc.Memory;
using ShmIpc.Signaling;

namespace ShmIpc.Bench.Scenarios;

/// <summary>
/// queue: one-way throughput of 64 B, 1 KiB and 64 KiB messages from producer processes to consumer
/// processes, 1 to 1 and 2 to 2. Baselines: the C SPSC rings, the best-practice one (issue 16: header commit per
/// message, each run back to back with a run of the 64 B 1p1c queue; tail commit; batched) and the old naive one
/// (history, also back to back; and batched), the UDS
/// one-write-per-message stream, Python's Queue.
/// </summary>
internal sealed class QueueScenario : IScenario
{
    private const int KiB = 1024;

    public string Name => "queue";

    public string Title => "Queue: messages between producer and consumer processes";

    public void Run(HarnessContext ctx)
    {
        // Back to back with the C SPSC rings: before each run of the queue, one run of the old naive ring (history) and
        // one of the best-practice ring (header commit, the floor of issue 16), which the pair compares with.
        Throughput(ctx, "shmipc.queue_64B_1p1c_throughput", 64, 1, 1, ctx.Plan(10_000_000, 100_000),
            new Pairing("pair.queue_64B_1p1c_per_c_best_spsc", "shmipc.queue_64B_1p1c_throughput", "c.best_spsc_64B_throughput", _ =>
            {
                NativeBaselines.SpscRingOnce(ctx);
                NativeBaselines.BestSpscOnce(ctx);
            }));
        Throughput(ctx, "shmipc.queue_64B_2p2c_throughput", 64, 2, 2, ctx.Plan(10_000_000, 100_000));
        ThreadsThroughput(ctx, "shmipc.queue_64B_1p1c_threads_throughput", 64, ctx.Plan(4_000_000, 100_000));
        BurstThroughput(ctx, "shmipc.queue_64B_burst_1t_throughput", 1, ctx.Plan(2_000_000, 100_000));
        BurstThroughput(ctx, "shmipc.queue_64B_burst_2t_throughput", 2, ctx.Plan(2_000_000, 100_000));
        Throughput(ctx, "shmipc.queue_1KiB_1p1c_throughput", KiB, 1, 1, ctx.Plan(2_000_000, 20_000));
        Throughput(ctx, "shmipc.queue_1KiB_2p2c_throughput", KiB, 2, 2, ctx.Plan(2_000_000, 20_000));
        Throughput(ctx, "shmipc.queue_64KiB_1p1c_throughput", 64 * KiB, 1, 1, ctx.Plan(50_000, 1_000));
        Throughput(ctx, "shmipc.queue_64KiB_2p2c_throughput", 64 * KiB, 2, 2, ctx.Plan(50_000, 1_000));
        ctx.Note("shmipc.queue_*_1p1c: producer process on CPU 1, consumer process on CPU 0; *_2p2c: four processes, not pinned, on the machine's CPUs; " +
            "default wait strategy; a run is timed from the parent's go to the later of the consumers' Stopwatch stamps of each producer's last message");
        ctx.Note($"fence: {FenceScenario.Describe()}");
        ctx.Note("shmipc.queue: capacity 1 MiB (4 MiB for 64 KiB messages); consumers use the allocation-free Dequeue(Span<byte>, timeout)");

        NativeBaselines.SpscRingBatched(ctx);
        NativeBaselines.BestSpscTailAndBatched(ctx);
        DotnetBaselines.UdsStreamPerMessage(ctx);
        PythonBaselines.QueueThroughput(ctx);
    }

    /// <summary>
    /// One process, one <see cref="ShmQueue"/> object, a producer thread and a consumer thread (not pinned): the figure of an
    /// application that hands messages between its own threads through the queue it also shares with other processes.
    /// Each run starts both threads and ends when the consumer has the last message.
    /// </summary>
    private static void ThreadsThroughput(HarnessContext ctx, string name, int size, RunPlan plan)
    {
        ctx.Progress.Step($"ShmIpc queue {size} B, producer thread -> consumer thread of one process");
        using ShmQueue queue = ShmQueue.Create(Foundation.NewSegmentName("queue-threads"), new ShmQueueOptions { Capacity = 1 << 20, MaxMessageLength = size });
        ctx.Rate(name, "msg/s", plan, n =>
        {
            long start = 0;
            using var go = new ManualResetEventSlim();
            var producer = new Thread(() =>
            {
                byte[] message = new byte[size];
                go.Wait();
                for (int i = 0; i < n; i++)
                {
                    queue.Enqueue(message);
                }
            }) { Name = "queue producer thread" };
            long end = 0;
            var consumer = new Thread(() =>
            {
                byte[] buffer = new byte[size];
                for (int i = 0; i < n; i++)
                {
                    queue.Dequeue(buffer, TimeSpan.FromSeconds(60));
                }

                end = Stopwatch.GetTimestamp();
            }) { Name = "queue consumer thread" };
            consumer.Start();
            producer.Start();
            start = Stopwatch.GetTimestamp(); // both threads exist: their start-up is not timed
            go.Set();
            producer.Join();
            consumer.Join();
            return end - start;
        }, size);
        ctx.Note("shmipc.queue_64B_1p1c_threads: one process, one ShmQueue object used by a producer thread and a consumer thread (not pinned), capacity 1 MiB");
    }

    /// <summary>
    /// Bursts, in one process: <paramref name="threads"/> threads write a burst of <see cref="BurstMessages"/> 64 B messages
    /// into the queue between them, then the same threads drain it, and so on (the queue holds no message at the start of
    /// a burst, but up to three quarters of its ring in consumed records not yet reclaimed: a burst includes reclaim work).
    /// With two threads on two cores, two producers (then two consumers) run at once on free cores: the figure of
    /// contention on Tail and ReadPosition without oversubscription (Signaling/LostRace.cs). One thread: the same work
    /// without contention.
    /// </summary>
    private static void BurstThroughput(HarnessContext ctx, string name, int threads, RunPlan plan)
    {
        const int size = 64;
        ctx.Progress.Step($"ShmIpc queue {size} B bursts, {threads} producer thread(s) then {threads} consumer thread(s)");
        using ShmQueue queue = ShmQueue.Create(Foundation.NewSegmentName("queue-burst"), new ShmQueueOptions { Capacity = 1 << 20, MaxMessageLength = size });
        ctx.Rate(name, "msg/s", plan, n =>
        {
            int bursts = Math.Max(1, n / BurstMessages);
            using var phase = new Barrier(threads);
            long start = 0, end = 0;
            var workers = new Thread[threads];
            for (int t = 0; t < threads; t++)
            {
                bool first = t == 0;
                workers[t] = new Thread(() =>
                {
                    byte[] message = new byte[size];
                    phase.SignalAndWait();
                    if (first)
                    {
                        start = Stopwatch.GetTimestamp();
                    }

                    for (int b = 0; b < bursts; b++)
                    {
                        for (int i = 0; i < BurstMessages / threads; i++)
                        {
                            queue.Enqueue(message);
                        }

                        phase.SignalAndWait();
                        for (int i = 0; i < BurstMessages / threads; i++)
                        {
                            queue.Dequeue(message, TimeSpan.FromSeconds(60));
                        }

                        phase.SignalAndWait();
                    }

                    if (first)
                    {
                        end = Stopwatch.GetTimestamp();
                    }
                }) { Name = "queue burst thread" };
            }

            foreach (Thread worker in workers)
            {
                worker.Start();
            }

            foreach (Thread worker in workers)
            {
                worker.Join();
            }

            // The rate is of the messages moved: bursts x BurstMessages, which is n rounded down to whole bursts.
            return (end - start) * n / ((long)bursts * BurstMessages);
        }, size);
        ctx.Note($"shmipc.queue_64B_burst_*t: one process, one ShmQueue object (1 MiB), bursts of {BurstMessages} messages written by the threads between them into the empty queue, then drained by the same threads; not pinned");
    }

    /// <summary>Messages in one burst of <see cref="BurstThroughput"/> (fits the 1 MiB ring: 96 B records).</summary>
    private const int BurstMessages = 8192;

    /// <summary>
    /// <paramref name="producers"/> "queue-producer" processes enqueue a run's n messages of
    /// <paramref name="size"/> bytes between them; <paramref name="consumers"/> "queue-consumer" processes
    /// dequeue them. The parent only starts a run (one semaphore post per producer) and collects the consumers'
    /// timestamps of the producers' last messages; it does not touch the queue until the end. With
    /// <paramref name="pairing"/>, one run of its baseline before each run (the children wait meanwhile: the
    /// producers on their go semaphores, the consumers asleep in Dequeue). With <paramref name="spin"/>, every child waits with
    /// that SpinDuration before it sleeps (null: the default strategy's). With <paramref name="acknowledged"/>, the queue is
    /// acknowledged and the consumers take and ack each message (AcknowledgedScenario); with <paramref name="joinable"/>, the
    /// queue is joinable and the consumers call TaskDone after each message. With <paramref name="ringOnly"/> (one producer), the
    /// children use the queue's ring alone ("queue-ring-*" roles: ChildRoles.QueueRingProducer).
    /// </summary>
    public static void Throughput(HarnessContext ctx, string name, int size, int producers, int consumers, RunPlan plan, Pairing? pairing = null, TimeSpan? spin = null,
        bool acknowledged = false, bool joinable = false, bool ringOnly = false)
    {
        ctx.Progress.Step($"ShmIpc queue {(size >= KiB ? $"{size / KiB} KiB" : $"{size} B")}, {producers} producer(s) -> {consumers} consumer(s){(spin is TimeSpan s ? $", spin {s.TotalMicroseconds} us" : "")}");
        string[] spinArg = spin is TimeSpan us ? [Str((long)us.TotalMicroseconds)] : [];
        bool pin = producers == 1 && consumers == 1;
        string queueName = Foundation.NewSegmentName("queue");
        string controlName = Foundation.NewSegmentName("queue-go");
        var options = new ShmQueueOptions { Capacity = size >= 16 * KiB ? 4 << 20 : 1 << 20, MaxMessageLength = size, Acknowledged = acknowledged, Joinable = joinable };
        using ShmQueue queue = ShmQueue.Create(queueName, options);
        using ShmSegment control = Foundation.CreateRaw(controlName, producers);
        var go = new NamedSemaphore[producers];
        var children = new List<Process>();
        try
        {
            for (int p = 0; p < producers; p++)
            {
                go[p] = control.OpenSemaphore(p);
            }

            var lasts = new BlockingCollection<long>();
            for (int c = 0; c < consumers; c++)
            {
                Process consumer = ChildProcesses.Start(ringOnly ? "queue-ring-consumer" : acknowledged ? "queue-ack-consumer" : joinable ? "queue-join-consumer" : "queue-consumer", pin ? 0 : null, [queueName, Str(size), .. spinArg]);
                children.Add(consumer);
                ChildProcesses.Expect(consumer, "READY");
                var reader = new Thread(() => ReadStamps(consumer, lasts)) { IsBackground = true, Name = "consumer stamps" };
                reader.Start();
            }

            for (int p = 0; p < producers; p++)
            {
                Process producer = ChildProcesses.Start(ringOnly ? "queue-ring-producer" : "queue-producer", pin ? 1 : null,
                    [queueName, controlName, Str(p), Str(size), Str(plan.Warmup), Str(plan.Count), Str(plan.Runs), Str(producers), .. spinArg]);
                children.Add(producer);
                ChildProcesses.Expect(producer, "READY");
            }

            ctx.Rate(name, "msg/s", plan, n =>
            {
                long start = Stopwatch.GetTimestamp();
                foreach (NamedSemaphore semaphore in go)
                {
                    semaphore.Post();
                }

                long end = start;
                for (int p = 0; p < producers; p++)
                {
                    if (!lasts.TryTake(out long stamp, TimeSpan.FromSeconds(120)))
                    {
                        throw new TimeoutException($"{name}: the consumers did not see every producer's last message within 120 s.");
                    }

                    end = Math.Max(end, stamp);
                }

                return end - start;
            }, size, pairing);

            byte[] stop = [ChildRoles.QueueStop];
            for (int c = 0; c < consumers; c++)
            {
                queue.Enqueue(stop);
            }

            foreach (Process child in children)
            {
                ChildProcesses.Join(child, TimeSpan.FromSeconds(30));
            }
        }
        finally
        {
            foreach (NamedSemaphore? semaphore in go)
            {
                semaphore?.Dispose();
            }

            foreach (Process child in children)
            {
                child.Dispose();
            }

            control.Unlink();
        }
    }

    /// <summary>Collects the "LAST timestamp" lines a consumer prints (Stopwatch ticks: CLOCK_MONOTONIC, the same in every process).</summary>
    private static void ReadStamps(Process consumer, BlockingCollection<long> lasts)
    {
        try
        {
            string? line;
            while ((line = consumer.StandardOutput.ReadLine()) is not null)
            {
                if (line.StartsWith("LAST ", StringComparison.Ordinal))
                {
                    lasts.Add(long.Parse(line.AsSpan(5), CultureInfo.InvariantCulture));
                }
            }
        }
        catch (Exception e) when (e is IOException or InvalidOperationException or ObjectDisposedException)
        {
            // The consumer is gone (end of the scenario, or Ctrl+C).
        }
    }

    private static string Str(long v) => v.ToString(CultureInfo.InvariantCulture);
}
