using System.Globalization;
using ShmIpc.Bench.Children;
using ShmIpc.Bench.Harness;
using ShmIpc.Bench.Scenarios;

namespace ShmIpc.Bench.Micro;

/// <summary>
/// "instructions queue|pipe N": N 64 B messages through one structure in this process, nothing else ("instructions map N":
/// a Pool(1) Map of N ints, see below), for
/// bench/instructions.sh, which runs it under valgrind --tool=callgrind at two values of N and divides the difference of the
/// instruction counts by the difference of the N: start-up, JIT and teardown cancel, one message's instructions remain, a
/// figure that does not move with the machine's noise (the cross-core latency, other work). A queue message is
/// Enqueue(span) + Dequeue(span, timeout), the calls the queue scenario's producer and consumer make; a pipe message is
/// Send(span) + ReceiveInto(span) across the two ends of one pipe (PipeBenchmarks.SendReceiveInto); "queue-try" is
/// TryEnqueue(span) + TryDequeue(span, out int) and "queue-ring" the queue's ring alone (<see cref="RingOnly"/>). No peer waits, so
/// nobody sleeps: the figure is the path a message takes when both sides are busy, fences included.
/// Both run <see cref="Warmup"/> messages first, so the measured ones run the steady-state path (no first-use work).
/// </summary>
internal static class InstructionCount
{
    /// <summary>Messages before the counted ones (identical at both N: they cancel).</summary>
    public const int Warmup = 1_000;

    public static int Run(string[] args)
    {
        if (args.Length != 2 || !int.TryParse(args[1], NumberStyles.None, CultureInfo.InvariantCulture, out int count))
        {
            Console.Error.WriteLine("usage: ShmBench instructions queue|queue-try|queue-ring|pipe|map <messages or items>");
            return 2;
        }

        // On a thread of its own: under valgrind the main thread's stack is not the "[stack]" mapping, so the queue's cached
        // call slot (ThreadStack) would never serve it and the count would be of the thread-static path, which a
        // steady-state caller on any other thread does not take.
        int result = 0;
        var counter = new Thread(() => result = Count(args[0], count), 4 << 20);
        counter.Start();
        counter.Join();
        return result;
    }

    private static int Count(string what, int count)
    {
        byte[] message = new byte[64];
        byte[] buffer = new byte[64];
        long check = 0;
        switch (what)
        {
            case "queue":
                using (ShmQueue queue = ShmQueue.Create(Foundation.NewSegmentName("instr-queue"), new ShmQueueOptions { Capacity = 1 << 20, MaxMessageLength = 64 }))
                {
                    for (int i = 0; i < Warmup + count; i++)
                    {
                        queue.Enqueue(message);
                        check += queue.Dequeue(buffer, TimeSpan.FromSeconds(10));
                    }
                }

                break;
            case "queue-try":
                // The same messages through the non-blocking calls: no timeout to check, no wait set up.
                using (ShmQueue queue = ShmQueue.Create(Foundation.NewSegmentName("instr-queue"), new ShmQueueOptions { Capacity = 1 << 20, MaxMessageLength = 64 }))
                {
                    for (int i = 0; i < Warmup + count; i++)
                    {
                        if (!queue.TryEnqueue(message) || !queue.TryDequeue(buffer, out int written))
                        {
                            throw new InvalidOperationException("queue-try: the queue refused a message or lost one");
                        }

                        check += written;
                    }
                }

                break;
            case "queue-ring":
                // The ring alone (Children.RingOnly): the protocol's own work, copies and reclaim included; the queue's
                // figure minus this one is what ShmQueue's layers cost.
                using (ShmQueue queue = ShmQueue.Create(Foundation.NewSegmentName("instr-queue"), new ShmQueueOptions { Capacity = 1 << 20, MaxMessageLength = 64 }))
                {
                    long threshold = queue.Capacity / 4;
                    for (int i = 0; i < Warmup + count; i++)
                    {
                        int written = RingOnly.TryWrite(queue.Ring, message) ? RingOnly.TryRead(queue.Ring, buffer, threshold) : -1;
                        if (written < 0)
                        {
                            throw new InvalidOperationException("queue-ring: the ring refused a message or lost one");
                        }

                        check += written;
                    }
                }

                break;
            case "pipe":
                string name = Foundation.NewSegmentName("instr-pipe");
                using (ShmConnection first = ShmPipe.Create(name))
                using (ShmConnection second = ShmPipe.Connect(name))
                {
                    for (int i = 0; i < Warmup + count; i++)
                    {
                        first.Send(message);
                        check += second.ReceiveInto(buffer);
                    }
                }

                break;
            case "map":
                // A Pool(1) Map of Identity over `count` ints in 4 chunks (the default chunking: four per worker), after
                // two uncounted Maps (the JIT on both sides). The chunk count is the same at every N, so the difference
                // of two runs is the items' own cost: in this process (encode, send, read results) and, counted in the
                // worker's own callgrind file (--trace-children=yes), in the worker.
                using (ShmPool pool = new(1))
                {
                    int[] warm = Enumerable.Range(0, 4 * Warmup).ToArray();
                    pool.Map(PoolTargets.Identity, warm);
                    pool.Map(PoolTargets.Identity, warm);
                    int[] items = Enumerable.Range(0, count).ToArray();
                    int[] results = pool.Map(PoolTargets.Identity, items);
                    check = results.Length == count && (count == 0 || results[^1] == count - 1) ? 64L * (Warmup + count) : -1;

                    // The worker exits by itself (a killed one writes no counts): Close, then wait for it, however slow valgrind makes it.
                    pool.Close();
                    pool.Join(TimeSpan.FromMinutes(5));
                }

                break;
            default:
                Console.Error.WriteLine($"unknown structure '{what}': queue, queue-try, queue-ring, pipe or map");
                return 2;
        }

        Cleanup.RunAll();
        if (check != 64L * (Warmup + count))
        {
            Console.Error.WriteLine($"{what}: {check} bytes received, {64L * (Warmup + count)} expected");
            return 1;
        }

        Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{what}: {count} messages"));
        return 0;
    }
}
