using System.Diagnostics;
using System.Numerics;
using System.Runtime.InteropServices;

namespace ShmIpc.Protocol;

/// <summary>
/// The duplex pipe between a parent and one child (an <see cref="ShmProcess"/> or a pool worker).
/// One pipe per child, single producer and single consumer on each ring: the lowest latency the
/// library has, and the parent knows exactly which tasks a child holds.
/// </summary>
/// <remarks>
/// The parent creates the pipe (and so owns its names); the child connects. A receive on an empty pipe
/// whose peer died or closed throws <see cref="ShmPeerClosedException"/> within one wait slice: that is
/// how each side learns that the other is gone. Sends from one side are made by one thread at a time
/// (the pool locks per worker); receives by one thread (the worker's reader).
/// </remarks>
internal sealed class ChildChannel : IDisposable
{
    /// <summary>Polls between two looks at the clock (and, past <see cref="PoliteAfter"/>, two yields of the CPU).</summary>
    private const int PollsPerCheck = 16;

    /// <summary>Spinning this long costs nothing to anyone on an idle machine; after it the spinner yields its CPU now and then.</summary>
    private static readonly long PoliteAfter = Stopwatch.Frequency / 500_000; // 2 µs

    private readonly ShmConnection _connection;
    private readonly long _spinTicks;

    private ChildChannel(string name, ShmConnection connection, TimeSpan spin)
    {
        Name = name;
        _connection = connection;
        _spinTicks = Ticks(spin);
    }

    public string Name { get; }

    /// <summary>The first size of the buffer of <see cref="TryReceiveBorrowed(out ReadOnlyMemory{byte}, TimeSpan)"/>.</summary>
    private const int InitialReceiveBuffer = 4 << 10;

    /// <summary>The buffer of borrowed receives grows to fit messages up to this; longer ones get an array each.</summary>
    public const int MaxReceiveBuffer = 256 << 10;

    private byte[] _receiveBuffer = new byte[InitialReceiveBuffer];

    /// <summary>Bytes of ring per direction: 4 MiB of /dev/shm address space each, only the pages used are backed.</summary>
    public const int Capacity = 4 << 20;

    /// <summary>Messages up to this size (the most a ring of <see cref="Capacity"/> carries); larger chunks are refused with a message saying so.</summary>
    public const int MaxMessageLength = Capacity / 2 - 8;

    /// <summary>
    /// The pipe itself never spins (its waits go straight to the semaphore): the channel spins in
    /// <see cref="TryReceive(out byte[], TimeSpan, TimeSpan)"/>, yielding the CPU now and then. A parent and
    /// its child that end up on one core (the other one busy) then hand the core to each other at once,
    /// instead of each burning its whole spin budget while the other cannot run (about 110 µs per round
    /// trip instead of a few).
    /// </summary>
    private static ShmPipeOptions Options(ShmWaitStrategy strategy) => new()
    {
        Capacity = Capacity,
        MaxMessageLength = MaxMessageLength,
        WaitStrategy = strategy with { SpinDuration = TimeSpan.Zero },
    };

    public static ChildChannel Create(string name, ShmWaitStrategy? waitStrategy = null)
    {
        ShmWaitStrategy strategy = waitStrategy ?? ShmWaitStrategy.Default;
        return new(name, ShmPipe.Create(name, Options(strategy)), strategy.SpinDuration);
    }

    public static ChildChannel Connect(string name)
    {
        ShmWaitStrategy strategy = ShmWaitStrategy.Default;
        return new(name, ShmPipe.Connect(name, Options(strategy)), strategy.SpinDuration);
    }

    /// <summary>Removes the pipe's names (a child does this when its parent died and cannot).</summary>
    public static void Unlink(string name) => ShmMaintenance.Unlink(name);

    public bool IsPeerConnected => _connection.IsPeerConnected;

    public void Send(ReadOnlySpan<byte> message) => _connection.Send(message);

    /// <summary>Receives the next message: spins for the channel's budget, then sleeps.</summary>
    /// <exception cref="ShmPeerClosedException">The pipe is empty and the other end is gone.</exception>
    public byte[] Receive()
    {
        TryReceive(out byte[]? message, Timeout.InfiniteTimeSpan);
        return message!;
    }

    /// <summary>As <see cref="Receive()"/>, spinning for <paramref name="spin"/> (a worker that just finished a task expects the next one soon).</summary>
    public byte[] Receive(TimeSpan spin)
    {
        TryReceive(out byte[]? message, Timeout.InfiniteTimeSpan, spin);
        return message!;
    }

    public bool TryReceive(out byte[]? message, TimeSpan timeout) => TryReceive(out message, timeout, _spinTicks);

    public bool TryReceive(out byte[]? message, TimeSpan timeout, TimeSpan spin) => TryReceive(out message, timeout, Ticks(spin));

    private bool TryReceive(out byte[]? message, TimeSpan timeout, long spinTicks)
    {
        bool got = TryReceiveCore(borrowed: false, out ReadOnlyMemory<byte> received, timeout, spinTicks);
        message = got && MemoryMarshal.TryGetArray(received, out ArraySegment<byte> array) ? array.Array : null;
        return got;
    }

    /// <summary>
    /// As <see cref="TryReceive(out byte[], TimeSpan)"/>, into the channel's own buffer: the message is valid until
    /// the next receive on this channel, so the caller must be done with it (or copy it) by then. Allocates nothing
    /// for messages that fit the buffer, which grows to fit the messages seen, up to <see cref="MaxReceiveBuffer"/>.
    /// </summary>
    public bool TryReceiveBorrowed(out ReadOnlyMemory<byte> message, TimeSpan timeout) => TryReceiveCore(borrowed: true, out message, timeout, _spinTicks);

    /// <summary>As <see cref="Receive(TimeSpan)"/>, into the channel's own buffer (see <see cref="TryReceiveBorrowed(out ReadOnlyMemory{byte}, TimeSpan)"/>).</summary>
    public ReadOnlyMemory<byte> ReceiveBorrowed(TimeSpan spin)
    {
        TryReceiveCore(borrowed: true, out ReadOnlyMemory<byte> message, Timeout.InfiniteTimeSpan, Ticks(spin));
        return message;
    }

    private bool TryReceiveCore(bool borrowed, out ReadOnlyMemory<byte> message, TimeSpan timeout, long spinTicks)
    {
        if (Poll(borrowed, out message, TimeSpan.Zero))
        {
            return true;
        }

        if (timeout == TimeSpan.Zero)
        {
            return false;
        }

        long start = Stopwatch.GetTimestamp();
        long spinEnd = start + Math.Min(spinTicks, timeout == Timeout.InfiniteTimeSpan ? long.MaxValue : Ticks(timeout));
        if (spinTicks > 0)
        {
            for (int i = 1; ; i++)
            {
                if (Poll(borrowed, out message, TimeSpan.Zero))
                {
                    return true;
                }

                if (i % PollsPerCheck != 0)
                {
                    Thread.SpinWait(1);
                    continue;
                }

                long now = Stopwatch.GetTimestamp();
                if (now >= spinEnd)
                {
                    break;
                }

                if (now - start >= PoliteAfter)
                {
                    // sched_yield: a no-op when nothing else waits for this CPU; hands it over when the peer does.
                    Thread.Yield();
                }
            }
        }

        if (timeout == Timeout.InfiniteTimeSpan)
        {
            return Poll(borrowed, out message, Timeout.InfiniteTimeSpan);
        }

        TimeSpan left = timeout - Stopwatch.GetElapsedTime(start);
        return Poll(borrowed, out message, left > TimeSpan.Zero ? left : TimeSpan.Zero);
    }

    /// <summary>
    /// One receive (with <see cref="TimeSpan.Zero"/>, one look at the pipe: on a pipe that does not spin, a few
    /// shared-memory reads). Borrowed: into <see cref="_receiveBuffer"/>; a longer message is taken as an array of its own.
    /// </summary>
    private bool Poll(bool borrowed, out ReadOnlyMemory<byte> message, TimeSpan timeout)
    {
        byte[] received;
        if (borrowed)
        {
            try
            {
                if (_connection.TryReceiveInto(_receiveBuffer, out int length, timeout))
                {
                    message = new ReadOnlyMemory<byte>(_receiveBuffer, 0, length);
                    return true;
                }

                message = default;
                return false;
            }
            catch (ArgumentException e) when (e.ParamName == "buffer")
            {
                // Longer than the buffer: it is there, unread. Take it as an array; the buffer grows for the next ones.
            }

            if (!_connection.TryReceive(out received, TimeSpan.Zero))
            {
                throw new InvalidOperationException("The message the pipe reported was gone (a second receiver on one channel).");
            }

            if (received.Length <= MaxReceiveBuffer)
            {
                _receiveBuffer = new byte[(int)BitOperations.RoundUpToPowerOf2((uint)received.Length)];
            }

            message = received;
            return true;
        }

        bool got = timeout == Timeout.InfiniteTimeSpan
            ? (received = _connection.Receive()) is not null
            : _connection.TryReceive(out received, timeout);
        message = got ? received : default;
        return got;
    }

    private static long Ticks(TimeSpan span) => (long)(span.Ticks * (Stopwatch.Frequency / (double)TimeSpan.TicksPerSecond));

    public void Dispose() => _connection.Dispose();
}
