using System.Buffers.Binary;
using System.Diagnostics;

namespace ShmIpc.TestHost;

// Child sides of the acknowledged-queue tests (AcknowledgedProcessTests).
internal static partial class Scenarios
{
    /// <summary>A message of the torture test: producer, sequence (then padding to 64 bytes).</summary>
    internal const int AckMessageLength = 64;

    static partial void RegisterAcknowledged()
    {
        // ack-produce <name> <producer> <count>: count 64-byte messages (producer, sequence), then DONE.
        Add("ack-produce", a =>
        {
            using ShmQueue queue = ShmQueue.Open(a[0]);
            int producer = Int(a[1]), count = Int(a[2]);
            byte[] message = new byte[AckMessageLength];
            Say("READY");
            for (int i = 0; i < count; i++)
            {
                BinaryPrimitives.WriteInt32LittleEndian(message, producer);
                BinaryPrimitives.WriteInt32LittleEndian(message.AsSpan(4), i);
                queue.Enqueue(message, TimeSpan.FromSeconds(120));
            }

            Say("DONE");
            return 0;
        });

        // ack-consume <name> <file> <workMilliseconds>: takes, "works" (sleeps), appends (producer, sequence, deliveryCount) to
        // its file with one write (so a record is either whole or missing), then acks; until the queue is shut down.
        Add("ack-consume", a =>
        {
            using ShmQueue queue = ShmQueue.Open(a[0]);
            using var file = new FileStream(a[1], FileMode.Append, FileAccess.Write, FileShare.Read, bufferSize: 0);
            int work = Int(a[2]);
            byte[] record = new byte[12];
            Say("READY");
            try
            {
                while (true)
                {
                    using ShmDelivery delivery = queue.Take(TimeSpan.FromSeconds(120));
                    Thread.Sleep(work); // the job: a kill lands before, during or after it
                    delivery.Span[..8].CopyTo(record);
                    BinaryPrimitives.WriteInt32LittleEndian(record.AsSpan(8), delivery.DeliveryCount);
                    file.Write(record);
                    delivery.Ack();
                }
            }
            catch (ShmQueueShutDownException)
            {
                Say("DONE");
                return 0;
            }
        });

        // ack-take-hold <name>: takes one message, prints "TAKEN <deliveryCount> <first int>", waits for a line on stdin,
        // acks it, prints ACKED. Killed while waiting, it is a consumer that died holding a delivery.
        Add("ack-take-hold", a =>
        {
            using ShmQueue queue = ShmQueue.Open(a[0]);
            Say("READY");
            ShmDelivery delivery = queue.Take(TimeSpan.FromSeconds(60));
            Say($"TAKEN {delivery.DeliveryCount} {BinaryPrimitives.ReadInt32LittleEndian(delivery.Span)}");
            _ = Console.ReadLine();
            delivery.Ack();
            Say("ACKED");
            return 0;
        });

        // ack-poison-worker <name>: acks every message but the poison (first int -1), on which it SIGKILLs itself.
        // Exits 0 (printing DONE <acked>) once the queue stays empty for a second.
        Add("ack-poison-worker", a =>
        {
            using ShmQueue queue = ShmQueue.Open(a[0]);
            Say("READY");
            int acked = 0;
            while (queue.TryTake(out ShmDelivery delivery, TimeSpan.FromSeconds(1)))
            {
                if (BinaryPrimitives.ReadInt32LittleEndian(delivery.Span) == -1)
                {
                    Say($"POISON {delivery.DeliveryCount}");
                    Process.GetCurrentProcess().Kill(); // SIGKILL: dies holding the delivery
                }

                delivery.Ack();
                acked++;
            }

            Say($"DONE {acked}");
            return 0;
        });
    }
}
