using System.Buffers;
using System.Threading.Channels;

namespace ShmIpc.Async;

/// <summary>
/// A <see cref="ChannelWriter{T}"/> over a queue or a pipe end. <see cref="TryWrite"/> never blocks (false when full, or
/// when the endpoint is completed); <see cref="WaitToWriteAsync"/> is a real async wait for room and returns false once
/// nothing can be written any more; <see cref="TryComplete"/> shuts the queue down or closes the pipe end.
/// </summary>
internal sealed class ShmChannelWriter<T> : ChannelWriter<T>
{
    private readonly IShmChannelEndpoint _endpoint;
    private readonly IShmSerializer<T>? _serializer;
    private readonly ArrayBufferWriter<byte>? _buffer;

    /// <summary><paramref name="serializer"/> null: <typeparamref name="T"/> is byte[] and messages are passed through.</summary>
    public ShmChannelWriter(IShmChannelEndpoint endpoint, IShmSerializer<T>? serializer)
    {
        _endpoint = endpoint;
        _serializer = serializer;
        _buffer = serializer is null ? null : new ArrayBufferWriter<byte>(256);
    }

    public override bool TryComplete(Exception? error = null) => _endpoint.TryComplete();

    public override bool TryWrite(T item)
    {
        try
        {
            if (_serializer is null)
            {
                return _endpoint.TryWrite((byte[])(object)item!);
            }

            lock (_buffer!)
            {
                _buffer.ResetWrittenCount();
                _serializer.Serialize(item, _buffer);
                return _endpoint.TryWrite(_buffer.WrittenSpan);
            }
        }
        catch (Exception e) when (_endpoint.IsEndOfStream(e))
        {
            return false;
        }
    }

    public override ValueTask<bool> WaitToWriteAsync(CancellationToken cancellationToken = default) => _endpoint.WaitToWriteAsync(cancellationToken);

    public override async ValueTask WriteAsync(T item, CancellationToken cancellationToken = default)
    {
        byte[] message;
        if (_serializer is null)
        {
            message = (byte[])(object)item!;
        }
        else
        {
            var buffer = new ArrayBufferWriter<byte>(256);
            _serializer.Serialize(item, buffer);
            message = buffer.WrittenSpan.ToArray();
        }

        try
        {
            await _endpoint.WriteAsync(message, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (_endpoint.IsEndOfStream(e))
        {
            throw new ChannelClosedException(e);
        }
    }
}
