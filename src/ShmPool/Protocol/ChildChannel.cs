using System.Diagnostics.CodeAnalysis;
using System.Numerics;

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
    /// <summary>
    /// How long a child spins for its next message before it sleeps. A pool worker is a dedicated process and
    /// the next task of a busy caller follows within microseconds; one left idle sleeps after this (an idle pool
    /// costs no CPU), and the spin yields the CPU to anyone who needs it after its first 2 µs.
    /// </summary>
    public static readonly TimeSpan ChildSpin = TimeSpan.FromMicroseconds(200);

    private readonly ShmConnection _connection;

    private ChildChannel(string name, ShmConnection connection)
    {
        Name = name;
        _connection = connection;
    }

    public string Name { get; }

    /// <summary>The first size of the buffer of <see cref="TryReceiveBorrowed"/>.</summary>
    private const int InitialReceiveBuffer = 4 << 10;

    /// <summary>
    /// The buffer of borrowed receives grows to fit the longest message seen, up to this: every message fits, so a
    /// Map of large chunks allocates its receive buffer once per pipe, not an array per chunk (those were large-object
    /// allocations, one gen2 collection per Map of 1M items).
    /// </summary>
    public const int MaxReceiveBuffer = Capacity / 2;

    private byte[] _receiveBuffer = new byte[InitialReceiveBuffer];

    /// <summary>Bytes of ring per direction: 4 MiB of /dev/shm address space each, only the pages used are backed.</summary>
    public const int Capacity = 4 << 20;

    /// <summary>Messages up to this size go through the ring; longer ones (a big argument, result or chunk) through a side segment each.</summary>
    public const int MaxMessageLength = Capacity / 2 - 8;

    /// <summary>
    /// Receives wait as any pipe's do (<see cref="ShmWaitStrategy"/>: spin, yielding the CPU every few polls
    /// after 2 µs, then sleep): the same code path as the pipe's own ping-pong, so a pool's round trip costs
    /// the pipe's plus the pool's own work. The yields matter on 2-core machines: a parent and its child that
    /// end up on one core (the other one busy) hand it to each other at once, instead of each burning its
    /// whole spin while the other cannot run (about 110 µs per round trip instead of a few).
    /// </summary>
    private static ShmPipeOptions Options(ShmWaitStrategy strategy) => new()
    {
        Capacity = Capacity,
        MaxMessageLength = MaxMessageLength,
        WaitStrategy = strategy,
    };

    /// <summary>The parent's end.</summary>
    public static ChildChannel Create(string name, ShmWaitStrategy? waitStrategy = null) =>
        new(name, ShmPipe.Create(name, Options(waitStrategy ?? ShmWaitStrategy.Default)));

    /// <summary>
    /// How long a child's receive sleeps before it wakes to look at its parent (in /proc). A child needs no such look
    /// to learn that its parent died (the parent watchdog ends it), and every look costs more the more threads the
    /// parent has (a pool's parent has one per worker): an idle child wakes once a second, not ten times.
    /// </summary>
    public static readonly TimeSpan ChildSleepSlice = TimeSpan.FromSeconds(1);

    /// <summary>The child's end: spins <see cref="ChildSpin"/> for each message before it sleeps, in slices of <see cref="ChildSleepSlice"/>.</summary>
    public static ChildChannel Connect(string name) =>
        new(name, ShmPipe.Connect(name, Options(ShmWaitStrategy.Default with { SpinDuration = ChildSpin, SleepSlice = ChildSleepSlice })));

    /// <summary>Removes the pipe's names (a child does this when its parent died and cannot).</summary>
    public static void Unlink(string name) => ShmMaintenance.Unlink(name);

    public bool IsPeerConnected => _connection.IsPeerConnected;

    public void Send(ReadOnlySpan<byte> message) => _connection.Send(message);

    /// <summary>Receives the next message: spins for the channel's budget, then sleeps.</summary>
    /// <exception cref="ShmPeerClosedException">The pipe is empty and the other end is gone.</exception>
    public byte[] Receive() => _connection.Receive();

    public bool TryReceive([NotNullWhen(true)] out byte[]? message, TimeSpan timeout)
    {
        bool got = _connection.TryReceive(out byte[] received, timeout);
        message = got ? received : null;
        return got;
    }

    /// <summary>
    /// As <see cref="TryReceive(out byte[], TimeSpan)"/>, into the channel's own buffer: the message is valid until
    /// the next receive on this channel, so the caller must be done with it (or copy it) by then. Allocates nothing
    /// for messages that fit the buffer, which grows to fit the messages seen, up to <see cref="MaxReceiveBuffer"/>.
    /// </summary>
    /// <param name="message">The message, in the channel's buffer.</param>
    /// <param name="timeout">How long to wait.</param>
    /// <param name="strategy">How to wait this time (null: the channel's strategy).</param>
    public bool TryReceiveBorrowed(out ReadOnlyMemory<byte> message, TimeSpan timeout, ShmWaitStrategy? strategy = null)
    {
        while (true)
        {
            if (Internal.ShmQueueContract.TryReceiveIntoOrMeasure(_connection, _receiveBuffer, out int length, timeout, strategy))
            {
                message = new ReadOnlyMemory<byte>(_receiveBuffer, 0, length);
                return true;
            }

            if (length <= _receiveBuffer.Length)
            {
                message = default;
                return false;
            }

            if (length > MaxReceiveBuffer)
            {
                // Longer than the ring (it came through a side segment): an array of its own, the buffer stays as it is.
                bool got = _connection.TryReceive(out byte[] large, TimeSpan.Zero);
                message = large;
                return got;
            }

            // Longer than the buffer, left in the pipe: grow once (every message fits MaxReceiveBuffer) and take it now.
            _receiveBuffer = new byte[(int)BitOperations.RoundUpToPowerOf2((uint)length)];
            timeout = TimeSpan.Zero;
        }
    }

    /// <summary>The receiver just got a message from the child: its next /proc lookup is put off (see <see cref="ShmConnection.NotePeerAlive"/>).</summary>
    public void NotePeerAlive() => _connection.NotePeerAlive();

    /// <summary>As <see cref="Receive()"/>, into the channel's own buffer (see <see cref="TryReceiveBorrowed"/>).</summary>
    public ReadOnlyMemory<byte> ReceiveBorrowed()
    {
        TryReceiveBorrowed(out ReadOnlyMemory<byte> message, Timeout.InfiniteTimeSpan);
        return message;
    }

    /// <summary>
    /// Receives the next message (waiting as <see cref="Receive()"/> does) and hands it to <paramref name="handler"/> as a
    /// span over the pipe's shared memory, valid only during that call: no copy (<see cref="ShmConnection.ReceiveMany{TState}"/>
    /// of one message).
    /// </summary>
    /// <exception cref="ShmPeerClosedException">The pipe is empty and the other end is gone.</exception>
    /// <returns>Whether a message was handled (false only if the wait ended without one).</returns>
    public bool ReceiveInPlace<TState>(System.Buffers.ReadOnlySpanAction<byte, TState> handler, TState state) =>
        _connection.ReceiveMany(handler, state, 1, Timeout.InfiniteTimeSpan) > 0;

    /// <summary>Lends <paramref name="length"/> bytes of the send ring to write one message in place (<see cref="ShmConnection.Loan(int, CancellationToken)"/>).</summary>
    /// <exception cref="ShmPeerClosedException">The other end is gone.</exception>
    public ShmLoan Loan(int length) => _connection.Loan(length);

    public void Dispose() => _connection.Dispose();
}
