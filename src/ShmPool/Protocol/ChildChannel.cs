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
    private readonly ShmConnection _connection;

    private ChildChannel(string name, ShmConnection connection)
    {
        Name = name;
        _connection = connection;
    }

    public string Name { get; }

    /// <summary>Bytes of ring per direction: 4 MiB of /dev/shm address space each, only the pages used are backed.</summary>
    public const int Capacity = 4 << 20;

    /// <summary>Messages up to this size (the most a ring of <see cref="Capacity"/> carries); larger chunks are refused with a message saying so.</summary>
    public const int MaxMessageLength = Capacity / 2 - 8;

    private static ShmPipeOptions Options(ShmWaitStrategy? waitStrategy) => new()
    {
        Capacity = Capacity,
        MaxMessageLength = MaxMessageLength,
        WaitStrategy = waitStrategy ?? ShmWaitStrategy.Default,
    };

    public static ChildChannel Create(string name, ShmWaitStrategy? waitStrategy = null) => new(name, ShmPipe.Create(name, Options(waitStrategy)));

    public static ChildChannel Connect(string name) => new(name, ShmPipe.Connect(name, Options(null)));

    /// <summary>Removes the pipe's names (a child does this when its parent died and cannot).</summary>
    public static void Unlink(string name) => ShmMaintenance.Unlink(name);

    public bool IsPeerConnected => _connection.IsPeerConnected;

    public void Send(ReadOnlySpan<byte> message) => _connection.Send(message);

    public byte[] Receive() => _connection.Receive();

    public byte[] Receive(CancellationToken cancellationToken) => _connection.Receive(cancellationToken);

    public bool TryReceive(out byte[]? message, TimeSpan timeout)
    {
        bool got = _connection.TryReceive(out byte[] received, timeout);
        message = got ? received : null;
        return got;
    }

    public void Dispose() => _connection.Dispose();
}
