using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;

namespace ShmIpc.Bench.Children;

/// <summary>The producer of the 64 MiB message (scenario large, issue 17).</summary>
internal static class LargeRoles
{
    public static int? TryRun(string role, string[] args)
    {
        if (role != "large-producer")
        {
            return null;
        }

        // large-producer <queue> <go queue> <length> <messages>: for each byte on the go queue, stamps the clock into a
        // message of <length> bytes and enqueues it (the consumer times from the stamp to having read it).
        using ShmQueue queue = ShmQueue.Open(args[0]);
        using ShmQueue go = ShmQueue.Open(args[1]);
        byte[] payload = new byte[int.Parse(args[2], CultureInfo.InvariantCulture)];
        payload.AsSpan().Fill(7);
        int messages = int.Parse(args[3], CultureInfo.InvariantCulture);
        Console.WriteLine("READY");
        for (int i = 0; i < messages; i++)
        {
            go.Dequeue(TimeSpan.FromMinutes(2));
            BinaryPrimitives.WriteInt64LittleEndian(payload, Stopwatch.GetTimestamp());
            queue.Enqueue(payload, TimeSpan.FromMinutes(2));
        }

        return 0;
    }
}
