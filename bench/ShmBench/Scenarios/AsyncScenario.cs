using System.Diagnostics;
using System.Threading.Channels;
using ShmIpc.Async;
using ShmIpc.Bench.Children;
using ShmIpc.Bench.Harness;

namespace ShmIpc.Bench.Scenarios;

/// <summary>
/// async: the one async model. An awaited 8 B pipe round trip between two processes beside the synchronous one and a
/// System.Threading.Channels ping-pong in one process; the threads 1,000 pending receives cost; the bytes an awaited
/// round trip allocates.
/// </summary>
internal sealed class AsyncScenario : IScenario
{
    private const int PendingPipes = 1000;

    public string Name => "async";

    public string Title => "Async: awaited pipe calls on the process's waiter threads";

    public void Run(HarnessContext ctx)
    {
        // First, before this process makes any async ShmIpc call: the thread count the pending receives add to.
        ThousandPendingReceives(ctx);
        AwaitedRoundTrip(ctx, ctx.Plan(50_000), spin: true);
        AwaitedRoundTrip(ctx, ctx.Plan(10_000), spin: false);
        PipeScenario.RoundTrip(ctx, "shmipc.async_sync_pipe_8B_rtt", 8, ctx.Plan(200_000), sleeping: false);
        ChannelRoundTrip(ctx, ctx.Plan(200_000));
        ctx.Note($"async waiter threads: {AsyncWaitEngine.ThreadCount} (at most {AsyncWaitEngine.MaxThreads}), sleeping with {AsyncWaitEngine.Mechanism}"
            + (Signaling.MultiSemaphoreWait.FallbackReason is { } why ? $" ({why})" : ""));
        ctx.Note("shmipc.async_pipe_8B_rtt: both processes await ReceiveAsync(Memory) and SendAsync; unpinned (the continuations run on the thread pool); the echo child awaits too");
        ctx.Note("shmipc.async_pipe_8B_rtt_nospin: the same with ShmWaitStrategy.NoSpin on both ends: every leg goes pending (waiter thread wake + thread-pool hop), as when an answer takes longer than the caller's spin");
        ctx.Note("shmipc.async_pipe_rtt_allocated_bytes: process-wide bytes over 20,000 awaited round trips minus the bytes of an equally long window with one receive pending on the same end (the waiter thread's 100 ms peer checks read /proc), per round trip; raw figures beside it");
        ctx.Note("dotnet.channel_8B_rtt: two tasks, two unbounded Channel<long> (SingleReader/SingleWriter), one process");
    }

    private static int ThreadCount() => Directory.GetDirectories("/proc/self/task").Length;

    private static void ThousandPendingReceives(HarnessContext ctx)
    {
        ctx.Progress.Step($"{PendingPipes} pipe ends each awaiting one message");
        int before = ThreadCount();
        var names = new List<string>();
        var ends = new List<ShmConnection>();
        try
        {
            var receivers = new ShmConnection[PendingPipes];
            var senders = new ShmConnection[PendingPipes];
            for (int i = 0; i < PendingPipes; i++)
            {
                string name = Foundation.NewSegmentName("apipe");
                names.Add(name);
                receivers[i] = ShmPipe.Create(name, new ShmPipeOptions { Capacity = 4096 });
                ends.Add(receivers[i]);
                senders[i] = ShmPipe.Connect(name, new ShmPipeOptions { Capacity = 4096 });
                ends.Add(senders[i]);
            }

            var pending = new Task<byte[]>[PendingPipes];
            for (int i = 0; i < PendingPipes; i++)
            {
                pending[i] = receivers[i].ReceiveAsync().AsTask();
            }

            // Let the waiter threads take every queue before counting (they start lazily).
            long until = Stopwatch.GetTimestamp() + Stopwatch.Frequency;
            while (Stopwatch.GetTimestamp() < until && AsyncWaitEngine.ThreadCount < Math.Min(AsyncWaitEngine.MaxThreads, 1 + (PendingPipes / 127)))
            {
                Thread.Sleep(1);
            }

            int during = ThreadCount();
            var clock = Stopwatch.StartNew();
            for (int i = 0; i < PendingPipes; i++)
            {
                senders[i].Send(BitConverter.GetBytes(i));
            }

            Task.WaitAll(pending, TimeSpan.FromSeconds(30));
            for (int i = 0; i < PendingPipes; i++)
            {
                if (BitConverter.ToInt32(pending[i].Result) != i)
                {
                    throw new InvalidOperationException($"pending receive {i} got another message");
                }
            }

            ctx.Record("shmipc.async_threads_before", "threads", before);
            ctx.Record("shmipc.async_1000_pending_receives_threads", "threads", during);
            ctx.Record("shmipc.async_1000_pending_receives_added_threads", "threads", during - before);
            ctx.Record("shmipc.async_1000_pending_receives_complete_ms", "ms", clock.Elapsed.TotalMilliseconds);
        }
        finally
        {
            foreach (ShmConnection end in ends)
            {
                end.Dispose();
            }
        }
    }

    private static void AwaitedRoundTrip(HarnessContext ctx, RunPlan plan, bool spin)
    {
        string figure = spin ? "shmipc.async_pipe_8B_rtt" : "shmipc.async_pipe_8B_rtt_nospin";
        ctx.Progress.Step($"ShmIpc pipe 8 B ping-pong, awaited in both processes{(spin ? "" : ", no caller spin")}");
        plan = plan with { SteadyState = true };
        string pipeName = Foundation.NewSegmentName("apipe");
        var options = new ShmPipeOptions { Capacity = ShmPipeOptions.DefaultCapacity, MaxMessageLength = 64 };
        if (!spin)
        {
            options.WaitStrategy = ShmWaitStrategy.NoSpin;
        }

        using ShmConnection pipe = ShmPipe.Create(pipeName, options);
        using Process child = ChildProcesses.Start("pipe-echo-async", cpu: null, pipeName, spin ? "spin" : "nospin");
        ChildProcesses.Expect(child, "READY");
        byte[] message = new byte[8];
        byte[] reply = new byte[8];
        ctx.Latency(figure, plan, n => AwaitedPingPong(pipe, n, message, reply));

        if (spin)
        {
            RoundTripAllocation(ctx, pipe, message, reply);
        }
    }

    /// <summary><paramref name="n"/> awaited round trips (await SendAsync, await ReceiveAsync into a buffer) on a thread-pool task: their ticks.</summary>
    internal static long[] AwaitedPingPong(ShmConnection pipe, int n, byte[] message, byte[] reply) => Task.Run(async () =>
    {
        long[] ticks = new long[n];
        for (int i = 0; i < n; i++)
        {
            message[0] = (byte)i;
            long start = Stopwatch.GetTimestamp();
            await pipe.SendAsync(message).ConfigureAwait(false);
            _ = await pipe.ReceiveAsync(reply.AsMemory()).ConfigureAwait(false);
            ticks[i] = Stopwatch.GetTimestamp() - start;
        }

        return ticks;
    }).GetAwaiter().GetResult();

    /// <summary>
    /// Bytes per steady-state awaited round trip, all threads of this process (completions run on the waiter and pool
    /// threads), net of what the same end allocates over an equally long window with one receive pending and no
    /// round trip: the waiter thread's peer-liveness check every 100 ms reads /proc (a path string and a file handle,
    /// ~150 B), a cost of time, not of operations. Measured on 2 cores: our calls allocate 0 B on the awaiting thread,
    /// the waiter thread 0 B with the peer checks off, and an idle window 0 B.
    /// </summary>
    private static void RoundTripAllocation(HarnessContext ctx, ShmConnection pipe, byte[] message, byte[] reply)
    {
        const int Measured = 20_000;
        (long allocated, TimeSpan elapsed) = Task.Run(async () =>
        {
            await pipe.SendAsync(message).ConfigureAwait(false); // the state machine's box is allocated at the first pending await
            _ = await pipe.ReceiveAsync(reply.AsMemory()).ConfigureAwait(false);
            var clock = Stopwatch.StartNew();
            long before = GC.GetTotalAllocatedBytes(precise: true);
            for (int i = 0; i < Measured; i++)
            {
                await pipe.SendAsync(message).ConfigureAwait(false);
                _ = await pipe.ReceiveAsync(reply.AsMemory()).ConfigureAwait(false);
            }

            return (GC.GetTotalAllocatedBytes(precise: true) - before, clock.Elapsed);
        }).GetAwaiter().GetResult();

        // The baseline: one receive held pending as long as the loop ran (the echo child sends nothing unasked), then answered.
        var receive = pipe.ReceiveAsync(reply.AsMemory()).AsTask();
        long baselineBefore = GC.GetTotalAllocatedBytes(precise: true);
        bool early = receive.Wait(elapsed);
        long baseline = GC.GetTotalAllocatedBytes(precise: true) - baselineBefore;
        if (early)
        {
            throw new InvalidOperationException("the echo child sent a message nobody asked for");
        }

        pipe.Send(message);
        receive.Wait(TimeSpan.FromSeconds(10));
        ctx.Record("shmipc.async_pipe_rtt_allocated_bytes", "B", Math.Max(0, allocated - baseline) / (double)Measured);
        ctx.Record("shmipc.async_pipe_rtt_allocated_bytes_raw", "B", allocated / (double)Measured);
        ctx.Record("shmipc.async_pending_baseline_allocated_bytes", "B", baseline);
    }

    private static void ChannelRoundTrip(HarnessContext ctx, RunPlan plan)
    {
        ctx.Progress.Step("System.Threading.Channels ping-pong between two tasks");
        var options = new UnboundedChannelOptions { SingleReader = true, SingleWriter = true };
        Channel<long> ping = Channel.CreateUnbounded<long>(options);
        Channel<long> pong = Channel.CreateUnbounded<long>(options);
        using var stop = new CancellationTokenSource();
        Task echo = Task.Run(async () =>
        {
            try
            {
                while (true)
                {
                    long value = await ping.Reader.ReadAsync(stop.Token).ConfigureAwait(false);
                    pong.Writer.TryWrite(value);
                }
            }
            catch (OperationCanceledException)
            {
            }
        });
        ctx.Latency("dotnet.channel_8B_rtt", plan, n => Task.Run(async () =>
        {
            long[] ticks = new long[n];
            for (int i = 0; i < n; i++)
            {
                long start = Stopwatch.GetTimestamp();
                ping.Writer.TryWrite(i);
                _ = await pong.Reader.ReadAsync().ConfigureAwait(false);
                ticks[i] = Stopwatch.GetTimestamp() - start;
            }

            return ticks;
        }).GetAwaiter().GetResult());
        stop.Cancel();
        echo.Wait();
    }
}
