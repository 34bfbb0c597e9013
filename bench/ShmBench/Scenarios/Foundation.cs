using System.Diagnostics;
using System.Globalization;
using ShmIpc.Bench.Harness;
using ShmIpc.Layout;
using ShmIpc.Memory;
using ShmIpc.Signaling;

namespace ShmIpc.Bench.Scenarios;

/// <summary>
/// Measurements of the foundation (segments + named semaphores) that stand in for the Pipe, Queue and
/// Pool until they land. Each segment gets a unique name registered with <see cref="Cleanup"/>.
/// </summary>
internal static class Foundation
{
    private static int s_counter;

    /// <summary>A unique segment name for this process, registered for cleanup.</summary>
    public static string NewSegmentName(string what) =>
        Cleanup.Segment($"bench-{Environment.ProcessId}-{what}-{Interlocked.Increment(ref s_counter)}");

    /// <summary>A raw segment with <paramref name="semaphores"/> semaphores and a control block of <paramref name="controlSize"/> bytes.</summary>
    public static ShmSegment CreateRaw(string name, int semaphores, long controlSize = 128) =>
        ShmSegment.Create(name, SegmentKind.Raw, controlSize, 0, semaphores, false, static _ => { });

    /// <summary>Ping-pong on two ShmIpc named semaphores: shmipc.semaphore_8B_rtt_*.</summary>
    public static void SemaphorePingPong(HarnessContext ctx, RunPlan plan)
    {
        ctx.Progress.Step("ShmIpc named-semaphore ping-pong");
        string name = NewSegmentName("sem");
        using ShmSegment segment = CreateRaw(name, 2);
        try
        {
            using NamedSemaphore ping = segment.OpenSemaphore(0);
            using NamedSemaphore pong = segment.OpenSemaphore(1);
            using Process child = ChildProcesses.Start("sem-pong", null, name, plan.Total.ToString(CultureInfo.InvariantCulture));
            ChildProcesses.Expect(child, "READY");
            ctx.Latency("shmipc.semaphore_8B_rtt", plan, n =>
            {
                long[] ticks = new long[n];
                for (int i = 0; i < n; i++)
                {
                    long start = Stopwatch.GetTimestamp();
                    ping.Post();
                    while (!pong.Wait(TimeSpan.FromSeconds(5)))
                    {
                        if (child.HasExited)
                        {
                            throw new InvalidOperationException("The pong process died.");
                        }
                    }

                    ticks[i] = Stopwatch.GetTimestamp() - start;
                }

                return ticks;
            });
            ChildProcesses.Join(child, TimeSpan.FromSeconds(30));
        }
        finally
        {
            segment.Unlink();
        }
    }
}
