namespace ShmIpc.Bench.Children;

/// <summary>The peer of the async scenario: an echo that awaits (ReceiveAsync into a buffer, then SendAsync).</summary>
internal static class AsyncRoles
{
    public static int? TryRun(string role, string[] args)
    {
        switch (role)
        {
            case "pipe-echo-async":
                PipeEchoAsync(args[0], spin: args.Length < 2 || args[1] != "nospin").GetAwaiter().GetResult();
                return 0;
            default:
                return null;
        }
    }

    /// <summary>Echoes every message back with awaited calls until the parent closes its end. Allocates nothing per message.</summary>
    private static async Task PipeEchoAsync(string name, bool spin)
    {
        using ShmConnection pipe = ShmPipe.Connect(name, spin ? null : new ShmPipeOptions { WaitStrategy = ShmWaitStrategy.NoSpin });
        byte[] buffer = new byte[pipe.MaxMessageLength];
        Console.Out.WriteLine("READY");
        Console.Out.Flush();
        try
        {
            while (true)
            {
                int length = await pipe.ReceiveAsync(buffer.AsMemory()).ConfigureAwait(false);
                await pipe.SendAsync(buffer.AsMemory(0, length)).ConfigureAwait(false);
            }
        }
        catch (ShmPeerClosedException)
        {
            // The parent closed its end: done.
        }
    }
}
