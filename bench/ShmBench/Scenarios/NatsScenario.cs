using System.Diagnostics;
using System.Globalization;
using NATS.Client.Core;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;
using ShmIpc.Bench.Baselines;
using ShmIpc.Bench.Harness;
using ShmIpc.Hosting;
using ShmIpc.Nats;
using ShmIpc.Nats.Internal;
using ShmIpc.Nats.Tests;

namespace ShmIpc.Bench.Scenarios;

/// <summary>
/// nats: the pool across hosts (issue 19) with its workers on loopback. NatsPool(2 local workers) Apply round trip beside
/// a bare NATS.Net request-reply of the same bytes, each run just after a run of the other; Map over 1M ints beside
/// Python's Pool(2).map and ShmPool(2)'s Map; the CPU-bound Map on 1 and 2 workers. Starts its own nats-server (free
/// loopback port, temporary store); skipped with a note when nats-server is not installed.
/// </summary>
internal sealed class NatsScenario : IScenario
{
    private const int MapItems = 1_000_000;

    public string Name => "nats";

    public string Title => "NATS pool: apply vs bare request-reply, map vs Python and ShmPool, CPU-bound scaling";

    public void Run(HarnessContext ctx)
    {
        NatsServer server;
        try
        {
            server = NatsServer.Start();
        }
        catch (InvalidOperationException e)
        {
            ctx.Note($"scenario skipped: {e.Message}");
            return;
        }

        using (Cleanup.Own(server))
        {
            using (NatsPool two = Cleanup.Own(StartPool(server, "bench2", 2)))
            {
                ApplyRoundTrip(ctx, server, two, ctx.Plan(5_000));
                WorkQueueRoundTrip(ctx, server, ctx.Plan(5_000));
                MapThroughput(ctx, two);
            }

            CpuBoundScaling(ctx, server, ctx.Plan(400, 40));
        }

        PythonBaselines.PoolMap(ctx);
    }

    private static NatsPool StartPool(NatsServer server, string name, int workers, bool durable = true)
    {
        var pool = new NatsPool(new NatsPoolOptions { Url = server.Url, PoolName = name, LocalWorkers = workers, Durable = durable });
        if (!pool.WaitForWorkers(workers, TimeSpan.FromSeconds(60)))
        {
            pool.Dispose();
            throw new InvalidOperationException($"NATS pool '{name}': {workers} local workers did not announce themselves within 60 s.");
        }

        return pool;
    }

    /// <summary>
    /// NatsPool Apply of the trivial function (shmipc.nats_apply_rtt_*), each run just after a run of bare request-reply
    /// round trips of the same task bytes to an echo responder in another process (nats.request_reply_rtt_*), their ratio
    /// pair.nats_apply_per_request_reply. One second of each first (tiered compilation in every process).
    /// </summary>
    private static void ApplyRoundTrip(HarnessContext ctx, NatsServer server, NatsPool pool, RunPlan plan)
    {
        ctx.Progress.Step("NatsPool(2 workers).Apply round trip vs bare NATS request-reply");
        IShmObjectSerializer serializer = ShmMessagePackSerializer.Instance;
        byte[] payload = TaskWire.WriteTask(SerializerFactory.Describe(serializer, "serializer"), serializer,
            TargetMethod.From(PoolTargets.Identity, "function"), new ArraySegment<int>([12345]));
        string subject = "bench.echo." + Guid.NewGuid().ToString("N");
        using ShmProcess echo = Cleanup.Own(ShmProcess.Start(static (string[] a) => NatsEcho.Serve(a[0], a[1]), [server.Url, subject],
            new ShmProcessOptions { Name = "nats-echo" }));
        var connection = new NatsConnection(new NatsOpts { Url = server.Url, Name = "bench request-reply" });
        try
        {
            connection.ConnectAsync().AsTask().Wait(TimeSpan.FromSeconds(10));
            Measure(ctx, pool, plan, echo, connection, subject, payload, "shmipc.nats_apply_rtt", "nats.request_reply_rtt", "pair.nats_apply_per_request_reply");
            using NatsPool direct = Cleanup.Own(StartPool(server, "bench2d", 2, durable: false));
            Measure(ctx, direct, plan, echo, connection, subject, payload, "shmipc.nats_direct_apply_rtt", "nats.request_reply_beside_direct_rtt",
                "pair.nats_direct_apply_per_request_reply");
        }
        finally
        {
            connection.DisposeAsync().AsTask().Wait(TimeSpan.FromSeconds(5));
            echo.Kill();
        }
    }

    private static void Measure(HarnessContext ctx, NatsPool pool, RunPlan plan, ShmProcess echo, NatsConnection connection, string subject, byte[] payload,
        string figure, string baseline, string pair)
    {
        long[] RequestRun(int n)
        {
            long[] ticks = new long[n];
            for (int i = 0; i < n; i++)
            {
                long start = Stopwatch.GetTimestamp();
                NatsMsg<byte[]> reply = RequestOnce(connection, subject, payload);
                ticks[i] = Stopwatch.GetTimestamp() - start;
                if (reply.Data is not { } data || data.Length != payload.Length)
                {
                    throw new InvalidOperationException("The NATS echo answered something else.");
                }
            }

            return ticks;
        }

        // The responder subscribes asynchronously: wait (with a deadline) until it answers.
        long deadline = Environment.TickCount64 + 30_000;
        while (!TryRequest(connection, subject, payload))
        {
            if (Environment.TickCount64 > deadline || !echo.IsAlive)
            {
                throw new InvalidOperationException($"The NATS echo process did not answer on {subject} within 30 s.");
            }
        }

        for (long until = Stopwatch.GetTimestamp() + Stopwatch.Frequency; Stopwatch.GetTimestamp() < until;)
        {
            RequestRun(200);
            CpuBoundMaps.TimedApplies(pool, 200);
        }

        // Each pairing has its own baseline series: a pair is recorded only while both series have one value per run.
        var pairing = new Pairing(pair, figure + "_median", baseline + "_median",
            _ => ctx.RecordLatency(baseline, LatencyStats.From(RequestRun(plan.Count), plan.Count)));
        ctx.Latency(figure, plan, n => CpuBoundMaps.TimedApplies(pool, n), pairing);
        ctx.Note(string.Create(CultureInfo.InvariantCulture,
            $"{figure}: NatsPool with 2 local workers on a local nats-server -js; {baseline}: NATS.Net RequestAsync of the same {payload.Length} B task body to an echo subscriber in another process, each run just before; {pair} is their ratio"));
    }

    /// <summary>
    /// What limits the Apply round trip: the floor of any durable work queue on JetStream, measured bare. Each round trip
    /// publishes the same task bytes to a file-backed work-queue stream; an echo process pulls it (one at a time, as a pool
    /// worker), publishes it back on a core subject and acks it: nats.js_work_queue_rtt_*, paired with the NatsPool Apply
    /// run that precedes it (pair.nats_apply_per_js_work_queue: our overhead on top of JetStream).
    /// </summary>
    private static void WorkQueueRoundTrip(HarnessContext ctx, NatsServer server, RunPlan plan)
    {
        ctx.Progress.Step("bare JetStream work-queue round trip (the floor of a durable task)");
        string id = Guid.NewGuid().ToString("N")[..12];
        string stream = "BENCHWQ_" + id;
        string subject = "bench.wq." + id;
        string replies = "bench.wqr." + id;
        var connection = new NatsConnection(new NatsOpts { Url = server.Url, Name = "bench work queue" });
        ShmProcess? echo = null;
        try
        {
            connection.ConnectAsync().AsTask().Wait(TimeSpan.FromSeconds(10));
            var js = new NatsJSContext(connection);
            js.CreateStreamAsync(new StreamConfig(stream, [subject]) { Retention = StreamConfigRetention.Workqueue, Storage = StreamConfigStorage.File })
                .AsTask().Wait(TimeSpan.FromSeconds(30));
            js.CreateOrUpdateConsumerAsync(stream, new ConsumerConfig("echo") { AckPolicy = ConsumerConfigAckPolicy.Explicit, AckWait = TimeSpan.FromSeconds(5) })
                .AsTask().Wait(TimeSpan.FromSeconds(30));
            INatsSub<byte[]> back = connection.SubscribeCoreAsync<byte[]>(replies).AsTask().GetAwaiter().GetResult();
            echo = Cleanup.Own(ShmProcess.Start(static (string[] a) => NatsEcho.ServeWorkQueue(a[0], a[1]), [server.Url, stream],
                new ShmProcessOptions { Name = "nats-wq-echo" }));
            IShmObjectSerializer serializer = ShmMessagePackSerializer.Instance;
            byte[] payload = TaskWire.WriteTask(SerializerFactory.Describe(serializer, "serializer"), serializer,
                TargetMethod.From(PoolTargets.Identity, "function"), new ArraySegment<int>([12345]));
            var headers = new NatsHeaders { [NatsEcho.WorkQueueReply] = replies };
            long[] Run(int n)
            {
                long[] ticks = new long[n];
                for (int i = 0; i < n; i++)
                {
                    long start = Stopwatch.GetTimestamp();
                    Task<PubAckResponse> stored = js.PublishAsync(subject, payload, headers: headers).AsTask();
                    using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
                    NatsMsg<byte[]> reply = back.Msgs.ReadAsync(timeout.Token).AsTask().GetAwaiter().GetResult();
                    ticks[i] = Stopwatch.GetTimestamp() - start;
                    stored.GetAwaiter().GetResult().EnsureSuccess();
                    if (reply.Data?.Length != payload.Length)
                    {
                        throw new InvalidOperationException("The work-queue echo answered something else.");
                    }
                }

                return ticks;
            }

            for (long until = Stopwatch.GetTimestamp() + Stopwatch.Frequency; Stopwatch.GetTimestamp() < until;)
            {
                Run(200);
            }

            ctx.Latency("nats.js_work_queue_rtt", plan, Run);
            ctx.Note("nats.js_work_queue_rtt: publish the task bytes to a file-backed JetStream work-queue stream, an echo process pulls it (one at a time), publishes it back on a core subject and acks it: the floor of a durable, acknowledged task");
        }
        finally
        {
            echo?.Kill();
            echo?.Dispose();
            connection.DisposeAsync().AsTask().Wait(TimeSpan.FromSeconds(5));
        }
    }

    private static NatsMsg<byte[]> RequestOnce(NatsConnection connection, string subject, byte[] payload) =>
        connection.RequestAsync<byte[], byte[]>(subject, payload, replyOpts: new NatsSubOpts { Timeout = TimeSpan.FromSeconds(10) }).AsTask().GetAwaiter().GetResult();

    private static bool TryRequest(NatsConnection connection, string subject, byte[] payload)
    {
        try
        {
            _ = connection.RequestAsync<byte[], byte[]>(subject, payload, replyOpts: new NatsSubOpts { Timeout = TimeSpan.FromMilliseconds(500) })
                .AsTask().GetAwaiter().GetResult();
            return true;
        }
        catch (Exception e) when (e is NatsNoRespondersException or NatsNoReplyException or TimeoutException)
        {
            return false;
        }
    }

    /// <summary>
    /// Map of the trivial function over 1M ints, default chunking: NatsPool(2 workers) (shmipc.nats_map_1M_throughput),
    /// each run just after a run of ShmPool(2)'s (shmipc.pool2_map_1M_beside_nats_throughput); their ratio
    /// pair.nats_map_per_pool2_map.
    /// </summary>
    private static void MapThroughput(HarnessContext ctx, NatsPool pool)
    {
        ctx.Progress.Step("NatsPool(2 workers).Map over 1M ints vs ShmPool(2)");
        int[] items = Enumerable.Range(0, MapItems).ToArray();
        using ShmPool shm = Cleanup.Own(new ShmPool(2));
        long TimeMap(IShmPool on, int n)
        {
            int[] input = n == items.Length ? items : items[..n];
            long start = Stopwatch.GetTimestamp();
            int[] results = on.Map(PoolTargets.Identity, input);
            long ticks = Stopwatch.GetTimestamp() - start;
            if (results.Length != n || results[^1] != n - 1)
            {
                throw new InvalidOperationException("Map returned wrong results.");
            }

            return ticks;
        }

        var pairing = new Pairing("pair.nats_map_per_pool2_map", "shmipc.nats_map_1M_throughput", "shmipc.pool2_map_1M_beside_nats_throughput",
            _ => ctx.RecordRate("shmipc.pool2_map_1M_beside_nats_throughput", "items/s", MapItems * (double)Stopwatch.Frequency / TimeMap(shm, MapItems)));
        ctx.Rate("shmipc.nats_map_1M_throughput", "items/s", new RunPlan(MapItems, 10_000, ctx.Options.Runs), n => TimeMap(pool, n), pairing: pairing);
        ctx.Note("shmipc.nats_map_1M_throughput: default chunking (about four chunks per live worker, as Python's Pool.map), each run just after a run of ShmPool(2)'s Map (shmipc.pool2_map_1M_beside_nats_throughput)");
    }

    /// <summary>The pool scenario's CPU-bound Map (~1 ms items, chunk size 1) on NatsPool with 1 and with 2 local workers: shmipc.nats_cpu_bound_scaling.</summary>
    private static void CpuBoundScaling(HarnessContext ctx, NatsServer server, RunPlan plan)
    {
        ctx.Progress.Step("NatsPool CPU-bound Map on 1 and 2 workers");
        int perMs = PoolTargets.IterationsPerMillisecond();
        using NatsPool one = Cleanup.Own(StartPool(server, "bench1", 1));
        using NatsPool two = Cleanup.Own(StartPool(server, "bench2cpu", 2));
        foreach ((double t1, double t2) in CpuBoundMaps.Compare(ctx, plan, perMs, one, two, warmSeconds: 1))
        {
            ctx.Record("shmipc.nats1_cpu_bound_ms", "ms", t1);
            ctx.Record("shmipc.nats2_cpu_bound_ms", "ms", t2);
            ctx.Record("shmipc.nats_cpu_bound_scaling", "ratio", t1 / t2);
        }

        ctx.Note(string.Create(CultureInfo.InvariantCulture,
            $"shmipc.nats_cpu_bound_scaling: Map of {plan.Count} items of ~1 ms ({perMs} xorshift steps), chunk size 1, NatsPool 1 worker time / 2 workers time; nats-server and the caller share the same 2 CPUs"));
    }
}

/// <summary>The bare request-reply peer of the nats scenario: answers every request on a subject with its own bytes.</summary>
internal static class NatsEcho
{
    public static void Serve(string url, string subject) => ServeAsync(url, subject).GetAwaiter().GetResult();

    /// <summary>
    /// The JetStream floor's peer: takes each message off work-queue stream <paramref name="stream"/> (pull consumer
    /// "echo", one at a time as a pool worker does), publishes its bytes to the subject in its reply header, then acks it.
    /// </summary>
    public static void ServeWorkQueue(string url, string stream) => ServeWorkQueueAsync(url, stream).GetAwaiter().GetResult();

    private static async Task ServeWorkQueueAsync(string url, string stream)
    {
        await using var connection = new NatsConnection(new NatsOpts { Url = url, Name = "bench work-queue echo" });
        var js = new NatsJSContext(connection);
        INatsJSConsumer consumer = await js.GetConsumerAsync(stream, "echo").ConfigureAwait(false);
        var next = new NatsJSNextOpts { Expires = TimeSpan.FromSeconds(5) };
        while (true)
        {
            if (await consumer.NextAsync<byte[]>(opts: next).ConfigureAwait(false) is not { } message)
            {
                continue;
            }

            await connection.PublishAsync(message.Headers![WorkQueueReply][0]!, message.Data).ConfigureAwait(false);
            await message.AckAsync().ConfigureAwait(false);
        }
    }

    /// <summary>The header naming where the work-queue echo sends a message's bytes.</summary>
    public const string WorkQueueReply = "Bench-Reply";

    private static async Task ServeAsync(string url, string subject)
    {
        await using var connection = new NatsConnection(new NatsOpts { Url = url, Name = "bench echo" });
        await foreach (NatsMsg<byte[]> message in connection.SubscribeAsync<byte[]>(subject).ConfigureAwait(false))
        {
            await message.ReplyAsync(message.Data).ConfigureAwait(false);
        }
    }
}
