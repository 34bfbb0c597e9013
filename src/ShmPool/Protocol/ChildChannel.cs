using System.Diagnostics;

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
        if (Poll(out message) || timeout == TimeSpan.Zero)
        {
            return message is not null;
        }

        long start = Stopwatch.GetTimestamp();
        long spinEnd = start + Math.Min(spinTicks, timeout == Timeout.InfiniteTimeSpan ? long.MaxValue : Ticks(timeout));
        if (spinTicks > 0)
        {
            for (int i = 1; ; i++)
            {
                if (Poll(out message))
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
            message = _connection.Receive();
            return true;
        }

        TimeSpan left = timeout - Stopwatch.GetElapsedTime(start);
        return TryReceiveCore(out message, left > TimeSpan.Zero ? left : TimeSpan.Zero);
    }

    /// <summary>One look at the pipe: on a pipe that does not spin, a zero-timeout receive is a few shared-memory reads.</summary>
    private bool Poll(out byte[]? message) => TryReceiveCore(out message, TimeSpan.Zero);

    private bool TryReceiveCore(out byte[]? message, TimeSpan timeout)
    {
        bool got = _connection.TryReceive(out byte[] received, timeout);
        message = got ? received : null;
        return got;
    }

    private static long Ticks(TimeSpan span) => (long)(span.Ticks * (Stopwatch.Frequency / (double)TimeSpan.TicksPerSecond));

    public void Dispose() => _connection.Dispose();
}
