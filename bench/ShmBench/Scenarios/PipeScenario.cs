using ShmIpc.Bench.Baselines;
using ShmIpc.Bench.Harness;

namespace ShmIpc.Bench.Scenarios;

/// <summary>
/// pipe: duplex messages between two processes. Baselines: C spin and semaphore ping-pong, memcpy,
/// .NET UDS and anonymous-pipe ping-pong, the UDS batched stream, Python's Pipe.
/// </summary>
internal sealed class PipeScenario : IScenario
{
    public string Name => "pipe";

    public string Title => "Pipe: round trips and streams between two processes";

    public void Run(HarnessContext ctx)
    {
        // TODO(pipe): the ShmIpc figures, each with ctx.Latency / ctx.Rate and a child role:
        //   shmipc.pipe_8B_rtt           both sides spinning: pin with Affinity.PinCurrentThread(0) here and
        //                                ChildProcesses.Start("pipe-echo", cpu: 1, ...) for the peer, and ctx.Note it
        //   shmipc.pipe_8B_sleep_rtt     receiver asleep (ShmWaitStrategy.NoSpin on the echo side)
        //   shmipc.pipe_64B_stream_throughput, shmipc.pipe_64KiB_stream_bandwidth (ctx.Rate with bytesPerItem)
        // Until then, the foundation stand-in: a ping-pong on two ShmIpc named semaphores.
        Foundation.SemaphorePingPong(ctx, ctx.Plan(20_000));

        NativeBaselines.SpinPingPong(ctx);
        NativeBaselines.SemaphorePingPong(ctx);
        NativeBaselines.MemcpyBandwidth(ctx);
        DotnetBaselines.UdsPingPong(ctx);
        DotnetBaselines.AnonymousPipePingPong(ctx);
        DotnetBaselines.UdsStreamBatched(ctx);
        PythonBaselines.PipeRoundTrip(ctx);
    }
}
