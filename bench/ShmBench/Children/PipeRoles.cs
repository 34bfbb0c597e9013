namespace ShmIpc.Bench.Children;

/// <summary>The peers of the pipe scenario: the connecting end of a <see cref="ShmPipe"/> the parent created.</summary>
internal static partial class ChildRoles
{
    /// <summary>The stream sink answers a message whose first byte is this with a one-byte acknowledgement.</summary>
    public const byte PipeAckRequest = 1;

    /// <summary>
    /// Echoes every message back until the parent closes its end. With <paramref name="noSpin"/> this end waits
    /// with <see cref="ShmWaitStrategy.NoSpin"/>: straight to the semaphore, so every message wakes it.
    /// Allocates nothing per message.
    /// </summary>
    private static void PipeEcho(string name, bool noSpin)
    {
        var options = new ShmPipeOptions { WaitStrategy = noSpin ? ShmWaitStrategy.NoSpin : ShmWaitStrategy.Default };
        using ShmConnection pipe = ShmPipe.Connect(name, options);
        byte[] buffer = new byte[pipe.MaxMessageLength];
        Ready();
        try
        {
            while (true)
            {
                int length = pipe.ReceiveInto(buffer);
                pipe.Send(buffer.AsSpan(0, length));
            }
        }
        catch (ShmPeerClosedException)
        {
            // The parent closed its end: done.
        }
    }

    /// <summary>As <see cref="PipeSink"/>, draining the pipe with <see cref="ShmConnection.ReceiveMany"/>.</summary>
    private static void PipeSinkBatched(string name)
    {
        using ShmConnection pipe = ShmPipe.Connect(name);
        var acks = new int[1];
        Ready();
        try
        {
            while (true)
            {
                pipe.ReceiveMany(static (message, acks) =>
                {
                    if (message.Length > 0 && message[0] == PipeAckRequest)
                    {
                        acks[0]++;
                    }
                }, acks, 4096, Timeout.InfiniteTimeSpan);
                for (; acks[0] > 0; acks[0]--)
                {
                    pipe.Send([PipeAckRequest]);
                }
            }
        }
        catch (ShmPeerClosedException)
        {
        }
    }

    /// <summary>Receives a one-way stream; answers one byte to a message that starts with <see cref="PipeAckRequest"/>.</summary>
    private static void PipeSink(string name)
    {
        using ShmConnection pipe = ShmPipe.Connect(name);
        byte[] buffer = new byte[pipe.MaxMessageLength];
        byte[] ack = [PipeAckRequest];
        Ready();
        try
        {
            while (true)
            {
                int length = pipe.ReceiveInto(buffer);
                if (length > 0 && buffer[0] == PipeAckRequest)
                {
                    pipe.Send(ack);
                }
            }
        }
        catch (ShmPeerClosedException)
        {
        }
    }
}
