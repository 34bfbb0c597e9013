using System.Globalization;
using ShmIpc.Bench.Harness;
using ShmIpc.Bench.Scenarios;

namespace ShmIpc.Bench.Micro;

/// <summary>
/// "instructions queue|pipe N": N 64 B messages through one structure in this process, nothing else, for
/// bench/instructions.sh, which runs it under valgrind --tool=callgrind at two values of N and divides the difference of the
/// instruction counts by the difference of the N: start-up, JIT and teardown cancel, one message's instructions remain, a
/// figure that does not move with the machine's noise (the cross-core latency, other work). A queue message is
/// Enqueue(span) + Dequeue(span, timeout), the calls the queue scenario's producer and consumer make; a pipe message is
/// Send(span) + ReceiveInto(span) across the two ends of one pipe (PipeBenchmarks.SendReceiveInto). No peer waits, so
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
            Console.Error.WriteLine("usage: ShmBench instructions queue|pipe <messages>");
            return 2;
        }

        byte[] message = new byte[64];
        byte[] buffer = new byte[64];
        long check = 0;
        switch (args[0])
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
            default:
                Console.Error.WriteLine($"unknown structure '{args[0]}': queue or pipe");
                return 2;
        }

        Cleanup.RunAll();
        if (check != 64L * (Warmup + count))
        {
            Console.Error.WriteLine($"{args[0]}: {check} bytes received, {64L * (Warmup + count)} expected");
            return 1;
        }

        Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{args[0]}: {count} messages"));
        return 0;
    }
}
