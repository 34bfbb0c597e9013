using System.Diagnostics;
using ShmIpc.Bench.Harness;
using ShmIpc.Memory;
using ShmIpc.Signaling;

namespace ShmIpc.Bench.Scenarios;

/// <summary>
/// idle: how much CPU a process uses while it waits for work that does not come, read from
/// /proc/&lt;pid&gt;/stat (utime + stime, all threads) over a window (10 s in a full run).
/// </summary>
internal sealed class IdleScenario : IScenario
{
    public string Name => "idle";

    public string Title => "Idle: CPU of a blocked waiter";

    public void Run(HarnessContext ctx)
    {
        // TODO(queue): measure "shmipc.idle_consumer_cpu_pct": a child blocked in Queue.Receive on an
        // empty queue (role "queue-idle-consumer"), with MeasureIdle below; this is the goal's figure.
        MeasureSemaphoreWaiter(ctx);
    }

    /// <summary>Foundation: a child in NamedSemaphore.Wait slices: shmipc.idle_semaphore_waiter_cpu_pct.</summary>
    private static void MeasureSemaphoreWaiter(HarnessContext ctx)
    {
        ctx.Progress.Step($"ShmIpc semaphore waiter idle for {ctx.Options.IdleWindow.TotalSeconds:0} s");
        string name = Foundation.NewSegmentName("idle");
        using ShmSegment segment = Foundation.CreateRaw(name, 1);
        try
        {
            using NamedSemaphore wake = segment.OpenSemaphore(0);
            using Process child = ChildProcesses.Start("sem-idle", null, name);
            ChildProcesses.Expect(child, "READY");
            MeasureIdle(ctx, "shmipc.idle_semaphore_waiter_cpu_pct", child, ctx.Options.IdleWindow);
            wake.Post();
            ChildProcesses.Join(child, TimeSpan.FromSeconds(10));
        }
        finally
        {
            segment.Unlink();
        }
    }

    /// <summary>
    /// Records the CPU of <paramref name="child"/> over <paramref name="window"/> in % of one core as
    /// <paramref name="name"/> (from /proc/pid/stat, utime + stime: the figure the goals use) and as
    /// name_schedstat (per-thread scheduler time in ns: the same thing without the 10 ms tick
    /// granularity, which at 10 s is 0.1% of a core, half the goal). Starts after a one-second settle so
    /// the runtime's start-up work (tiered JIT, GC init) is not counted.
    /// </summary>
    public static void MeasureIdle(HarnessContext ctx, string name, Process child, TimeSpan window)
    {
        Thread.Sleep(TimeSpan.FromSeconds(1));
        TimeSpan before = ProcessCpu.Read(child.Id);
        TimeSpan? preciseBefore = ProcessCpu.ReadPrecise(child.Id);
        long start = Stopwatch.GetTimestamp();
        while (Stopwatch.GetElapsedTime(start) < window)
        {
            ctx.Progress.Detail($"{Stopwatch.GetElapsedTime(start).TotalSeconds:0}/{window.TotalSeconds:0} s");
            Thread.Sleep(250);
        }

        TimeSpan used = ProcessCpu.Read(child.Id) - before;
        TimeSpan? preciseUsed = ProcessCpu.ReadPrecise(child.Id) - preciseBefore;
        TimeSpan elapsed = Stopwatch.GetElapsedTime(start);
        ctx.Note($"idle CPU read from /proc/{child.Id}/stat over {elapsed.TotalSeconds:0.0} s, resolution {ProcessCpu.Resolution.TotalMilliseconds:0} ms " +
            $"({ProcessCpu.Resolution / elapsed * 100:0.###}% of a core)");
        ctx.Record(name, "%", used / elapsed * 100);
        if (preciseUsed is TimeSpan precise)
        {
            ctx.Record(name + "_schedstat", "%", precise / elapsed * 100);
        }
    }
}
