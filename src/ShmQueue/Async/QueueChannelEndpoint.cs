namespace ShmIpc.Async;

/// <summary>A queue for the channel adapters; end of stream is its shutdown (<see cref="ShmQueueShutDownException"/>).</summary>
internal sealed class QueueChannelEndpoint(ShmQueue queue) : IShmChannelEndpoint
{
    public bool TryRead(out byte[]? message, out bool completed)
    {
        completed = false;
        try
        {
            if (queue.TryDequeue(out message))
            {
                return true;
            }
        }
        catch (ShmQueueShutDownException)
        {
            completed = true;
        }

        message = null;
        return false;
    }

    public ValueTask<bool> WaitToReadAsync(CancellationToken cancellationToken) => queue.WaitToDequeueAsync(cancellationToken);

    public ValueTask<byte[]> ReadAsync(CancellationToken cancellationToken) => queue.DequeueAsync(cancellationToken);

    public bool TryWrite(ReadOnlySpan<byte> message) => queue.TryEnqueue(message);

    public ValueTask<bool> WaitToWriteAsync(CancellationToken cancellationToken) => queue.WaitToEnqueueAsync(cancellationToken);

    public ValueTask WriteAsync(ReadOnlyMemory<byte> message, CancellationToken cancellationToken) => queue.EnqueueAsync(message, cancellationToken);

    public bool TryComplete()
    {
        if (queue.IsShutDown)
        {
            return false;
        }

        queue.Shutdown();
        return true;
    }

    public bool IsEndOfStream(Exception error) => error is ShmQueueShutDownException;
}
