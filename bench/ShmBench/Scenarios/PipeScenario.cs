using System.Diagnostics;
using ShmIpc.Bench.Baselines;
using ShmIpc.Bench.Children;
using ShmIpc.Bench.Harness;

namespace ShmIpc.Bench.Scenarios;

/// <summary>
/// pipe: duplex messages between two processes. Baselines: C spin and semaphore ping-pong (each run
/// back to back with a run of the Pipe's round trip it is the floor of), memcpy, .NET UDS and
/// anonymous-pipe ping-pong, the UDS batched stream, Python's Pipe.
/// </summary>
internal sealed class PipeScenario : IScenario
{
    private const int KiB = 1024;

    /// <summary>Below this a round trip cannot have included two futex wake-ups (see <see cref="CheckSlept"/>).</summary>
    private const long SleepFloorNs = 2_000;

    public string Name => "pipe";

    public string Title => "Pipe: round trips and streams between two processes";

    public void Run(HarnessContext ctx)
    {
        // Back to back with their C floors: before each run of the library, one run of the baseline.
        // The 8 B round trip's floor is the best-practice ring's ping-pong (issue 16); the old word ping-pong runs
        // beside it for history, so both are back to back with the Pipe.
        RoundTrip(ctx, "shmipc.pipe_8B_rtt", 8, ctx.Plan(200_000), sleeping: false,
            new Pairing("pair.pipe_8B_rtt_per_c_best_spin", "shmipc.pipe_8B_rtt_median", "c.best_spin_8B_rtt_median", _ =>
            {
                NativeBaselines.SpinPingPongOnce(ctx);
                NativeBaselines.BestSpinPingPongOnce(ctx);
            }));
        RoundTrip(ctx, "shmipc.pipe_8B_sleep_rtt", 8, ctx.Plan(20_000), sleeping: true,
            new Pairing("pair.pipe_8B_sleep_rtt_per_c_sem", "shmipc.pipe_8B_sleep_rtt_median", "c.sem_8B_rtt_median", _ => NativeBaselines.SemaphorePingPongOnce(ctx)));
        RoundTrip(ctx, "shmipc.pipe_1KiB_rtt", KiB, ctx.Plan(100_000), sleeping: false);
        RoundTrip(ctx, "shmipc.pipe_64KiB_rtt", 64 * KiB, ctx.Plan(20_000), sleeping: false);
        Stream(ctx, "shmipc.pipe_64B_stream_throughput", 64, ctx.Plan(5_000_000, 100_000));
        Stream(ctx, "shmipc.pipe_64B_deferred_stream_throughput", 64, ctx.Plan(5_000_000, 100_000), flushEvery: 1024);
        Stream(ctx, "shmipc.pipe_64KiB_stream_throughput", 64 * KiB, ctx.Plan(50_000, 1_000));
        ctx.Note("shmipc.pipe_*_rtt: parent on CPU 0, echo process on CPU 1, default wait strategy (spins 50 us before sleeping) on both ends");
        ctx.Note("shmipc.pipe_8B_sleep_rtt: ShmWaitStrategy.NoSpin on both ends (parent CPU 0, echo CPU 1), so every message wakes a sleeper as in c.sem_8B_rtt");
        ctx.Note($"fence: {FenceScenario.Describe()}");
        ctx.Note("shmipc.pipe_*_stream: parent sends on CPU 0, the sink receives on CPU 1 (default wait strategy); a run ends when the sink acknowledges its last message");

        // The foundation figure stays beside it: what a sleeping Pipe waits on.
        Foundation.SemaphorePingPong(ctx, ctx.Plan(20_000));

        NativeBaselines.SameCpuSemaphorePingPong(ctx);
        NativeBaselines.MemcpyBandwidth(ctx);
        NativeBaselines.BestSpinPingPongTail(ctx);
        NativeBaselines.BestSpscBandwidth(ctx);
        DotnetBaselines.UdsPingPong(ctx);
        DotnetBaselines.AnonymousPipePingPong(ctx);
        DotnetBaselines.UdsStreamBatched(ctx);
        PythonBaselines.PipeRoundTrip(ctx);
    }

    /// <summary>
    /// Ping-pong of <paramref name="size"/>-byte messages with a "pipe-echo" child: name_median, _p90, ...
    /// Spinning: the parent's thread on CPU 0, the echo on CPU 1, default wait strategy. Sleeping: both ends
    /// <see cref="ShmWaitStrategy.NoSpin"/>. With <paramref name="pairing"/>, one run of its baseline before
    /// each run (the echo waits meanwhile, asleep on its semaphore after its spin).
    /// </summary>
    public static void RoundTrip(HarnessContext ctx, string name, int size, RunPlan plan, bool sleeping, Pairing? pairing = null)
    {
        ctx.Progress.Step($"ShmIpc pipe {Size(size)} ping-pong{(sleeping ? ", receivers asleep" : "")}");
        plan = plan with { SteadyState = true }; // the echo serves until the pipe closes
        (long Fast, long All) unslept = (0, 0);
        long floor = SleepFloorNs * Stopwatch.Frequency / 1_000_000_000;
        using (var echo = new EchoPipe(size, sleeping))
        using (Affinity.PinCurrentThread(0))
        {
            ctx.Latency(name, plan, n =>
            {
                long[] ticks = echo.RoundTrips(n);
                if (n == plan.Count)
                {
                    unslept = (unslept.Fast + ticks.Count(t => t < floor), unslept.All + n);
                }

                return ticks;
            }, pairing);
        }

        if (sleeping)
        {
            CheckSlept(ctx, name, unslept);
        }
    }

    /// <summary>
    /// A round trip in which both ends really sleep needs two futex wake-ups: a few microseconds at the very
    /// least (c.sem_same_cpu_8B_rtt, both on one CPU, is about 4 us). A round trip under
    /// <see cref="SleepFloorNs"/> means a receiver did not sleep. Some of those are normal: when both ends
    /// happen to be awake, each finds the other's message when it re-checks before sleeping, and they run in
    /// lockstep for a few round trips (C's semaphore ping-pong does the same: c.sem_8B_rtt_unslept_pct,
    /// 0-30% on these VMs, moving between runs). When most are that fast (the median is one of them), the receivers' waits
    /// return at once, e.g. on surplus posts (main at 4ab7b68: 88%), and the figure is not a sleeping
    /// round trip: its goal is invalid.
    /// </summary>
    private static void CheckSlept(HarnessContext ctx, string name, (long Fast, long All) unslept)
    {
        double pct = 100.0 * unslept.Fast / Math.Max(1, unslept.All);
        ctx.Record(name + "_unslept_pct", "%", pct);
        string share = pct.ToString("0.#", System.Globalization.CultureInfo.InvariantCulture);
        string c = ctx.ValueOf("c.sem_8B_rtt_unslept_pct") is double cPct
            ? $"; C semaphore ping-pong in the same run: {cPct.ToString("0.#", System.Globalization.CultureInfo.InvariantCulture)}%"
            : "";
        if (pct > 50)
        {
            ctx.Invalidate(name + "_median", $"{share}% of its round trips took under {SleepFloorNs / 1000} us, impossible with two futex wake-ups{c}: " +
                "the NoSpin receivers did not sleep (their semaphore waits returned at once, e.g. on surplus posts)");
        }
        else
        {
            ctx.Note($"{name}: {share}% of round trips under {SleepFloorNs / 1000} us (both ends awake in lockstep; invalid over 50%){c}");
        }
    }

    /// <summary>
    /// One-way stream of <paramref name="size"/>-byte messages to a "pipe-sink" child: a run sends n messages,
    /// the last asking for an acknowledgement, and ends when it arrives. name (msg/s) and its _bandwidth (MB/s).
    /// With flushEvery 0: one <see cref="ShmConnection.Send(ReadOnlySpan{byte})"/> per message; otherwise
    /// <see cref="ShmConnection.SendDeferred"/> per message and <see cref="ShmConnection.Flush"/> after every flushEvery
    /// (1024 x 64 B: the 64 KiB buffer of dotnet.uds_64B_batched_stream), received with <see cref="ShmConnection.ReceiveMany"/>
    /// (as the UDS sink reads whatever bytes have arrived).
    /// </summary>
    public static void Stream(HarnessContext ctx, string name, int size, RunPlan plan, int flushEvery = 0, Pairing? pairing = null)
    {
        ctx.Progress.Step($"ShmIpc pipe {Size(size)} one-way stream{(flushEvery > 0 ? $", SendDeferred + Flush every {flushEvery}" : "")}");
        plan = plan with { SteadyState = true }; // the sink serves until the pipe closes
        string pipeName = Foundation.NewSegmentName("pipe");
        var options = new ShmPipeOptions
        {
            Capacity = Math.Max(ShmPipeOptions.DefaultCapacity, 16 * size),
            MaxMessageLength = size,
        };
        using ShmConnection pipe = ShmPipe.Create(pipeName, options);
        using Process child = ChildProcesses.Start(flushEvery > 0 ? "pipe-sink-batched" : "pipe-sink", cpu: 1, pipeName);
        ChildProcesses.Expect(child, "READY");
        byte[] message = new byte[size];
        byte[] ack = new byte[1];
        using (Affinity.PinCurrentThread(0))
        {
            ctx.Rate(name, "msg/s", plan, n =>
            {
                long start = Stopwatch.GetTimestamp();
                message[0] = 0;
                for (int i = 1; i < n; i++)
                {
                    if (flushEvery == 0)
                    {
                        pipe.Send(message);
                    }
                    else
                    {
                        pipe.SendDeferred(message);
                        if (i % flushEvery == 0)
                        {
                            pipe.Flush();
                        }
                    }
                }

                message[0] = ChildRoles.PipeAckRequest;
                pipe.Send(message);
                pipe.ReceiveInto(ack);
                return Stopwatch.GetTimestamp() - start;
            }, size, pairing);
        }

        pipe.Dispose();
        ChildProcesses.Join(child, TimeSpan.FromSeconds(30));
    }

    private static string Size(int bytes) => bytes >= KiB ? $"{bytes / KiB} KiB" : $"{bytes} B";
}

/// <summary>
/// A pipe to a "pipe-echo" child pinned to CPU 1: the round trips of shmipc.pipe_*_rtt, measured on the calling
/// thread (which the caller pins to CPU 0). Spinning: default wait strategy on both ends; sleeping: NoSpin.
/// </summary>
internal sealed class EchoPipe : IDisposable
{
    private readonly ShmConnection _pipe;
    private readonly Process _child;
    private readonly byte[] _message;
    private readonly byte[] _reply;

    public EchoPipe(int size, bool sleeping)
    {
        string pipeName = Foundation.NewSegmentName("pipe");
        var options = new ShmPipeOptions
        {
            Capacity = Math.Max(ShmPipeOptions.DefaultCapacity, 4 * size),
            MaxMessageLength = Math.Max(64, size),
            WaitStrategy = sleeping ? ShmWaitStrategy.NoSpin : ShmWaitStrategy.Default,
        };
        _pipe = ShmPipe.Create(pipeName, options);
        try
        {
            _child = ChildProcesses.Start("pipe-echo", cpu: 1, pipeName, sleeping ? "nospin" : "spin");
            ChildProcesses.Expect(_child, "READY");
        }
        catch
        {
            _pipe.Dispose();
            throw;
        }

        _message = new byte[size];
        _reply = new byte[size];
    }

    /// <summary><paramref name="n"/> round trips, each in Stopwatch ticks.</summary>
    public long[] RoundTrips(int n)
    {
        long[] ticks = new long[n];
        for (int i = 0; i < n; i++)
        {
            _message[0] = (byte)i;
            long start = Stopwatch.GetTimestamp();
            _pipe.Send(_message);
            _pipe.ReceiveInto(_reply);
            ticks[i] = Stopwatch.GetTimestamp() - start;
        }

        if (n > 0 && _reply[0] != _message[0])
        {
            throw new InvalidOperationException("The echo returned another message.");
        }

        return ticks;
    }

    public void Dispose()
    {
        _pipe.Dispose();
        ChildProcesses.Join(_child, TimeSpan.FromSeconds(30));
    }
}
