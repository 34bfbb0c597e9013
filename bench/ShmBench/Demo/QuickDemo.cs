using System.Diagnostics;
using System.Globalization;
using System.Text;
using ShmIpc.Bench.Baselines;
using ShmIpc.Bench.Harness;
using ShmIpc.Bench.Scenarios;

namespace ShmIpc.Bench.Demo;

/// <summary>
/// "quick", the README's first command: the Python multiprocessing tutorial's classic scenes done with
/// ShmIpc between real processes, then a compact table of headline figures beside a .NET Unix domain
/// socket measured in the same run. Well under a minute; cleans up everything, also on Ctrl+C (our
/// segments are registered with <see cref="Cleanup"/>; ShmProcess and ShmPool children die with us).
/// </summary>
internal static partial class QuickDemo
{
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(30);

    /// <summary>A scene of the demo.</summary>
    private sealed record Scene(string Title, Action<HarnessContext> Run);

    /// <summary>A row of the final table: the ShmIpc figure beside the UDS figure.</summary>
    private sealed record Row(string Label, string ShmIpcFigure, string BaselineFigure);

    private static readonly Scene[] s_scenes =
    [
        new("Processes: start three workers, join them, collect their results", StartJoinCollect),
        new("Queue: three producer processes fill it, the parent drains it", QueueScene),
        new("Pipe: echo between two processes", PipeScene),
        new("Async: await a pipe ping-pong between two processes; a ChannelReader over a queue", AsyncScene),
        new("Pipe shared: one end passed to three processes, each sends; then Queue.Shutdown and ShmWait.WaitAny", SharingScene),
        new("Shared state: two processes add to one ShmValue under its lock, started together by a ShmEvent", SharedStateScene),
        new("Pool: Map, Imap, ApplyAsync(...).Get(timeout)", PoolScene),
        new("Zero copy: a loaned write into a queue; MapInPlace over a shared array on Pool(2)", ZeroCopyScene),
        new("Large message: one 64 MiB message through a queue from another process (a side segment)", LargeMessageScene),
        new("Acknowledged queue: a worker process takes a job and is killed with SIGKILL; the job comes back", AcknowledgedScene),
        new(".NET Unix domain socket, the same figures for comparison", UdsBaselines),
    ];

    private static readonly Row[] s_rows =
    [
        new("Pipe 8 B round trip", "shmipc.pipe_8B_rtt_median", "dotnet.uds_8B_rtt_median"),
        new("Awaited pipe round trip", "shmipc.async_pipe_8B_rtt_median", "dotnet.uds_8B_rtt_median"),
        new("Queue 64 B throughput", "shmipc.queue_64B_1p1c_throughput", "dotnet.uds_64B_stream_throughput"),
        new("Pool apply round trip", "shmipc.pool2_apply_rtt_median", "dotnet.uds_8B_rtt_median"),
    ];

    public static int Run()
    {
        var options = new HarnessOptions(Quick: true, Scale: 1, Runs: 1, IdleWindow: TimeSpan.FromSeconds(2), Save: false);
        var ctx = new HarnessContext(options, new Progress()) { Scenario = "quick" };
        Console.WriteLine($"ShmIpc quick demo on {Environment.ProcessorCount} cores, .NET {Environment.Version}, parent pid {Environment.ProcessId}");
        for (int i = 0; i < s_scenes.Length; i++)
        {
            ctx.Progress.Stage(i + 1, s_scenes.Length, "quick");
            ctx.Progress.Line("");
            ctx.Progress.Line($"{i + 1}. {s_scenes[i].Title}");
            ctx.Progress.Step(s_scenes[i].Title);
            s_scenes[i].Run(ctx);
        }

        ctx.Progress.Done();
        PrintTable(ctx);
        Console.WriteLine();
        foreach (Figure f in ctx.Figures().Where(f => f.Name.EndsWith("_median", StringComparison.Ordinal) || f.Unit != "ns"))
        {
            Console.WriteLine(f.ToLine());
        }

        Console.WriteLine($"done in {ctx.Progress.Elapsed.TotalSeconds:0.0} s; all figures and goals: dotnet run -c Release --project bench/ShmBench -- full");
        return 0;
    }

    /// <summary>Scene 1: ShmProcess.Start of a static method three times; pids, results, exit codes.</summary>
    private static void StartJoinCollect(HarnessContext ctx)
    {
        const int Workers = 3;
        const long N = 3_000_000;
        var children = new ShmProcess<long>[Workers];
        try
        {
            for (int w = 0; w < Workers; w++)
            {
                (long From, long To) range = (N * w / Workers, N * (w + 1) / Workers);
                children[w] = Cleanup.Own(ShmProcess.Start(DemoTargets.SumOfSquares, range));
                ctx.Progress.Line($"   ShmProcess.Start(SumOfSquares, [{range.From}, {range.To})) -> pid {children[w].Pid}");
            }

            long total = 0;
            foreach (ShmProcess<long> child in children)
            {
                long result = child.GetResult(s_timeout);
                child.Join(s_timeout);
                total += result;
                ctx.Progress.Line($"   pid {child.Pid}: GetResult = {result}, Join, ExitCode = {child.ExitCode}");
            }

            long expected = DemoTargets.SumOfSquares((0, N));
            ctx.Progress.Line($"   sum of squares below {N}: {total} from the children, {(total == expected ? "matches" : "DIFFERS FROM")} the parent's own {expected}");
        }
        finally
        {
            foreach (ShmProcess<long>? child in children)
            {
                child?.Dispose();
            }
        }
    }

    /// <summary>Scene 2: three ShmProcess producers open a queue by name and fill it; the parent drains it. Then the headline throughput.</summary>
    private static void QueueScene(HarnessContext ctx)
    {
        const int Producers = 3;
        const int PerProducer = 10_000;
        string name = Foundation.NewSegmentName("demo-queue");
        using (var queue = ShmQueue.Create(name, new ShmQueueOptions { Capacity = 64 * 1024 }))
        {
            ctx.Progress.Line($"   ShmQueue.Create(\"{name}\", 64 KiB): smaller than what the producers send, so they also wait for room");
            var producers = new ShmProcess<int>[Producers];
            try
            {
                for (int p = 0; p < Producers; p++)
                {
                    producers[p] = Cleanup.Own(ShmProcess.Start(DemoTargets.Produce, (name, p, PerProducer)));
                    ctx.Progress.Line($"   producer {p}: pid {producers[p].Pid}, ShmQueue.Open(name) and {PerProducer} x Enqueue(\"producer {p} message k\")");
                }

                int[] received = new int[Producers];
                bool inOrder = true;
                byte[] buffer = new byte[64];
                for (int i = 0; i < Producers * PerProducer; i++)
                {
                    int length = queue.Dequeue(buffer, s_timeout); // TimeoutException when the producers stop sending

                    // "producer P message K": each producer's messages arrive in the order it sent them.
                    string[] words = Encoding.ASCII.GetString(buffer, 0, length).Split(' ');
                    int producer = int.Parse(words[1], CultureInfo.InvariantCulture);
                    inOrder &= int.Parse(words[3], CultureInfo.InvariantCulture) == received[producer];
                    received[producer]++;
                    if (i is 0 or Producers * PerProducer - 1)
                    {
                        ctx.Progress.Line($"   parent dequeued #{i + 1}: \"{Encoding.ASCII.GetString(buffer, 0, length)}\"");
                    }
                }

                foreach (ShmProcess<int> producer in producers)
                {
                    int sent = producer.GetResult(s_timeout);
                    producer.Join(s_timeout);
                    ctx.Progress.Line($"   pid {producer.Pid}: sent {sent}, exit code {producer.ExitCode}");
                }

                ctx.Progress.Line($"   drained {received.Sum()} messages ({string.Join(" + ", received)}), each producer's in its order: {(inOrder ? "yes" : "NO")}; left in the queue: {queue.Count}");
            }
            finally
            {
                foreach (ShmProcess<int>? producer in producers)
                {
                    producer?.Dispose();
                }
            }
        }

        ctx.Progress.Line("   throughput: 64 B messages, one producer process -> one consumer process (pinned to CPUs 1 and 0)");
        QueueScenario.Throughput(ctx, "shmipc.queue_64B_1p1c_throughput", 64, 1, 1, new RunPlan(2_000_000, 200_000, 1));
        double? rate = ctx.ValueOf("shmipc.queue_64B_1p1c_throughput");
        ctx.Progress.Line($"   shmipc.queue_64B_1p1c_throughput: {(rate is double r ? Figure.Humanize(r, "msg/s") : "-")}");
    }

    /// <summary>
    /// The Python tutorial's Pipe scene: the parent passes the same end to three children, each sends one message, the
    /// parent receives three. Then two consumer processes drain a queue until a Shutdown, the parent waiting on both
    /// processes and on the queue at once with ShmWait.WaitAny.
    /// </summary>
    private static void SharingScene(HarnessContext ctx)
    {
        string pipeName = Foundation.NewSegmentName("demo-shared");
        using (ShmConnection parentEnd = ShmPipe.Create(pipeName))
        using (ShmConnection childEnd = ShmPipe.Connect(pipeName))
        {
            var children = new ShmProcess<int>[3];
            try
            {
                for (int c = 0; c < children.Length; c++)
                {
                    children[c] = Cleanup.Own(ShmProcess.Start(DemoTargets.Greet, (childEnd, c)));
                }

                ctx.Progress.Line($"   ShmPipe \"{pipeName}\": the same end passed to pids {string.Join(", ", children.Select(static c => c.Pid))}");
                for (int i = 0; i < children.Length; i++)
                {
                    if (!parentEnd.TryReceive(out byte[] greeting, s_timeout))
                    {
                        throw new TimeoutException("A child did not send its greeting.");
                    }

                    ctx.Progress.Line($"   parent received \"{Encoding.UTF8.GetString(greeting)}\"");
                }
            }
            finally
            {
                foreach (ShmProcess<int>? child in children)
                {
                    child?.Dispose();
                }
            }
        }

        string queueName = Foundation.NewSegmentName("demo-shutdown");
        using var queue = ShmQueue.Create(queueName);
        var consumers = new ShmProcess<int>[2];
        try
        {
            for (int c = 0; c < consumers.Length; c++)
            {
                consumers[c] = Cleanup.Own(ShmProcess.Start(DemoTargets.TakeUntilShutDown, queueName));
            }

            const int Jobs = 10_000;
            for (int i = 0; i < Jobs; i++)
            {
                queue.Enqueue(BitConverter.GetBytes(i));
            }

            queue.Shutdown();
            ctx.Progress.Line($"   enqueued {Jobs} jobs for consumers {consumers[0].Pid} and {consumers[1].Pid}, then queue.Shutdown(): they drain, then stop");
            var waitables = new List<IShmWaitable>(consumers);
            int total = 0;
            while (waitables.Count > 0)
            {
                int ready = ShmWait.WaitAny(waitables, s_timeout);
                if (ready < 0)
                {
                    throw new TimeoutException("The consumers did not stop after the Shutdown.");
                }

                var done = (ShmProcess<int>)waitables[ready];
                int taken = done.GetResult(s_timeout);
                total += taken;
                ctx.Progress.Line($"   ShmWait.WaitAny -> consumer {done.Pid} ended, having taken {taken} jobs");
                waitables.RemoveAt(ready);
            }

            ctx.Progress.Line($"   {total} of {Jobs} jobs taken, none lost; Enqueue now throws ShmQueueShutDownException: {Throws(() => queue.Enqueue([1]))}");
        }
        finally
        {
            foreach (ShmProcess<int>? consumer in consumers)
            {
                consumer?.Dispose();
            }
        }
    }

    /// <summary>Python's Value + Lock + Event: two children count into one shared value; then the uncontended lock's cost.</summary>
    private static void SharedStateScene(HarnessContext ctx)
    {
        const int PerChild = 200_000;
        using var value = ShmValue<long>.Create(Foundation.NewSegmentName("demo-value"));
        using var go = ShmEvent.Create(Foundation.NewSegmentName("demo-go"));
        var children = new ShmProcess<long>[2];
        try
        {
            for (int c = 0; c < children.Length; c++)
            {
                children[c] = Cleanup.Own(ShmProcess.Start(DemoTargets.AddUnderLock, (value, go, PerChild)));
            }

            ctx.Progress.Line($"   ShmValue<long> \"{value.Name}\" and ShmEvent \"{go.Name}\" passed to pids {children[0].Pid} and {children[1].Pid}");
            go.Set();
            long sent = children.Sum(c => c.GetResult(s_timeout));
            ctx.Progress.Line($"   go.Set(); each child did {PerChild} x (using (value.Lock.Hold()) value.Value++): value = {value.Value} (expected {sent}: {(value.Value == sent ? "exact" : "WRONG")})");
        }
        finally
        {
            foreach (ShmProcess<long>? child in children)
            {
                child?.Dispose();
            }
        }

        const int Rounds = 1_000_000;
        ShmLock lk = value.Lock;
        long start = Stopwatch.GetTimestamp();
        for (int i = 0; i < Rounds; i++)
        {
            lk.Acquire();
            lk.Release();
        }

        double ns = Stopwatch.GetElapsedTime(start).TotalNanoseconds / Rounds;
        ctx.Progress.Line($"   uncontended Acquire + Release: {ns:0.0} ns (the full comparison with a C robust mutex: -- full sync)");
    }

    private static bool Throws(Action action)
    {
        try
        {
            action();
            return false;
        }
        catch (ShmQueueShutDownException)
        {
            return true;
        }
    }

    /// <summary>Scene 3: a ShmProcess echoes on a pipe it connects to by name; a few messages, then the round trip figure.</summary>
    private static void PipeScene(HarnessContext ctx)
    {
        string name = Foundation.NewSegmentName("demo-pipe");
        ShmProcess<long>? echo = null;
        try
        {
            using (ShmConnection pipe = ShmPipe.Create(name))
            {
                echo = Cleanup.Own(ShmProcess.Start(DemoTargets.Echo, (name, 1)));
                ctx.Progress.Line($"   ShmPipe.Create(\"{name}\"); echo process pid {echo.Pid} did ShmPipe.Connect (pinned to CPU 1)");
                foreach (string text in new[] { "hello", "from", $"pid {Environment.ProcessId}" })
                {
                    pipe.Send(Encoding.UTF8.GetBytes(text));
                    ctx.Progress.Line($"   sent \"{text}\", received \"{Encoding.UTF8.GetString(pipe.Receive())}\"");
                }

                byte[] message = new byte[8];
                byte[] reply = new byte[8];
                using (Affinity.PinCurrentThread(0))
                {
                    ctx.Latency("shmipc.pipe_8B_rtt", new RunPlan(100_000, 20_000, 1), n =>
                    {
                        long[] ticks = new long[n];
                        for (int i = 0; i < n; i++)
                        {
                            long start = Stopwatch.GetTimestamp();
                            pipe.Send(message);
                            pipe.ReceiveInto(reply);
                            ticks[i] = Stopwatch.GetTimestamp() - start;
                        }

                        return ticks;
                    });
                }

                ReportLatency(ctx, "shmipc.pipe_8B_rtt");
            }

            ctx.Progress.Line($"   closed our end: the echo returned {echo.GetResult(s_timeout)} (messages echoed), exit code {(echo.Join(s_timeout) ? echo.ExitCode : null)}");
        }
        finally
        {
            echo?.Dispose();
        }
    }

    /// <summary>
    /// Scene: an echo process that awaits; the parent awaits SendAsync/ReceiveAsync and measures the awaited round trip;
    /// then a producer process fills a queue the parent reads through <c>queue.AsChannelReader()</c>.
    /// </summary>
    private static void AsyncScene(HarnessContext ctx)
    {
        string pipeName = Foundation.NewSegmentName("demo-apipe");
        ShmProcess<long>? echo = null;
        try
        {
            using (ShmConnection pipe = ShmPipe.Create(pipeName))
            {
                echo = Cleanup.Own(ShmProcess.Start(DemoTargets.EchoAsync, pipeName));
                ctx.Progress.Line($"   echo process pid {echo.Pid}: await pipe.ReceiveAsync(buffer), await pipe.SendAsync(...) in a loop");
                byte[] message = new byte[8];
                byte[] reply = new byte[8];
                ctx.Latency("shmipc.async_pipe_8B_rtt", new RunPlan(20_000, 5_000, 1), n => AsyncScenario.AwaitedPingPong(pipe, n, message, reply));
                ReportLatency(ctx, "shmipc.async_pipe_8B_rtt");
                ctx.Progress.Line("   (both sides spin briefly before going pending while answers come quickly; a pending call waits on the process's few waiter threads)");
            }

            ctx.Progress.Line($"   closed our end: the echo process answered {echo.GetResult(s_timeout)} awaited messages");
        }
        finally
        {
            echo?.Dispose();
        }

        const int Count = 1_000;
        string queueName = Foundation.NewSegmentName("demo-aqueue");
        using var queue = ShmQueue.Create(queueName, new ShmQueueOptions { Capacity = 16 * 1024 });
        using ShmProcess<int> producer = Cleanup.Own(ShmProcess.Start(DemoTargets.Produce, (queueName, 0, Count)));
        System.Threading.Channels.ChannelReader<byte[]> reader = queue.AsChannelReader();
        int read = Task.Run(async () =>
        {
            int n = 0;
            using var timeout = new CancellationTokenSource(s_timeout);
            while (n < Count && await reader.WaitToReadAsync(timeout.Token).ConfigureAwait(false))
            {
                while (n < Count && reader.TryRead(out _))
                {
                    n++;
                }
            }

            return n;
        }).GetAwaiter().GetResult();
        ctx.Progress.Line($"   producer pid {producer.Pid} enqueued {producer.GetResult(s_timeout)}; queue.AsChannelReader(): WaitToReadAsync + TryRead read {read}");
    }

    /// <summary>Scene 4: Pool(2) Map, Imap, ApplyAsync(...).Get(timeout), then the apply round trip figure.</summary>
    private static void PoolScene(HarnessContext ctx)
    {
        using ShmPool pool = Cleanup.Own(new ShmPool(2));
        ctx.Progress.Line($"   new ShmPool(2): workers {string.Join(", ", pool.WorkerPids)}");
        long[] squares = pool.Map(DemoTargets.Square, Enumerable.Range(1, 10));
        ctx.Progress.Line($"   Map(Square, 1..10) = [{string.Join(", ", squares)}]");
        var lazy = new List<long>();
        foreach (long square in pool.Imap(DemoTargets.Square, Enumerable.Range(1, 100_000), chunkSize: 1000))
        {
            lazy.Add(square);
        }

        ctx.Progress.Line($"   Imap(Square, 1..100000, chunk 1000): {lazy.Count} results in order, first {lazy[0]}, last {lazy[^1]}");
        ShmAsyncResult<long> pending = pool.ApplyAsync(DemoTargets.SlowSquare, 12);
        ctx.Progress.Line($"   ApplyAsync(SlowSquare, 12): ready at once? {pending.IsReady}; Get(TimeSpan.FromSeconds(5)) = {pending.Get(TimeSpan.FromSeconds(5))}");
        int[] ran = pool.Map(DemoTargets.WhoAmI, Enumerable.Range(0, 100_000), chunkSize: 1000);
        ctx.Progress.Line($"   Map(WhoAmI, 100000 items, chunk 1000): {string.Join(", ", ran.GroupBy(p => p).Select(g => $"pid {g.Key} ran {g.Count()}"))}");
        PoolScenario.ApplyRoundTrip(ctx, pool, new RunPlan(3_000, 300, 1));
        ReportLatency(ctx, "shmipc.pool2_apply_rtt");
    }

    private static void UdsBaselines(HarnessContext ctx)
    {
        DotnetBaselines.UdsPingPong(ctx);
        ReportLatency(ctx, "dotnet.uds_8B_rtt");
        DotnetBaselines.UdsStreamPerMessage(ctx);
        double? rate = ctx.ValueOf("dotnet.uds_64B_stream_throughput");
        ctx.Progress.Line($"   dotnet.uds_64B_stream_throughput: {(rate is double r ? Figure.Humanize(r, "msg/s") : "-")} (one Send per message)");
    }

    private static void ReportLatency(HarnessContext ctx, string name)
    {
        string Get(string suffix) => ctx.ValueOf(name + suffix) is double v ? LatencyStats.Fmt(v) : "-";
        ctx.Progress.Line($"   {name}: p50 {Get("_median")}  p90 {Get("_p90")}  p99 {Get("_p99")}  p99.9 {Get("_p999")}  max {Get("_max")}");
    }

    private static void PrintTable(HarnessContext ctx)
    {
        Console.WriteLine();
        Console.WriteLine($"{"headline",-24} {"ShmIpc",-18} {".NET UDS",-18} {"ShmIpc advantage",16}");
        foreach (Row row in s_rows)
        {
            double? mine = ctx.ValueOf(row.ShmIpcFigure);
            double? theirs = ctx.ValueOf(row.BaselineFigure);
            string unit = Catalog.Spec(row.BaselineFigure)?.Unit ?? "";
            string mineText = mine is double m ? Figure.Humanize(m, unit) : "-";
            string theirsText = theirs is double t ? Figure.Humanize(t, unit) : "-";
            string ratio = mine is double a && theirs is double b && a > 0 && b > 0
                ? string.Create(CultureInfo.InvariantCulture, $"{(unit == "ns" ? b / a : a / b):0.00}x")
                : "-";
            Console.WriteLine($"{row.Label,-24} {mineText,-18} {theirsText,-18} {ratio,16}");
        }
    }

    /// <summary>Zero copy: a message written straight into the ring through a loan; MapInPlace over a shared array on Pool(2).</summary>
    private static void ZeroCopyScene(HarnessContext ctx)
    {
        using (var queue = ShmQueue.Create(Foundation.NewSegmentName("demo-loan")))
        {
            using (ShmLoan loan = queue.Loan(64, s_timeout))
            {
                int length = Encoding.ASCII.GetBytes("written in place, no staging buffer", loan.Span);
                loan.Commit(length);
            }

            byte[] got = queue.Dequeue(s_timeout);
            ctx.Progress.Line($"   queue.Loan(64) -> Span in the ring -> Commit({got.Length}): the consumer read \"{Encoding.ASCII.GetString(got)}\"");
        }

        const int Length = 1 << 24;
        using var input = ShmArray<float>.Create(Foundation.NewSegmentName("demo-in"), Length);
        using var output = ShmArray<float>.Create(Foundation.NewSegmentName("demo-out"), Length);
        Span<float> data = input.AsSpan();
        for (int i = 0; i < data.Length; i++)
        {
            data[i] = i;
        }

        using var pool = Cleanup.Own(new ShmPool(2));
        pool.MapInPlace(DemoTargets.TwicePlusOne, input, output); // warm: the workers map both arrays once
        long start = Stopwatch.GetTimestamp();
        pool.MapInPlace(DemoTargets.TwicePlusOne, input, output);
        double ms = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        bool exact = output[Length - 1] == (2f * (Length - 1)) + 1 && output[12345] == (2f * 12345) + 1;
        ctx.Progress.Line($"   Pool(2).MapInPlace(x => 2x + 1) over {Length:N0} floats in shared memory: {ms:0.0} ms, only chunk bounds crossed the pipes ({(exact ? "checked" : "WRONG")}; vs C and Python: -- full inplace)");
    }

    /// <summary>Acknowledged delivery: a consumer process takes a job and is killed with SIGKILL; the job comes back.</summary>
    private static void AcknowledgedScene(HarnessContext ctx)
    {
        string name = Foundation.NewSegmentName("demo-jobs");
        using var jobs = ShmQueue.Create(name, new ShmQueueOptions { Acknowledged = true });
        using var taken = ShmEvent.Create(Foundation.NewSegmentName("demo-taken"));
        jobs.Enqueue("job 1"u8);
        using ShmProcess<int> worker = Cleanup.Own(ShmProcess.Start(DemoTargets.TakeAndStall, (name, taken)));
        if (!taken.Wait(s_timeout))
        {
            throw new TimeoutException("the demo's worker did not take its job");
        }

        ctx.Progress.Line($"   worker pid {worker.Pid} took \"job 1\" (InFlight = {jobs.InFlight}); kill -9 {worker.Pid}");
        long start = Stopwatch.GetTimestamp();
        worker.Kill();
        using ShmDelivery again = jobs.Take(s_timeout);
        double ms = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        ctx.Progress.Line($"   the parent's Take got \"{Encoding.ASCII.GetString(again.Span)}\" again, DeliveryCount = {again.DeliveryCount}, {ms:0} ms after the kill; Ack -> UnfinishedTasks = {AckThenCount(again, jobs)}");
    }

    private static long AckThenCount(ShmDelivery delivery, ShmQueue queue)
    {
        delivery.Ack();
        return queue.UnfinishedTasks;
    }
}
