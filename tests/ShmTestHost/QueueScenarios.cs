using System.Buffers.Binary;
using ShmIpc.Ring;
using ShmIpc.Tests.Common;

namespace ShmIpc.TestHost;

internal static partial class Scenarios
{
    static partial void RegisterQueue()
    {
        // queue-create-world-writable <name>: creates a queue with group access, makes its files writable by anyone
        // (what a hostile user does to a name it took first), then holds it until stdin closes.
        Add("queue-create-world-writable", a =>
        {
            using ShmQueue queue = ShmQueue.Create(a[0], new ShmQueueOptions { GroupAccess = true });
            foreach (string path in Directory.GetFiles("/dev/shm", $"*shmipc.{a[0]}*"))
            {
                File.SetUnixFileMode(path, (UnixFileMode)0b110_110_110);
            }

            Say("READY");
            Hold();
            return 0;
        });

        // queue-create-keep <name>: creates a queue with UnlinkOnDispose = false (the automatic sweep leaves it once its
        // creator is dead; only ShmMaintenance.RemoveStaleSegments or `shmipc clean` remove it), then holds it until killed.
        Add("queue-create-keep", a =>
        {
            using ShmQueue queue = ShmQueue.Create(a[0], new ShmQueueOptions { UnlinkOnDispose = false });
            Say("READY");
            Hold();
            return 0;
        });

        // queue-try-open <name>: says OPENED, or DENIED <type> <message> when Open throws.
        Add("queue-try-open", a =>
        {
            try
            {
                using ShmQueue queue = ShmQueue.Open(a[0]);
                Say("OPENED");
            }
            catch (Exception e) when (e is UnauthorizedAccessException or IOException)
            {
                Say($"DENIED {e.GetType().Name} {e.Message.ReplaceLineEndings(" ")}");
            }

            return 0;
        });

        // queue-produce <name> <producer> <count> <maxPayload>: count self-checking messages (count -1: until killed).
        Add("queue-produce", a =>
        {
            using ShmQueue queue = ShmQueue.Open(a[0]);
            int producer = Int(a[1]), count = Int(a[2]), maxPayload = Int(a[3]);
            byte[] buffer = new byte[QueueMessages.HeaderLength + maxPayload];
            Say("READY");
            for (int i = 0; count < 0 || i < count; i++)
            {
                int length = QueueMessages.Write(buffer, producer, i, maxPayload);
                queue.Enqueue(buffer.AsSpan(0, length));
            }

            Say("DONE");
            return 0;
        });

        // queue-consume <name> <maxPayload> <file>: records every (producer, sequence) received, one write
        // per message (so a SIGKILL loses at most the message in hand), until a stop marker.
        // Exits 3 on a corrupt message or an order violation.
        Add("queue-consume", a =>
        {
            using ShmQueue queue = ShmQueue.Open(a[0]);
            int maxPayload = Int(a[1]);
            using var file = new FileStream(a[2], FileMode.Create, FileAccess.Write, FileShare.Read, bufferSize: 0);
            var last = new Dictionary<int, int>();
            byte[] record = new byte[8];
            Say("READY");
            while (true)
            {
                byte[] message = queue.Dequeue();
                if (message.Length == 4 && BitConverter.ToInt32(message) == -1)
                {
                    break;
                }

                (int producer, int sequence) = QueueMessages.Verify(message, maxPayload);
                if (last.TryGetValue(producer, out int previous) && sequence <= previous)
                {
                    Console.Error.WriteLine($"order violated: producer {producer} sent {sequence} after {previous}");
                    return 3;
                }

                last[producer] = sequence;
                BinaryPrimitives.WriteInt32LittleEndian(record, producer);
                BinaryPrimitives.WriteInt32LittleEndian(record.AsSpan(4), sequence);
                file.Write(record);
            }

            Say("DONE");
            return 0;
        });

        // queue-drain-until-shutdown <name> <sleepSliceMs>: dequeues until the queue is shut down (each wait sleeps in
        // slices that long, so only the shutdown's wake-up ends it early), then tries one enqueue.
        // Prints "SHUTDOWN <messages dequeued> <REFUSED|ACCEPTED>".
        Add("queue-drain-until-shutdown", a =>
        {
            var options = new ShmQueueOptions { WaitStrategy = new ShmWaitStrategy { SleepSlice = TimeSpan.FromMilliseconds(Int(a[1])) } };
            using ShmQueue queue = ShmQueue.Open(a[0], options);
            Say("READY");
            int count = 0;
            try
            {
                while (true)
                {
                    _ = queue.Dequeue();
                    count++;
                }
            }
            catch (ShmQueueShutDownException)
            {
            }

            string enqueue;
            try
            {
                queue.TryEnqueue([1]);
                enqueue = "ACCEPTED";
            }
            catch (ShmQueueShutDownException)
            {
                enqueue = "REFUSED";
            }

            Say($"SHUTDOWN {count} {enqueue}");
            return 0;
        });

        // queue-fill-until-shutdown <name> <sleepSliceMs> <length>: enqueues messages of <length> bytes (its own
        // message number in the first 4) until the queue is shut down. Prints "SHUTDOWN <messages enqueued>".
        Add("queue-fill-until-shutdown", a =>
        {
            var options = new ShmQueueOptions { WaitStrategy = new ShmWaitStrategy { SleepSlice = TimeSpan.FromMilliseconds(Int(a[1])) } };
            using ShmQueue queue = ShmQueue.Open(a[0], options);
            byte[] message = new byte[Int(a[2])];
            Say("READY");
            int count = 0;
            try
            {
                while (true)
                {
                    BinaryPrimitives.WriteInt32LittleEndian(message, count);
                    queue.Enqueue(message);
                    count++;
                }
            }
            catch (ShmQueueShutDownException)
            {
            }

            Say($"SHUTDOWN {count}");
            return 0;
        });

        // queue-claim-hold <name>: claims space for a record and never commits it, then waits to be killed.
        Add("queue-claim-hold", a =>
        {
            using ShmQueue queue = ShmQueue.Open(a[0]);
            long position = queue.Ring.TryClaim(Int(a[1]));
            Say(position >= 0 ? "CLAIMED" : "FULL");
            Hold();
            return 0;
        });

        // queue-read-hold <name>: takes the next record for reading and never finishes, then waits to be killed.
        Add("queue-read-hold", a =>
        {
            using ShmQueue queue = ShmQueue.Open(a[0]);
            ReadStatus status = queue.Ring.TryBeginRead(out ReadLease lease, out _);
            Say(status == ReadStatus.Claimed ? $"TAKEN {lease.Length}" : $"NOTHING {status}");
            Hold();
            return 0;
        });
    }
}
