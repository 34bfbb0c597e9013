using System.Diagnostics;
using System.Globalization;
using ShmIpc.Bench.Harness;
using ShmIpc.Memory;
using ShmIpc.Signaling;

namespace ShmIpc.Bench.Scenarios;

/// <summary>
/// idle: how much CPU a process uses while it waits for work that does not come, over a window (10 s in a
/// full run), from the scheduler's per-thread accounting (schedstat) and, beside it, /proc/&lt;pid&gt;/stat ticks.
/// </summary>
internal sealed class IdleScenario : IScenario
{
    public string Name => "idle";

    public string Title => "Idle: CPU of a blocked waiter";

    public void Run(HarnessContext ctx)
    {
        MeasureQueueConsumer(ctx);
        MeasureSemaphoreWaiter(ctx);
    }

    /// <summary>A child blocked in <see cref="ShmQueue.Dequeue()"/> on an empty queue: shmipc.idle_consumer_cpu_pct (the goal's figure).</summary>
    private static void MeasureQueueConsumer(HarnessContext ctx)
    {
        ctx.Progress.Step($"ShmIpc queue consumer blocked on an empty queue for {ctx.Options.IdleWindow.TotalSeconds:0} s");
        string name = Foundation.NewSegmentName("idle-queue");
        using var queue = ShmQueue.Create(name, new ShmQueueOptions { Capacity = 64 * 1024 });
        using Process child = ChildProcesses.Start("queue-idle-consumer", null, name);
        ChildProcesses.Expect(child, "READY");
        MeasureIdle(ctx, "shmipc.idle_consumer_cpu_pct", child, ctx.Options.IdleWindow);
        queue.Enqueue([42]);
        ChildProcesses.Join(child, TimeSpan.FromSeconds(10));
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
    /// Records the CPU of <paramref name="child"/> over <paramref name="window"/> in % of one core, all
    /// threads: as <paramref name="name"/> from /proc/pid/task/*/schedstat (the scheduler's ns accounting:
    /// the figure the goals use) and as name_procstat from /proc/pid/stat (utime + stime in 10 ms ticks,
    /// which at 10 s is 0.1% of a core, half the goal, and can over-count a process that wakes 10 times a
    /// second). Without schedstat, <paramref name="name"/> falls back to the tick figure, with a note.
    /// Starts after a one-second settle so the runtime's start-up work (tiered JIT, GC init) is not counted.
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
        double ticks = used / elapsed * 100;
        ctx.Record(name + "_procstat", "%", ticks);
        if (preciseUsed is TimeSpan precise)
        {
            double pct = precise / elapsed * 100;
            ctx.Record(name, "%", pct);
            ctx.Note(string.Create(CultureInfo.InvariantCulture,
                $"{name}: {pct:0.###}% from /proc/{child.Id}/task/*/schedstat (ns accounting; this is the figure the goal uses), " +
                $"{ticks:0.###}% from /proc/{child.Id}/stat over {elapsed.TotalSeconds:0.0} s (10 ms ticks: resolution {ProcessCpu.Resolution / elapsed * 100:0.###}% of a core)"));
        }
        else
        {
            ctx.Record(name, "%", ticks);
            ctx.Note($"{name}: no schedstat on this kernel; the figure is the tick-sampled /proc/{child.Id}/stat one (resolution {ProcessCpu.Resolution / elapsed * 100:0.###}% of a core)");
        }
    }
}
