using System.Buffers;
using ShmIpc.Diagnostics;
using ShmIpc.Ring;

namespace ShmIpc;

// Typed messages and the asynchronous forms.
public sealed partial class ShmConnection
{
    private ArrayBufferWriter<byte>? _serializeBuffer;

    /// <summary>Serializes <paramref name="value"/> and sends it; the serializer defaults to <see cref="ShmSerializers.GetDefault{T}"/>.</summary>
    /// <exception cref="ArgumentException">No serializer was given and <typeparamref name="T"/> has no built-in one, or the encoding is too long.</exception>
    /// <inheritdoc cref="Send(ReadOnlySpan{byte})" path="/exception"/>
    public void Send<T>(T value, IShmSerializer<T>? serializer = null)
    {
        serializer ??= DefaultSerializer<T>.Instance ?? throw NoSerializer<T>();
        ArrayBufferWriter<byte> buffer = Interlocked.Exchange(ref _serializeBuffer, null) ?? new ArrayBufferWriter<byte>(256);
        try
        {
            serializer.Serialize(value, buffer);
            Send(buffer.WrittenSpan);
        }
        finally
        {
            buffer.ResetWrittenCount();
            _serializeBuffer = buffer;
        }
    }

    /// <summary>
    /// Receives the next message and deserializes it straight from the pipe (no copy). The message is
    /// consumed even when deserializing fails.
    /// </summary>
    /// <exception cref="ArgumentException">No serializer was given and <typeparamref name="T"/> has no built-in one.</exception>
    /// <inheritdoc cref="Receive()" path="/exception"/>
    public T Receive<T>(IShmSerializer<T>? serializer = null)
    {
        serializer ??= DefaultSerializer<T>.Instance ?? throw NoSerializer<T>();
        SpscRing ring = _receiveRing ?? ThrowCannotReceive();
        EnterReceive(long.MaxValue, CancellationToken.None);
        try
        {
            if (!ring.TryPeek())
            {
                WaitForRecord(ring, long.MaxValue, CancellationToken.None);
            }

            try
            {
                return serializer.Deserialize(ring.PeekedPayload);
            }
            finally
            {
                ShmMetrics.RecordConsumed(ShmMetrics.KindPipe, Name, ring.PeekedLength);
                ring.Commit();
                _receiveSpace!.Notify();
            }
        }
        finally
        {
            ExitReceive();
        }
    }

    /// <summary>
    /// Sends <paramref name="message"/>. Completes synchronously when there is room; otherwise the wait for
    /// room runs on a dedicated thread.
    /// </summary>
    /// <inheritdoc cref="Send(ReadOnlySpan{byte}, CancellationToken)" path="/exception"/>
    public ValueTask SendAsync(ReadOnlyMemory<byte> message, CancellationToken cancellationToken = default)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled(cancellationToken);
        }

        try
        {
            if (SendCore(message.Span, NoWait, CancellationToken.None))
            {
                return default;
            }
        }
        catch (Exception e)
        {
            return ValueTask.FromException(e);
        }

        return new ValueTask(Task.Factory.StartNew(
            () => Send(message.Span, cancellationToken), cancellationToken, TaskCreationOptions.LongRunning | TaskCreationOptions.DenyChildAttach, TaskScheduler.Default));
    }

    /// <summary>
    /// Receives the next message. Completes synchronously when one is waiting; otherwise the wait runs on a
    /// dedicated thread.
    /// </summary>
    /// <inheritdoc cref="Receive(CancellationToken)" path="/exception"/>
    public ValueTask<byte[]> ReceiveAsync(CancellationToken cancellationToken = default)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<byte[]>(cancellationToken);
        }

        try
        {
            if (TryReceiveCore(out byte[] message, NoWait, CancellationToken.None))
            {
                return new ValueTask<byte[]>(message);
            }
        }
        catch (Exception e)
        {
            return ValueTask.FromException<byte[]>(e);
        }

        return new ValueTask<byte[]>(Task.Factory.StartNew(
            () => Receive(cancellationToken), cancellationToken, TaskCreationOptions.LongRunning | TaskCreationOptions.DenyChildAttach, TaskScheduler.Default));
    }

    private static ArgumentException NoSerializer<T>() =>
        new($"There is no built-in serializer for {typeof(T)}; pass an IShmSerializer<{typeof(T).Name}>.", "serializer");

    private static class DefaultSerializer<T>
    {
        public static readonly IShmSerializer<T>? Instance = ShmSerializers.GetDefault<T>();
    }
}
