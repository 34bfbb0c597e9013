namespace ShmIpc.Async;

/// <summary>One direction of a pipe end for the channel adapters; end of stream is the peer's close (<see cref="ShmPeerClosedException"/>).</summary>
internal sealed class PipeChannelEndpoint : IShmChannelEndpoint
{
    private readonly ShmConnection _connection;

    public PipeChannelEndpoint(ShmConnection connection, bool reading)
    {
        ArgumentNullException.ThrowIfNull(connection);
        if (reading ? !connection.CanReceive : !connection.CanSend)
        {
            throw new InvalidOperationException($"This end of pipe '{connection.Name}' only {(reading ? "sends" : "receives")}.");
        }

        _connection = connection;
    }

    public bool TryRead(out byte[]? message, out bool completed)
    {
        completed = false;
        try
        {
            if (_connection.TryReceive(out byte[] received, TimeSpan.Zero))
            {
                message = received;
                return true;
            }
        }
        catch (ShmPeerClosedException)
        {
            completed = true;
        }

        message = null;
        return false;
    }

    public ValueTask<bool> WaitToReadAsync(CancellationToken cancellationToken) => _connection.WaitToReceiveAsync(cancellationToken);

    public ValueTask<byte[]> ReadAsync(CancellationToken cancellationToken) => _connection.ReceiveAsync(cancellationToken);

    public bool TryWrite(ReadOnlySpan<byte> message) => _connection.TrySend(message, TimeSpan.Zero);

    public ValueTask<bool> WaitToWriteAsync(CancellationToken cancellationToken) => _connection.WaitToSendAsync(cancellationToken);

    public ValueTask WriteAsync(ReadOnlyMemory<byte> message, CancellationToken cancellationToken) => _connection.SendAsync(message, cancellationToken);

    public bool TryComplete()
    {
        if (_connection.IsDisposed)
        {
            return false;
        }

        _connection.Dispose();
        return true;
    }

    public bool IsEndOfStream(Exception error) => error is ShmPeerClosedException;
}
