using System.Diagnostics.CodeAnalysis;
using System.Threading.Channels;

namespace ShmIpc.Async;

/// <summary>
/// A <see cref="ChannelReader{T}"/> over a queue or a pipe end: ShmIpc in code written for System.Threading.Channels.
/// <see cref="WaitToReadAsync"/> is a real async wait (a pending operation on the process's waiter threads, no spinning);
/// <see cref="TryRead"/> never blocks; <see cref="Completion"/> completes when this reader sees the end of the stream (the
/// queue shut down and drained, the pipe's peer closed) or faults with the error it met (the endpoint disposed).
/// </summary>
internal sealed class ShmChannelReader<T> : ChannelReader<T>
{
    private readonly IShmChannelEndpoint _endpoint;
    private readonly IShmSerializer<T>? _serializer;
    private readonly TaskCompletionSource _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary><paramref name="serializer"/> null: <typeparamref name="T"/> is byte[] and messages are passed through.</summary>
    public ShmChannelReader(IShmChannelEndpoint endpoint, IShmSerializer<T>? serializer)
    {
        _endpoint = endpoint;
        _serializer = serializer;
    }

    public override Task Completion => _completion.Task;

    public override bool TryRead([MaybeNullWhen(false)] out T item)
    {
        try
        {
            if (_endpoint.TryRead(out byte[]? message, out bool completed))
            {
                item = Convert(message!);
                return true;
            }

            if (completed)
            {
                _completion.TrySetResult();
            }
        }
        catch (Exception e)
        {
            _completion.TrySetException(e);
            throw;
        }

        item = default;
        return false;
    }

    public override async ValueTask<bool> WaitToReadAsync(CancellationToken cancellationToken = default)
    {
        try
        {
            if (await _endpoint.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
            {
                return true;
            }

            _completion.TrySetResult();
            return false;
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            _completion.TrySetException(e);
            throw;
        }
    }

    public override async ValueTask<T> ReadAsync(CancellationToken cancellationToken = default)
    {
        try
        {
            return Convert(await _endpoint.ReadAsync(cancellationToken).ConfigureAwait(false));
        }
        catch (Exception e) when (_endpoint.IsEndOfStream(e))
        {
            _completion.TrySetResult();
            throw new ChannelClosedException(e);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            _completion.TrySetException(e);
            throw;
        }
    }

    private T Convert(byte[] message) => _serializer is null ? (T)(object)message : _serializer.Deserialize(message);
}
