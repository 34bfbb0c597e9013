using System.Buffers.Binary;
using System.Diagnostics;
using ShmIpc.Bench.Baselines;
using ShmIpc.Bench.Harness;

namespace ShmIpc.Bench.Scenarios;

/// <summary>
/// large (issue 17): one 64 MiB message through a Queue, producer process -> consumer (this process), read in place
/// (<c>shmipc.queue_64MiB_message_ms</c>) and copied out into a new array (<c>shmipc.queue_64MiB_message_copy_ms</c>),
/// beside Python's <c>multiprocessing.Queue</c> with a 64 MiB <c>bytes</c> and a C <c>memcpy</c> of 64 MiB. The producer
/// stamps the shared monotonic clock into the message just before Enqueue; the consumer stops the clock when its reader
/// has the message (in place: first and last byte read; copy: the array made). The first message makes the producer's
/// side segment (fresh memory, reported as <c>shmipc.queue_64MiB_message_fresh_ms</c>); every later one reuses it, because
/// the consumer has handed it back before the next is sent (the producer waits for a "go" on a second queue).
/// </summary>
internal sealed class LargeMessageScenario : IScenario
{
    private const int Length = 64 << 20;

    private static readonly NativeProgram s_memcpy = new("large_memcpy.c", ["-O2"]);

    public string Name => "large";

    public string Title => "Large messages: one 64 MiB message through a Queue (side segment) vs Python and a C memcpy";

    public void Run(HarnessContext ctx)
    {
        int runs = Math.Max(ctx.Options.Runs, 3);
        Measure(ctx, runs);
        if (s_memcpy.Binary is string binary)
        {
            ctx.Progress.Step("C memcpy 64 MiB");
            ExternalBaseline.Run(ctx, binary, [runs.ToString(System.Globalization.CultureInfo.InvariantCulture)], TimeSpan.FromMinutes(2));
        }
        else
        {
            ctx.Note($"C baseline large_memcpy.c skipped: {s_memcpy.Problem}");
        }

        string script = Path.Combine(RepoPaths.Python, "large_message.py");
        if (MachineInfo.Run("python3", null, "--version") is not null && File.Exists(script))
        {
            ctx.Progress.Step("Python multiprocessing.Queue 64 MiB");
            ExternalBaseline.Run(ctx, "python3", [script, runs.ToString(System.Globalization.CultureInfo.InvariantCulture)], TimeSpan.FromMinutes(3), workingDirectory: RepoPaths.Python);
        }
        else
        {
            ctx.Note("py.queue_64MiB_message_ms not measured: no python3");
        }
    }

    private static void Measure(HarnessContext ctx, int runs)
    {
        ctx.Progress.Step("ShmIpc Queue, one 64 MiB message");
        string name = $"bench-large-{Environment.ProcessId}";
        using ShmQueue queue = Cleanup.Own(ShmQueue.Create(name, new ShmQueueOptions { Capacity = 1 << 20 }));
        using ShmQueue go = Cleanup.Own(ShmQueue.Create(name + "-go", new ShmQueueOptions { Capacity = 4096 }));
        int messages = 1 + (2 * runs);
        Process producer = ChildProcesses.Start("large-producer", 1, name, name + "-go", Length.ToString(System.Globalization.CultureInfo.InvariantCulture),
            messages.ToString(System.Globalization.CultureInfo.InvariantCulture));
        try
        {
            ChildProcesses.Expect(producer, "READY");
            ctx.Record("shmipc.queue_64MiB_message_fresh_ms", "ms", InPlace(queue, go));
            for (int r = 0; r < runs; r++)
            {
                ctx.Progress.Detail($"run {r + 1}/{runs}");
                ctx.Record("shmipc.queue_64MiB_message_ms", "ms", InPlace(queue, go));
                ctx.Record("shmipc.queue_64MiB_message_copy_ms", "ms", Copied(queue, go));
            }

            ChildProcesses.Join(producer, TimeSpan.FromMinutes(1));
        }
        finally
        {
            if (!producer.HasExited)
            {
                producer.Kill();
            }
        }

        ctx.Note("shmipc.queue_64MiB_message_ms: producer process (CPU 1) -> this process, Queue of 1 MiB ring (the message goes through a side segment), " +
            "the producer's side segment reused (the first message, which made it, is shmipc.queue_64MiB_message_fresh_ms); read in place by a reader callback. " +
            "shmipc.queue_64MiB_message_copy_ms: the same into a new byte[] (Dequeue). Clock: stamped by the producer before Enqueue (its one copy), stopped when the consumer has it.");
    }

    private static double InPlace(ShmQueue queue, ShmQueue go)
    {
        go.Enqueue([1]);
        queue.TryDequeue(static (span, _) =>
        {
            long stamp = BinaryPrimitives.ReadInt64LittleEndian(span);
            return span[^1] == 7 ? Stopwatch.GetElapsedTime(stamp).TotalMilliseconds : double.NaN;
        }, 0, TimeSpan.FromMinutes(1), out double ms);
        return ms;
    }

    private static double Copied(ShmQueue queue, ShmQueue go)
    {
        go.Enqueue([1]);
        byte[] message = queue.Dequeue(TimeSpan.FromMinutes(1));
        return Stopwatch.GetElapsedTime(BinaryPrimitives.ReadInt64LittleEndian(message)).TotalMilliseconds;
    }
}
