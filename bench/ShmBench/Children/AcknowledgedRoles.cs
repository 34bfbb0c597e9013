using System.Diagnostics;
using System.Globalization;

namespace ShmIpc.Bench.Children;

/// <summary>Peers of the acknowledged scenario: a take + ack consumer, and a taker that holds its delivery until killed.</summary>
internal static class AcknowledgedRoles
{
    public static int? TryRun(string role, string[] args)
    {
        switch (role)
        {
            case "queue-ack-consumer":
                AckConsumer(args[0], int.Parse(args[1], CultureInfo.InvariantCulture));
                return 0;
            case "queue-join-consumer":
                JoinConsumer(args[0], int.Parse(args[1], CultureInfo.InvariantCulture));
                return 0;
            case "queue-ack-hold":
                AckHold(args[0]);
                return 0;
            default:
                return null;
        }
    }

    /// <summary>As the queue-consumer role, but each message is a <see cref="ShmQueue.Take(CancellationToken)"/> then an Ack.</summary>
    private static void AckConsumer(string queueName, int size)
    {
        using ShmQueue queue = ShmQueue.Open(queueName);
        Console.Out.WriteLine("READY");
        Console.Out.Flush();
        while (true)
        {
            using ShmDelivery delivery = queue.Take();
            byte kind = delivery.Length > 0 ? delivery.Span[0] : ChildRoles.QueueStop;
            delivery.Ack();
            if (kind == ChildRoles.QueueLast)
            {
                Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"LAST {Stopwatch.GetTimestamp()}"));
                Console.Out.Flush();
            }
            else if (kind == ChildRoles.QueueStop)
            {
                return;
            }
        }
    }

    /// <summary>As the queue-consumer role on a joinable queue: each message is a Dequeue, then a TaskDone.</summary>
    private static void JoinConsumer(string queueName, int size)
    {
        using ShmQueue queue = ShmQueue.Open(queueName);
        byte[] buffer = new byte[Math.Max(1, size)];
        Console.Out.WriteLine("READY");
        Console.Out.Flush();
        while (true)
        {
            int length = queue.Dequeue(buffer, Timeout.InfiniteTimeSpan);
            queue.TaskDone();
            byte kind = length > 0 ? buffer[0] : ChildRoles.QueueStop;
            if (kind == ChildRoles.QueueLast)
            {
                Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"LAST {Stopwatch.GetTimestamp()}"));
                Console.Out.Flush();
            }
            else if (kind == ChildRoles.QueueStop)
            {
                return;
            }
        }
    }

    /// <summary>Takes one message, says TAKEN, and holds it until it is killed (or its parent goes).</summary>
    private static void AckHold(string queueName)
    {
        using ShmQueue queue = ShmQueue.Open(queueName);
        Console.Out.WriteLine("READY");
        Console.Out.Flush();
        ShmDelivery delivery = queue.Take(TimeSpan.FromSeconds(60));
        Console.Out.WriteLine("TAKEN");
        Console.Out.Flush();
        Console.In.ReadLine();
        delivery.Ack();
    }
}
