namespace ShmIpc.Bench.Children;

/// <summary>
/// The consumers of the loans scenario: they read every message in place (ReceiveMany, or TryDequeue with a reader),
/// check every byte against the fill the producer wrote, and acknowledge a message marked last with 1 (all right) or 0.
/// </summary>
internal static class LoanRoles
{
    /// <summary>First byte of a message: an ordinary one, the last of a run (acknowledge it), or the end of the queue stream.</summary>
    public const byte Plain = 0;
    public const byte Last = 1;
    public const byte Stop = 2;

    public static int? TryRun(string role, string[] args)
    {
        switch (role)
        {
            case "pipe-loan-sink":
                PipeSink(args[0]);
                return 0;
            case "queue-loan-sink":
                QueueSink(args[0], args[1]);
                return 0;
            default:
                return null;
        }
    }

    /// <summary>The producer's side: byte 0 says what the message is, the rest is filled with the message's number (one memset-speed pass).</summary>
    public static void Write(Span<byte> message, int number, bool last)
    {
        message[0] = last ? Last : Plain;
        message[1..].Fill((byte)number);
    }

    public static void CheckAck(byte ack, string figure)
    {
        if (ack != 1)
        {
            throw new InvalidOperationException($"{figure}: the consumer found messages that were not written whole.");
        }
    }

    /// <summary>Reads every byte once (vectorized): true when the message is its fill throughout.</summary>
    private static bool IsWhole(ReadOnlySpan<byte> message) =>
        message.Length < 2 || !message[2..].ContainsAnyExcept(message[1]);

    private sealed class SinkState
    {
        public bool AllWhole = true;
        public bool LastSeen;
    }

    private static void PipeSink(string name)
    {
        using ShmConnection pipe = ShmPipe.Connect(name);
        var state = new SinkState();
        Console.Out.WriteLine("READY");
        Console.Out.Flush();
        try
        {
            while (true)
            {
                pipe.ReceiveMany(static (message, s) =>
                {
                    s.AllWhole &= IsWhole(message);
                    s.LastSeen |= message.Length > 0 && message[0] == Last;
                }, state, 64, TimeSpan.FromSeconds(1));
                if (state.LastSeen)
                {
                    pipe.Send([state.AllWhole ? (byte)1 : (byte)0]);
                    state.LastSeen = false;
                    state.AllWhole = true;
                }
            }
        }
        catch (ShmPeerClosedException)
        {
        }
    }

    private static void QueueSink(string name, string ackName)
    {
        using ShmQueue queue = ShmQueue.Open(name);
        using ShmQueue acks = ShmQueue.Open(ackName);
        bool allWhole = true;
        Console.Out.WriteLine("READY");
        Console.Out.Flush();
        while (true)
        {
            if (!queue.TryDequeue(static (message, _) => (Kind: message.Length > 0 ? message[0] : Plain, Whole: IsWhole(message)), 0,
                TimeSpan.FromSeconds(1), out (byte Kind, bool Whole) got))
            {
                continue;
            }

            allWhole &= got.Whole;
            if (got.Kind == Stop)
            {
                return;
            }

            if (got.Kind == Last)
            {
                acks.Enqueue([allWhole ? (byte)1 : (byte)0]);
                allWhole = true;
            }
        }
    }
}
