namespace ShmIpc.Async;

/// <summary>
/// What the channel adapters (<see cref="ShmChannelReader{T}"/>, <see cref="ShmChannelWriter{T}"/>) need from a queue or a
/// pipe end, in raw messages. "Completed" means no more messages will ever come (reading) or be taken (writing): a queue
/// shut down (and drained), a pipe whose peer closed its end (and everything it sent was read).
/// </summary>
internal interface IShmChannelEndpoint
{
    /// <summary>Takes a message without waiting; false when none waits (<paramref name="completed"/> tells whether one ever will not).</summary>
    bool TryRead(out byte[]? message, out bool completed);

    /// <summary>Waits until a message can be read (true) or none ever will (false), consuming nothing.</summary>
    ValueTask<bool> WaitToReadAsync(CancellationToken cancellationToken);

    /// <summary>Takes the next message, waiting; faults with the endpoint's end-of-stream exception when completed.</summary>
    ValueTask<byte[]> ReadAsync(CancellationToken cancellationToken);

    /// <summary>Writes without waiting; false when full. Throws when completed.</summary>
    bool TryWrite(ReadOnlySpan<byte> message);

    /// <summary>Waits until a write may succeed (true) or never will (false).</summary>
    ValueTask<bool> WaitToWriteAsync(CancellationToken cancellationToken);

    ValueTask WriteAsync(ReadOnlyMemory<byte> message, CancellationToken cancellationToken);

    /// <summary>Marks the writing side completed (a queue shuts down, a pipe end closes); false when it already was.</summary>
    bool TryComplete();

    /// <summary>True when <paramref name="error"/> says the endpoint is completed rather than failed.</summary>
    bool IsEndOfStream(Exception error);
}
