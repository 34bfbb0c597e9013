using System.Diagnostics;
using System.Globalization;
using ShmIpc.Bench.Baselines;
using ShmIpc.Bench.Harness;

namespace ShmIpc.Bench.Scenarios;

/// <summary>
/// sync: ShmLock uncontended and contended, ShmEvent set -> wake, ShmArray write + sum across processes. Baselines in the same
/// run: a C robust process-shared pthread mutex in a shared mapping, .NET's named Mutex, Python's multiprocessing.Lock and Event,
/// the C semaphore ping-pong, the same array work in C over a shared mapping.
/// </summary>
internal sealed class SyncScenario : IScenario
{
    private const int ContendedPerProcess = 1_000_000;

    public string Name => "sync";

    public string Title => "Sync: lock uncontended and contended, event set -> wake";

    public void Run(HarnessContext ctx)
    {
        LockUncontended(ctx);
        NativeBaselines.RobustMutexUncontended(ctx);
        NamedMutexUncontended(ctx);
        PythonBaselines.LockUncontended(ctx);
        LockContended(ctx);
        NativeBaselines.RobustMutexContended(ctx, ContendedPerProcess);
        EventPingPong(ctx, noSpin: true); // one run of the C semaphore ping-pong before each of its runs
        EventPingPong(ctx, noSpin: false);
        PythonBaselines.EventPingPong(ctx);
        ArrayWriteSum(ctx);
        NativeBaselines.ArrayWriteSum(ctx, ArrayLength);
        PythonBaselines.NumpyArray(ctx, ArrayLength);
    }

    private const int ArrayLength = 1 << 24;

    /// <summary>This process writes a ShmArray&lt;double&gt; of 2^24 elements, a child sums it: from the first write to the end of the sum.</summary>
    private static void ArrayWriteSum(HarnessContext ctx)
    {
        ctx.Progress.Step("ShmIpc ShmArray<double> 2^24: write here, sum in another process");
        using ShmArray<double> array = ShmArray<double>.Create(Foundation.NewSegmentName("array"), ArrayLength);
        double expected = 0.25 * ArrayLength * (double)(ArrayLength - 1);
        for (int r = -1; r < ctx.Options.Runs; r++)
        {
            using ShmEvent go = ShmEvent.Create(Foundation.NewSegmentName("arraygo"));
            using Process child = ChildProcesses.Start("array-sum", null, array.Name, go.Name);
            ChildProcesses.Expect(child, "READY");
            long start = Stopwatch.GetTimestamp();
            Fill(array.AsSpan());
            go.Set();
            string line = child.StandardOutput.ReadLine() ?? "";
            string[] parts = line.Split(' ');
            if (parts.Length != 3 || parts[0] != "DONE" || double.Parse(parts[2], CultureInfo.InvariantCulture) != expected)
            {
                throw new InvalidOperationException($"array-sum child said '{line}', expected the sum {expected}.");
            }

            ChildProcesses.Join(child, TimeSpan.FromSeconds(30));
            if (r >= 0)
            {
                ctx.Record("shmipc.array_2p24_write_sum_ms", "ms", Stopwatch.GetElapsedTime(start, long.Parse(parts[1], CultureInfo.InvariantCulture)).TotalMilliseconds);
            }
        }
    }

    /// <summary>Acquire + Release pairs in a loop, ns per pair (no Stopwatch inside the loop: it costs as much as the pair).</summary>
    private static void LockUncontended(HarnessContext ctx)
    {
        ctx.Progress.Step("ShmIpc ShmLock uncontended");
        using ShmLock lk = ShmLock.Create(Foundation.NewSegmentName("lock"));
        RunPlan plan = ctx.Plan(5_000_000, 1_000_000);
        for (int r = -1; r < plan.Runs; r++)
        {
            int n = r < 0 ? plan.Warmup : plan.Count;
            long start = Stopwatch.GetTimestamp();
            for (int i = 0; i < n; i++)
            {
                lk.Acquire();
                lk.Release();
            }

            double ns = Stopwatch.GetElapsedTime(start).TotalNanoseconds / n;
            if (r >= 0)
            {
                ctx.Record("shmipc.lock_uncontended_ns", "ns", ns);
            }
        }
    }

    /// <summary>.NET's named Mutex, which .NET supports on Unix (a file lock plus a process-shared pthread mutex).</summary>
    private static void NamedMutexUncontended(HarnessContext ctx)
    {
        ctx.Progress.Step(".NET named Mutex uncontended");
        using var mutex = new Mutex(false, $"shmbench-{Environment.ProcessId}-mutex");
        RunPlan plan = ctx.Plan(500_000, 50_000);
        for (int r = -1; r < plan.Runs; r++)
        {
            int n = r < 0 ? plan.Warmup : plan.Count;
            long start = Stopwatch.GetTimestamp();
            for (int i = 0; i < n; i++)
            {
                mutex.WaitOne();
                mutex.ReleaseMutex();
            }

            double ns = Stopwatch.GetElapsedTime(start).TotalNanoseconds / n;
            if (r >= 0)
            {
                ctx.Record("dotnet.named_mutex_uncontended_ns", "ns", ns);
            }
        }
    }

    /// <summary>Two child processes, released together by an event, each take the lock 1M times; the counter must be exact.</summary>
    private static void LockContended(HarnessContext ctx)
    {
        ctx.Progress.Step("ShmIpc ShmLock contended, 2 processes x 1M");
        string count = ContendedPerProcess.ToString(CultureInfo.InvariantCulture);
        for (int r = -1; r < ctx.Options.Runs; r++)
        {
            using ShmLock lk = ShmLock.Create(Foundation.NewSegmentName("lockc"));
            using ShmValue<long> value = ShmValue<long>.Create(Foundation.NewSegmentName("lockv"));
            using ShmEvent go = ShmEvent.Create(Foundation.NewSegmentName("lockgo"));
            using Process a = ChildProcesses.Start("lock-count", null, lk.Name, value.Name, go.Name, count);
            using Process b = ChildProcesses.Start("lock-count", null, lk.Name, value.Name, go.Name, count);
            ChildProcesses.Expect(a, "READY");
            ChildProcesses.Expect(b, "READY");
            long start = Stopwatch.GetTimestamp();
            go.Set();
            long end = Math.Max(DoneStamp(a), DoneStamp(b));
            ChildProcesses.Join(a, TimeSpan.FromSeconds(30));
            ChildProcesses.Join(b, TimeSpan.FromSeconds(30));
            if (value.Value != 2L * ContendedPerProcess)
            {
                throw new InvalidOperationException($"The contended counter is {value.Value}, expected {2L * ContendedPerProcess}.");
            }

            if (r >= 0)
            {
                ctx.Record("shmipc.lock_contended_2x1M_ms", "ms", Stopwatch.GetElapsedTime(start, end).TotalMilliseconds);
            }
        }
    }

    /// <summary>Element i = i * 0.5; compiled optimized at once, as the C loop is.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    private static void Fill(Span<double> span)
    {
        // A vector of (i, i+1, ...) * 0.5 stepped a vector at a time: what the C floor's compiler makes of its loop.
        int width = System.Numerics.Vector<double>.Count;
        var values = System.Numerics.Vector.CreateSequence(0.0, 0.5);
        var step = new System.Numerics.Vector<double>(0.5 * width);
        int i = 0;
        for (; i <= span.Length - width; i += width)
        {
            values.CopyTo(span.Slice(i, width));
            values += step;
        }

        for (; i < span.Length; i++)
        {
            span[i] = i * 0.5;
        }
    }

    private static long DoneStamp(Process child)
    {
        string? line = child.StandardOutput.ReadLine();
        return line is not null && line.StartsWith("DONE ", StringComparison.Ordinal)
            ? long.Parse(line.AsSpan(5), CultureInfo.InvariantCulture)
            : throw new InvalidOperationException($"lock-count child said '{line}'.");
    }

    /// <summary>Ping-pong of two auto-reset events with a child on CPU 1 (this thread on CPU 0).</summary>
    private static void EventPingPong(HarnessContext ctx, bool noSpin)
    {
        string figure = noSpin ? "shmipc.event_pingpong_rtt" : "shmipc.event_pingpong_spin_rtt";
        ctx.Progress.Step($"ShmIpc ShmEvent ping-pong ({(noSpin ? "NoSpin" : "default wait")})");
        RunPlan plan = ctx.Plan(20_000, 2_000);
        var options = new ShmEventOptions { AutoReset = true, WaitStrategy = noSpin ? ShmWaitStrategy.NoSpin : ShmWaitStrategy.Default };
        using ShmEvent ping = ShmEvent.Create(Foundation.NewSegmentName("ping"), options: options);
        using ShmEvent pong = ShmEvent.Create(Foundation.NewSegmentName("pong"), options: options);
        using Process child = ChildProcesses.Start("event-pong", 1, ping.Name, pong.Name, plan.Total.ToString(CultureInfo.InvariantCulture), noSpin ? "nospin" : "spin");
        ChildProcesses.Expect(child, "READY");
        using (Affinity.PinCurrentThread(0))
        {
            // The sleeping ping-pong is compared with the C semaphore ping-pong: each of its runs is paired with
            // one run of it just before (the machine's state moves that floor by 2x between minutes).
            Pairing? pairing = noSpin
                ? new Pairing("pair.event_pingpong_per_c_sem", "shmipc.event_pingpong_rtt_median", "c.sem_8B_rtt_median", _ => NativeBaselines.SemaphorePingPongOnce(ctx))
                : null;
            ctx.Latency(figure, plan, n =>
            {
                long[] ticks = new long[n];
                for (int i = 0; i < n; i++)
                {
                    long start = Stopwatch.GetTimestamp();
                    ping.Set();
                    if (!pong.Wait(TimeSpan.FromSeconds(10)))
                    {
                        throw new InvalidOperationException("The event ponger did not answer within 10 s.");
                    }

                    ticks[i] = Stopwatch.GetTimestamp() - start;
                }

                return ticks;
            }, pairing);
        }

        ChildProcesses.Join(child, TimeSpan.FromSeconds(30));
    }
}
