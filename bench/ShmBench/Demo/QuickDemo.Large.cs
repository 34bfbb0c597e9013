using System.Buffers.Binary;
using System.Diagnostics;
using ShmIpc.Bench.Harness;
using ShmIpc.Bench.Scenarios;

namespace ShmIpc.Bench.Demo;

// The large-message scene of the quick demo (issue 17): a message longer than the ring goes through a side segment,
// copied once by the sender and read in place by the receiver.
internal static partial class QuickDemo
{
    private const int LargeLength = 64 << 20;

    /// <summary>
    /// A ShmProcess sends two 64 MiB messages into a queue of 1 MiB; the parent reads each in place. The first makes the
    /// sender's side segment (fresh memory: ~10 µs a page here), the second reuses it. The clock is the monotonic one both
    /// processes share: stamped by the sender just before Enqueue, stopped when the parent's reader has the last byte.
    /// </summary>
    private static void LargeMessageScene(HarnessContext ctx)
    {
        string name = Foundation.NewSegmentName("demo-large");
        using var queue = ShmQueue.Create(name, new ShmQueueOptions { Capacity = 1 << 20 });
        using var go = ShmQueue.Create(name + "-go", new ShmQueueOptions { Capacity = 4096 });
        using ShmProcess<int> sender = Cleanup.Own(ShmProcess.Start(DemoTargets.SendLarge, (name, name + "-go", LargeLength, 2)));
        ctx.Progress.Line($"   ShmQueue \"{name}\": a 1 MiB ring, messages up to {queue.MaxMessageLength / 1024} KiB in it; sender pid {sender.Pid}");
        foreach (string which in (string[])["first (makes the side segment)", "second (reuses it)"])
        {
            go.Enqueue([1]);
            queue.TryDequeue(static (span, _) =>
            {
                long stamp = BinaryPrimitives.ReadInt64LittleEndian(span);
                return span[^1] == 7 ? Stopwatch.GetElapsedTime(stamp).TotalMilliseconds : double.NaN;
            }, 0, s_timeout, out double ms);
            ctx.Progress.Line($"   {which}: Enqueue(64 MiB) in pid {sender.Pid} -> read in place here: {ms:0.0} ms, {LargeLength / ms / 1e6:0.00} GB/s");
        }

        ctx.Progress.Line($"   sender sent {sender.GetResult(s_timeout)} messages; left in the queue: {queue.Count}");
    }
}

/// <summary>The large-message scene's sender.</summary>
internal static partial class DemoTargets
{
    /// <summary>Opens the queue, then <c>Count</c> times: waits for a byte on <c>Go</c>, stamps the clock into a <c>Length</c>-byte message, enqueues it.</summary>
    public static int SendLarge((string Queue, string Go, int Length, int Count) job)
    {
        using ShmQueue queue = ShmQueue.Open(job.Queue);
        using ShmQueue go = ShmQueue.Open(job.Go);
        byte[] message = new byte[job.Length];
        message.AsSpan().Fill(7);
        for (int i = 0; i < job.Count; i++)
        {
            _ = go.Dequeue(TimeSpan.FromSeconds(30));
            BinaryPrimitives.WriteInt64LittleEndian(message, Stopwatch.GetTimestamp());
            queue.Enqueue(message, TimeSpan.FromSeconds(30));
        }

        return job.Count;
    }
}
