using System.Buffers.Binary;
using System.Globalization;
using System.IO.Pipes;
using System.Net.Sockets;
using ShmIpc.Bench.Harness;
using ShmIpc.Layout;
using ShmIpc.Memory;
using ShmIpc.Signaling;

namespace ShmIpc.Bench.Children;

/// <summary>
/// The peer side of each cross-process measurement, run as "ShmBench child &lt;role&gt; ...". A child
/// prints READY when it is set up, exits when its work is done, and also exits as soon as its stdin
/// closes (the parent died), so no child outlives the harness.
/// Add a role here when a scenario needs a new peer; the Pipe's and the Queue's are in PipeRoles.cs and QueueRoles.cs.
/// </summary>
internal static partial class ChildRoles
{
    public static int Run(string role, string[] args)
    {
        WatchParent();
        if (Environment.GetEnvironmentVariable(Affinity.ChildCpuVariable) is string cpu)
        {
            Affinity.Set(int.Parse(cpu, CultureInfo.InvariantCulture));
        }

        switch (role)
        {
            case "hello":
                Console.Out.WriteLine("hello");
                return 0;
            case "hello-wait":
                // A bare .NET console process that stays (its resident memory is measured); ends when stdin closes.
                Console.Out.WriteLine("hello");
                Console.Out.Flush();
                Thread.Sleep(Timeout.Infinite);
                return 0;
            case "pool-many":
                return Scenarios.StartScenario.PoolManyChild(Int(args[0]), Int(args[1]));
            case "square-sum":
                SquareSum(args[0], Int(args[1]), Long(args[2]), Long(args[3]));
                return 0;
            case "sem-pong":
                SemPong(args[0], Long(args[1]));
                return 0;
            case "sem-idle":
                SemIdle(args[0]);
                return 0;
            case "uds-pong":
                UdsPong(args[0], Long(args[1]));
                return 0;
            case "uds-sink":
                UdsSink(args[0]);
                return 0;
            case "pipe-pong":
                AnonymousPipePong(args[0], args[1], Long(args[2]));
                return 0;

            case "pipe-echo":
                PipeEcho(args[0], args[1] == "nospin");
                return 0;
            case "pipe-sink":
                PipeSink(args[0]);
                return 0;
            case "pipe-sink-batched":
                PipeSinkBatched(args[0]);
                return 0;
            case "queue-producer":
                QueueProducer(args[0], args[1], Int(args[2]), Int(args[3]), Int(args[4]), Int(args[5]), Int(args[6]), Int(args[7]), QueueOptions(args, 8));
                return 0;
            case "queue-consumer":
                QueueConsumer(args[0], Int(args[1]), QueueOptions(args, 2));
                return 0;
            case "queue-ring-producer":
                QueueRingProducer(args[0], args[1], Int(args[3]), Int(args[4]), Int(args[5]), Int(args[6]));
                return 0;
            case "queue-ring-consumer":
                QueueRingConsumer(args[0], Int(args[1]));
                return 0;
            case "queue-idle-consumer":
                QueueIdleConsumer(args[0]);
                return 0;
            default:
                if (InteropRoles.TryRun(role, args) is int interop)
                {
                    return interop;
                }

                if (SyncRoles.TryRun(role, args) is int sync)
                {
                    return sync;
                }

                if (AsyncRoles.TryRun(role, args) is int awaited)
                {
                    return awaited;
                }

                if (LargeRoles.TryRun(role, args) is int large)
                {
                    return large;
                }

                if (LoanRoles.TryRun(role, args) is int loaned)
                {
                    return loaned;
                }

                if (AcknowledgedRoles.TryRun(role, args) is int acknowledged)
                {
                    return acknowledged;
                }

                Console.Error.WriteLine($"unknown role {role}");
                return 2;
        }
    }

    private static int Int(string s) => int.Parse(s, CultureInfo.InvariantCulture);

    private static long Long(string s) => long.Parse(s, CultureInfo.InvariantCulture);

    private static void Ready()
    {
        Console.Out.WriteLine("READY");
        Console.Out.Flush();
    }

    /// <summary>Our stdin is a pipe from the parent: end of file means the parent is gone, so go too.</summary>
    private static void WatchParent()
    {
        var watcher = new Thread(static () =>
        {
            using Stream stdin = Console.OpenStandardInput();
            byte[] buffer = new byte[64];
            while (stdin.Read(buffer) > 0)
            {
            }

            Environment.Exit(3);
        })
        {
            IsBackground = true,
            Name = "parent watcher",
        };
        watcher.Start();
    }

    /// <summary>The demo's worker: sums i*i over [from, to) and returns it through slot <paramref name="slot"/> of a raw segment.</summary>
    private static unsafe void SquareSum(string segmentName, int slot, long from, long to)
    {
        using ShmSegment segment = ShmSegment.Open(segmentName, SegmentKind.Raw, TimeSpan.FromSeconds(5));
        long sum = 0;
        for (long i = from; i < to; i++)
        {
            sum += i * i;
        }

        // Release store: the parent reads the slot after joining this process.
        Volatile.Write(ref ((long*)segment.Control)[slot], sum);
        Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"pid {Environment.ProcessId}: sum of squares [{from}, {to}) = {sum}"));
    }

    /// <summary>Semaphore ping-pong: wait on semaphore 0, post semaphore 1.</summary>
    private static void SemPong(string name, long count)
    {
        using ShmSegment segment = ShmSegment.Open(name, SegmentKind.Raw, TimeSpan.FromSeconds(5));
        using NamedSemaphore ping = segment.OpenSemaphore(0);
        using NamedSemaphore pong = segment.OpenSemaphore(1);
        Ready();
        for (long i = 0; i < count; i++)
        {
            while (!ping.Wait(TimeSpan.FromSeconds(5)))
            {
            }

            pong.Post();
        }
    }

    /// <summary>Blocks on semaphore 0 in slices of the default sleep slice until it is posted once.</summary>
    private static void SemIdle(string name)
    {
        using ShmSegment segment = ShmSegment.Open(name, SegmentKind.Raw, TimeSpan.FromSeconds(5));
        using NamedSemaphore wake = segment.OpenSemaphore(0);
        TimeSpan slice = ShmWaitStrategy.Default.SleepSlice;
        Ready();
        while (!wake.Wait(slice))
        {
        }
    }

    /// <summary>Unix domain socket echo of 8-byte messages.</summary>
    private static void UdsPong(string path, long count)
    {
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        socket.Connect(new UnixDomainSocketEndPoint(path));
        Ready();
        byte[] buffer = new byte[8];
        for (long i = 0; i < count; i++)
        {
            Baselines.DotnetBaselines.ReceiveExactly(socket, buffer);
            socket.Send(buffer);
        }
    }

    /// <summary>Reads runs of "count, then count x 64 bytes" and answers one byte per run; a count of 0 ends.</summary>
    private static void UdsSink(string path)
    {
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        socket.Connect(new UnixDomainSocketEndPoint(path));
        Ready();
        byte[] header = new byte[8];
        byte[] buffer = new byte[64 * 1024];
        while (true)
        {
            Baselines.DotnetBaselines.ReceiveExactly(socket, header);
            long bytes = BinaryPrimitives.ReadInt64LittleEndian(header) * 64;
            if (bytes == 0)
            {
                return;
            }

            while (bytes > 0)
            {
                int n = socket.Receive(buffer, 0, (int)Math.Min(buffer.Length, bytes), SocketFlags.None);
                if (n == 0)
                {
                    return;
                }

                bytes -= n;
            }

            socket.Send(header.AsSpan(0, 1));
        }
    }

    /// <summary>Anonymous pipe echo of 8-byte messages.</summary>
    private static void AnonymousPipePong(string inHandle, string outHandle, long count)
    {
        using var input = new AnonymousPipeClientStream(PipeDirection.In, inHandle);
        using var output = new AnonymousPipeClientStream(PipeDirection.Out, outHandle);
        Ready();
        byte[] buffer = new byte[8];
        for (long i = 0; i < count; i++)
        {
            input.ReadExactly(buffer);
            output.Write(buffer);
        }
    }
}
