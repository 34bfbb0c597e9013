using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.IO.Pipes;
using System.Net.Sockets;
using ShmIpc.Bench.Harness;

namespace ShmIpc.Bench.Baselines;

/// <summary>
/// The .NET column: what a .NET program uses today between two processes. Each peer is this program
/// in a child role (<see cref="Children.ChildRoles"/>); both sides block in the kernel, so nothing spins.
/// </summary>
internal static class DotnetBaselines
{
    private const int StreamMessage = 64;

    /// <summary>Unix domain socket 8 B ping-pong: dotnet.uds_8B_rtt_*.</summary>
    public static void UdsPingPong(HarnessContext ctx)
    {
        RunPlan plan = ctx.Plan(30_000);
        ctx.Progress.Step(".NET Unix domain socket 8 B ping-pong");
        using var link = UdsLink.Open("uds-pong", Str(plan.Total));
        byte[] buffer = new byte[8];
        ctx.Latency("dotnet.uds_8B_rtt", plan, n =>
        {
            long[] ticks = new long[n];
            for (int i = 0; i < n; i++)
            {
                long start = Stopwatch.GetTimestamp();
                link.Socket.Send(buffer);
                ReceiveExactly(link.Socket, buffer);
                ticks[i] = Stopwatch.GetTimestamp() - start;
            }

            return ticks;
        });
        link.Join();
    }

    /// <summary>Anonymous pipes (one each way) 8 B ping-pong: dotnet.anon_pipe_8B_rtt_*.</summary>
    public static void AnonymousPipePingPong(HarnessContext ctx)
    {
        RunPlan plan = ctx.Plan(30_000);
        ctx.Progress.Step(".NET anonymous pipe 8 B ping-pong");
        using var toChild = new AnonymousPipeServerStream(PipeDirection.Out, HandleInheritability.Inheritable);
        using var fromChild = new AnonymousPipeServerStream(PipeDirection.In, HandleInheritability.Inheritable);
        using Process child = ChildProcesses.Start("pipe-pong", null, toChild.GetClientHandleAsString(), fromChild.GetClientHandleAsString(), Str(plan.Total));
        toChild.DisposeLocalCopyOfClientHandle();
        fromChild.DisposeLocalCopyOfClientHandle();
        ChildProcesses.Expect(child, "READY");
        byte[] buffer = new byte[8];
        ctx.Latency("dotnet.anon_pipe_8B_rtt", plan, n =>
        {
            long[] ticks = new long[n];
            for (int i = 0; i < n; i++)
            {
                long start = Stopwatch.GetTimestamp();
                toChild.Write(buffer);
                fromChild.ReadExactly(buffer);
                ticks[i] = Stopwatch.GetTimestamp() - start;
            }

            return ticks;
        });
        ChildProcesses.Join(child, TimeSpan.FromSeconds(30));
    }

    /// <summary>UDS stream of 64 B messages, one Send call per message: dotnet.uds_64B_stream_throughput.</summary>
    public static void UdsStreamPerMessage(HarnessContext ctx) =>
        UdsStream(ctx, "dotnet.uds_64B_stream_throughput", ctx.Plan(500_000, 10_000), batched: false);

    /// <summary>UDS stream of 64 B messages written through a 64 KiB buffer: dotnet.uds_64B_batched_stream_throughput.</summary>
    public static void UdsStreamBatched(HarnessContext ctx) =>
        UdsStream(ctx, "dotnet.uds_64B_batched_stream_throughput", ctx.Plan(5_000_000, 100_000), batched: true);

    /// <summary>
    /// The child is a sink: it reads an 8-byte count N, then N x 64 bytes, then answers one byte. A run
    /// is timed from its first message to that answer.
    /// </summary>
    private static void UdsStream(HarnessContext ctx, string name, RunPlan plan, bool batched)
    {
        ctx.Progress.Step($".NET Unix domain socket 64 B stream, {(batched ? "through a 64 KiB buffer" : "one Send per message")}");
        using var link = UdsLink.Open("uds-sink");
        using var network = new NetworkStream(link.Socket, ownsSocket: false);
        using var buffered = new BufferedStream(network, 64 * 1024);
        byte[] message = new byte[StreamMessage];
        byte[] header = new byte[8];
        byte[] ack = new byte[1];
        ctx.Rate(name, "msg/s", plan, n =>
        {
            BinaryPrimitives.WriteInt64LittleEndian(header, n);
            link.Socket.Send(header);
            long start = Stopwatch.GetTimestamp();
            for (int i = 0; i < n; i++)
            {
                message[0] = (byte)i;
                if (batched)
                {
                    buffered.Write(message);
                }
                else
                {
                    link.Socket.Send(message);
                }
            }

            buffered.Flush();
            ReceiveExactly(link.Socket, ack);
            return Stopwatch.GetTimestamp() - start;
        }, StreamMessage);

        BinaryPrimitives.WriteInt64LittleEndian(header, 0);
        link.Socket.Send(header);
        link.Join();
    }

    /// <summary>
    /// One start of a bare .NET console process (this program, role 'hello') from Process.Start to its first line, in ms, not
    /// recorded: the start scenario records it as dotnet.console_start_to_first_message, each run beside a Pool(2) start.
    /// </summary>
    public static double ConsoleStartOnce()
    {
        long start = Stopwatch.GetTimestamp();
        using Process child = ChildProcesses.Start("hello", null);
        ChildProcesses.Expect(child, "hello");
        double ms = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        ChildProcesses.Join(child, TimeSpan.FromSeconds(30));
        return ms;
    }

    public static void ReceiveExactly(Socket socket, Span<byte> buffer)
    {
        int got = 0;
        while (got < buffer.Length)
        {
            int n = socket.Receive(buffer[got..]);
            if (n == 0)
            {
                throw new EndOfStreamException("The peer closed the socket.");
            }

            got += n;
        }
    }

    private static string Str(long v) => v.ToString(CultureInfo.InvariantCulture);

    /// <summary>A listening socket in the temp directory, a child in a role connected to it, and the accepted connection.</summary>
    private sealed class UdsLink : IDisposable
    {
        private readonly string _path;
        private readonly Socket _listener;
        private readonly Process _child;

        private UdsLink(string path, Socket listener, Process child, Socket socket)
        {
            _path = path;
            _listener = listener;
            _child = child;
            Socket = socket;
        }

        public Socket Socket { get; }

        public static UdsLink Open(string role, params string[] args)
        {
            string path = Cleanup.Path(Path.Combine(Path.GetTempPath(), $"shmbench-{Environment.ProcessId}-{Guid.NewGuid():N}.sock"));
            var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            listener.Bind(new UnixDomainSocketEndPoint(path));
            listener.Listen(1);
            Process child = ChildProcesses.Start(role, null, [path, .. args]);
            Task<Socket> accepted = listener.AcceptAsync();
            if (!accepted.Wait(TimeSpan.FromSeconds(30)))
            {
                listener.Dispose();
                throw new TimeoutException($"Child '{role}' did not connect to {path}.");
            }

            Socket socket = accepted.Result;
            ChildProcesses.Expect(child, "READY");
            return new UdsLink(path, listener, child, socket);
        }

        public void Join() => ChildProcesses.Join(_child, TimeSpan.FromSeconds(30));

        public void Dispose()
        {
            Socket.Dispose();
            _listener.Dispose();
            _child.Dispose();
            File.Delete(_path);
        }
    }
}
