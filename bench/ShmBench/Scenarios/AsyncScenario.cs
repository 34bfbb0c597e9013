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
        AwaitedRoundTrip(ctx, ctx.Plan(50_000));
        PipeScenario.RoundTrip(ctx, "shmipc.async_sync_pipe_8B_rtt", 8, ctx.Plan(200_000), sleeping: false);
        ChannelRoundTrip(ctx, ctx.Plan(200_000));
        ctx.Note($"async waiter threads: {AsyncWaitEngine.ThreadCount} (at most {AsyncWaitEngine.MaxThreads}), sleeping with {AsyncWaitEngine.Mechanism}"
            + (Signaling.MultiSemaphoreWait.FallbackReason is { } why ? $" ({why})" : ""));
        ctx.Note("shmipc.async_pipe_8B_rtt: both processes await ReceiveAsync(Memory) and SendAsync; unpinned (the continuations run on the thread pool); the echo child awaits too");
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

    private static void AwaitedRoundTrip(HarnessContext ctx, RunPlan plan)
    {
        ctx.Progress.Step("ShmIpc pipe 8 B ping-pong, awaited in both processes");
        plan = plan with { SteadyState = true };
        string pipeName = Foundation.NewSegmentName("apipe");
        using ShmConnection pipe = ShmPipe.Create(pipeName, new ShmPipeOptions { Capacity = ShmPipeOptions.DefaultCapacity, MaxMessageLength = 64 });
        using Process child = ChildProcesses.Start("pipe-echo-async", cpu: null, pipeName);
        ChildProcesses.Expect(child, "READY");
        byte[] message = new byte[8];
        byte[] reply = new byte[8];
        ctx.Latency("shmipc.async_pipe_8B_rtt", plan, n => Task.Run(async () =>
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
        }).GetAwaiter().GetResult());

        // Allocation of the steady state: all threads of this process (the completions run on the waiter and pool threads).
        const int Measured = 20_000;
        long allocated = Task.Run(async () =>
        {
            long before = GC.GetTotalAllocatedBytes(precise: true);
            for (int i = 0; i < Measured; i++)
            {
                await pipe.SendAsync(message).ConfigureAwait(false);
                _ = await pipe.ReceiveAsync(reply.AsMemory()).ConfigureAwait(false);
            }

            return GC.GetTotalAllocatedBytes(precise: true) - before;
        }).GetAwaiter().GetResult();
        ctx.Record("shmipc.async_pipe_rtt_allocated_bytes", "B", allocated / (double)Measured);
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
