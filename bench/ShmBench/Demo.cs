using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using ShmIpc.Layout;
using ShmIpc.Memory;
using ShmIpc.Signaling;

namespace ShmIpc.Bench;

/// <summary>The README's first command: real processes exchanging data, and what it measured.</summary>
internal static class Demo
{
    public static int Run(string[] args)
    {
        string mode = args.Length > 0 ? args[0] : "quick";
        Console.CancelKeyPress += (_, e) =>
        {
            ChildProcesses.KillAll();
            ShmMaintenance.RemoveStaleSegments();
        };

        try
        {
            Console.WriteLine($"ShmIpc demo ({mode}) on {Environment.ProcessorCount} cores, .NET {Environment.Version}, pid {Environment.ProcessId}");
            var table = new List<(string Name, double Ns, string Baseline, double BaselineNs)>();

            const int RoundTrips = 20_000;
            Progress("Named semaphore ping-pong between two processes");
            LatencyStats sem = SemaphorePingPong(RoundTrips);
            Console.WriteLine($"  semaphore round trip: {sem}");
            Progress(".NET Unix domain socket ping-pong (8 B) between two processes");
            LatencyStats uds = UdsPingPong(RoundTrips);
            Console.WriteLine($"  socket round trip:    {uds}");
            table.Add(("semaphore wake round trip", sem.P50, "UDS 8 B round trip", uds.P50));

            Console.WriteLine();
            Console.WriteLine($"{"figure",-32} {"median",12} {"baseline",-24} {"median",12} {"ratio",8}");
            foreach (var row in table)
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{row.Name,-32} {LatencyStats.Fmt(row.Ns),12} {row.Baseline,-24} {LatencyStats.Fmt(row.BaselineNs),12} {row.BaselineNs / row.Ns,7:0.00}x"));
            }

            return 0;
        }
        finally
        {
            ChildProcesses.KillAll();
        }
    }

    private static void Progress(string what) => Console.WriteLine($"- {what} ...");

    private static LatencyStats SemaphorePingPong(int count)
    {
        string name = $"demo-{Environment.ProcessId}-sem";
        using ShmSegment segment = ShmSegment.Create(name, SegmentKind.Raw, 128, 0, 2, false, static _ => { });
        try
        {
            using NamedSemaphore ping = segment.OpenSemaphore(0);
            using NamedSemaphore pong = segment.OpenSemaphore(1);
            using Process child = ChildProcesses.Start("sem-pong", name, count.ToString(CultureInfo.InvariantCulture));
            ChildProcesses.Expect(child, "READY");
            long[] ticks = new long[count];
            for (int i = 0; i < count; i++)
            {
                long start = Stopwatch.GetTimestamp();
                ping.Post();
                while (!pong.Wait(TimeSpan.FromSeconds(5)))
                {
                    if (child.HasExited)
                    {
                        throw new InvalidOperationException("The pong process died.");
                    }
                }

                ticks[i] = Stopwatch.GetTimestamp() - start;
            }

            child.WaitForExit();
            return LatencyStats.From(ticks, count);
        }
        finally
        {
            segment.Unlink();
        }
    }

    private static LatencyStats UdsPingPong(int count)
    {
        string path = Path.Combine(Path.GetTempPath(), $"shmipc-demo-{Environment.ProcessId}.sock");
        File.Delete(path);
        using var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(path));
        listener.Listen(1);
        try
        {
            using Process child = ChildProcesses.Start("uds-pong", path, count.ToString(CultureInfo.InvariantCulture));
            using Socket socket = listener.Accept();
            ChildProcesses.Expect(child, "READY");
            Span<byte> buffer = stackalloc byte[8];
            long[] ticks = new long[count];
            for (int i = 0; i < count; i++)
            {
                long start = Stopwatch.GetTimestamp();
                socket.Send(buffer);
                int got = 0;
                while (got < 8)
                {
                    got += socket.Receive(buffer[got..]);
                }

                ticks[i] = Stopwatch.GetTimestamp() - start;
            }

            child.WaitForExit();
            return LatencyStats.From(ticks, count);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
