using System.Globalization;
using System.Net.Sockets;
using ShmIpc.Layout;
using ShmIpc.Memory;
using ShmIpc.Signaling;

namespace ShmIpc.Bench;

/// <summary>The peer side of each cross-process scenario, run as "ShmBench child &lt;role&gt; ...".</summary>
internal static class ChildRoles
{
    public static int Run(string role, string[] args)
    {
        switch (role)
        {
            case "sem-pong":
                SemPong(args[0], int.Parse(args[1], CultureInfo.InvariantCulture));
                return 0;
            case "uds-pong":
                UdsPong(args[0], int.Parse(args[1], CultureInfo.InvariantCulture));
                return 0;
            default:
                Console.Error.WriteLine($"unknown role {role}");
                return 2;
        }
    }

    private static void Ready()
    {
        Console.Out.WriteLine("READY");
        Console.Out.Flush();
    }

    /// <summary>Semaphore ping-pong: wait on semaphore 0, post semaphore 1.</summary>
    private static void SemPong(string name, int count)
    {
        using ShmSegment segment = ShmSegment.Open(name, SegmentKind.Raw, TimeSpan.FromSeconds(5));
        using NamedSemaphore ping = segment.OpenSemaphore(0);
        using NamedSemaphore pong = segment.OpenSemaphore(1);
        Ready();
        for (int i = 0; i < count; i++)
        {
            while (!ping.Wait(TimeSpan.FromSeconds(5)))
            {
            }

            pong.Post();
        }
    }

    /// <summary>Unix domain socket echo of 8-byte messages.</summary>
    private static void UdsPong(string path, int count)
    {
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        socket.Connect(new UnixDomainSocketEndPoint(path));
        Ready();
        Span<byte> buffer = stackalloc byte[8];
        for (int i = 0; i < count; i++)
        {
            int got = 0;
            while (got < 8)
            {
                got += socket.Receive(buffer[got..]);
            }

            socket.Send(buffer);
        }
    }
}
