namespace ShmIpc.Bench.Children;

/// <summary>
/// The .NET peers of the interop scenario, so its C and Python figures have .NET-to-.NET twins measured
/// the same way in the same run. Roles: "interop-pipe-echo NAME" (connects, echoes until the pipe closes),
/// "interop-queue-blast NAME COUNT SIZE" (enqueues COUNT messages of SIZE bytes).
/// </summary>
internal static class InteropRoles
{
    /// <summary>Runs <paramref name="role"/> when it is one of ours; null otherwise.</summary>
    public static int? TryRun(string role, string[] args)
    {
        switch (role)
        {
            case "interop-pipe-echo":
            {
                using ShmConnection connection = ShmPipe.Connect(args[0]);
                byte[] buffer = new byte[connection.MaxMessageLength];
                Console.Out.WriteLine("READY");
                Console.Out.Flush();
                try
                {
                    while (true)
                    {
                        int length = connection.ReceiveInto(buffer);
                        connection.Send(buffer.AsSpan(0, length));
                    }
                }
                catch (ShmPeerClosedException)
                {
                }

                return 0;
            }

            case "interop-queue-blast":
            {
                using ShmQueue queue = ShmQueue.Open(args[0]);
                long count = long.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture);
                byte[] message = new byte[int.Parse(args[2], System.Globalization.CultureInfo.InvariantCulture)];
                Console.Out.WriteLine("READY");
                Console.Out.Flush();
                for (long i = 0; i < count; i++)
                {
                    queue.Enqueue(message);
                }

                return 0;
            }

            default:
                return null;
        }
    }
}
