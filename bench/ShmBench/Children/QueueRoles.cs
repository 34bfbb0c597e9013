using System.Diagnostics;
using System.Globalization;
using ShmIpc.Layout;
using ShmIpc.Memory;
using ShmIpc.Signaling;

namespace ShmIpc.Bench.Children;

/// <summary>
/// The peers of the queue and idle scenarios: processes that open a <see cref="ShmQueue"/> the parent
/// created. The first byte of every message says what it is (<see cref="QueueData"/>, <see cref="QueueLast"/>,
/// <see cref="QueueStop"/>).
/// </summary>
internal static partial class ChildRoles
{
    /// <summary>An ordinary message.</summary>
    public const byte QueueData = 0;

    /// <summary>A producer's last message of a run: the consumer that takes it prints "LAST &lt;Stopwatch timestamp&gt;".</summary>
    public const byte QueueLast = 1;

    /// <summary>Tells the consumer that takes it to exit.</summary>
    public const byte QueueStop = 2;

    /// <summary>
    /// Producer <paramref name="index"/> of <paramref name="producers"/>: for the warm-up and each of
    /// <paramref name="runs"/> runs, waits on semaphore <paramref name="index"/> of the control segment, then
    /// enqueues its share of the run's messages (the last one marked <see cref="QueueLast"/>).
    /// </summary>
    private static void QueueProducer(string queueName, string controlName, int index, int size, int warmup, int count, int runs, int producers, ShmQueueOptions? options)
    {
        using ShmQueue queue = ShmQueue.Open(queueName, options);
        using ShmSegment control = ShmSegment.Open(controlName, SegmentKind.Raw, TimeSpan.FromSeconds(5));
        using NamedSemaphore go = control.OpenSemaphore(index);
        byte[] message = new byte[size];
        Ready();
        for (int r = -1; r < runs; r++)
        {
            int total = r < 0 ? warmup : count;
            int share = (total / producers) + (index < total % producers ? 1 : 0);
            while (!go.Wait(TimeSpan.FromSeconds(1)))
            {
            }

            message[0] = QueueData;
            for (int i = 1; i < share; i++)
            {
                queue.Enqueue(message);
            }

            message[0] = QueueLast;
            queue.Enqueue(message);
        }
    }

    /// <summary>Dequeues without allocating until a <see cref="QueueStop"/> message; prints "LAST timestamp" for each <see cref="QueueLast"/>.</summary>
    private static void QueueConsumer(string queueName, int size, ShmQueueOptions? options)
    {
        using ShmQueue queue = ShmQueue.Open(queueName, options);
        byte[] buffer = new byte[Math.Max(1, size)];
        Ready();
        while (true)
        {
            int length = queue.Dequeue(buffer, Timeout.InfiniteTimeSpan);
            byte kind = length > 0 ? buffer[0] : QueueStop;
            if (kind == QueueLast)
            {
                long now = Stopwatch.GetTimestamp();
                Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"LAST {now}"));
                Console.Out.Flush();
            }
            else if (kind == QueueStop)
            {
                return;
            }
        }
    }

    /// <summary>
    /// <see cref="QueueProducer"/> through the queue's ring alone (<see cref="RingOnly"/>: no call guard, no notify, no
    /// metrics): spins while the ring is full. The diagnostic beside the queue's 64 B 1 -> 1 figure (brief P, step 1).
    /// </summary>
    private static void QueueRingProducer(string queueName, string controlName, int size, int warmup, int count, int runs)
    {
        using ShmQueue queue = ShmQueue.Open(queueName);
        using ShmSegment control = ShmSegment.Open(controlName, SegmentKind.Raw, TimeSpan.FromSeconds(5));
        using NamedSemaphore go = control.OpenSemaphore(0);
        byte[] message = new byte[size];
        Ready();
        for (int r = -1; r < runs; r++)
        {
            int total = r < 0 ? warmup : count;
            while (!go.Wait(TimeSpan.FromSeconds(1)))
            {
            }

            for (int i = 1; i <= total; i++)
            {
                message[0] = i == total ? QueueLast : QueueData;
                while (!RingOnly.TryWrite(queue.Ring, message))
                {
                    Thread.SpinWait(8 * 20); // as the queue's wait for a batch: ReadPosition looked at every 8th poll
                }
            }
        }
    }

    /// <summary>
    /// <see cref="QueueConsumer"/> through the ring alone: spins on an empty ring, and after ~1 ms of finding nothing sleeps
    /// 1 ms at a time (the ring-only producer posts no wake-ups), so it leaves the core to the paired C runs between runs.
    /// </summary>
    private static void QueueRingConsumer(string queueName, int size)
    {
        using ShmQueue queue = ShmQueue.Open(queueName);
        byte[] buffer = new byte[Math.Max(1, size)];
        long threshold = queue.Capacity / 4;
        Ready();
        long idleSince = 0;
        while (true)
        {
            int length = RingOnly.TryRead(queue.Ring, buffer, threshold);
            if (length < 0)
            {
                long now = Stopwatch.GetTimestamp();
                if (idleSince == 0)
                {
                    idleSince = now;
                }
                else if (Stopwatch.GetElapsedTime(idleSince, now) > TimeSpan.FromMilliseconds(1))
                {
                    Thread.Sleep(1);
                }

                continue;
            }

            idleSince = 0;
            byte kind = length > 0 ? buffer[0] : QueueStop;
            if (kind == QueueLast)
            {
                Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"LAST {Stopwatch.GetTimestamp()}"));
                Console.Out.Flush();
            }
            else if (kind == QueueStop)
            {
                return;
            }
        }
    }

    /// <summary>The options of an optional "spin microseconds" argument (the oversubscribed scenario's experiment); null: the defaults.</summary>
    private static ShmQueueOptions? QueueOptions(string[] args, int at) =>
        args.Length > at
            ? new ShmQueueOptions { WaitStrategy = ShmWaitStrategy.Default with { SpinDuration = TimeSpan.FromMicroseconds(Int(args[at])) } }
            : null;

    /// <summary>Blocks in <see cref="ShmQueue.Dequeue()"/> on an empty queue until the parent enqueues one message.</summary>
    private static void QueueIdleConsumer(string queueName)
    {
        using ShmQueue queue = ShmQueue.Open(queueName);
        Ready();
        _ = queue.Dequeue();
    }
}
