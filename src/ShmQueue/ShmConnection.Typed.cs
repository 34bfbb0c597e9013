using System.Buffers;
using System.Diagnostics.CodeAnalysis;
using ShmIpc.Endpoints;
using ShmIpc.Signaling;

namespace ShmIpc;

// Typed messages: a value serialized into the pipe, deserialized straight out of it. The same forms as the byte calls:
// X(), X(TimeSpan) throwing TimeoutException, X(CancellationToken), TryX(..., TimeSpan) returning bool.
public sealed partial class ShmConnection
{
    private ArrayBufferWriter<byte>? _serializeBuffer;

    /// <summary>Serializes <paramref name="value"/> and sends it; the serializer defaults to <see cref="ShmSerializers.GetDefault{T}"/>.</summary>
    /// <exception cref="ArgumentException">No serializer was given and <typeparamref name="T"/> has no built-in one, or the encoding is too long.</exception>
    /// <inheritdoc cref="Send(ReadOnlySpan{byte})" path="/exception"/>
    public void Send<T>(T value, IShmSerializer<T>? serializer = null) => SendSerialized(value, serializer, long.MaxValue, CancellationToken.None);

    /// <summary>Serializes <paramref name="value"/> and sends it, waiting while the pipe is full until <paramref name="cancellationToken"/> is cancelled.</summary>
    /// <exception cref="OperationCanceledException">Cancelled before the message could be written; nothing was sent.</exception>
    /// <inheritdoc cref="Send{T}(T, IShmSerializer{T})" path="/exception"/>
    public void Send<T>(T value, CancellationToken cancellationToken, IShmSerializer<T>? serializer = null) =>
        SendSerialized(value, serializer, long.MaxValue, cancellationToken);

    /// <summary>Serializes <paramref name="value"/> and sends it, waiting up to <paramref name="timeout"/> for room.</summary>
    /// <exception cref="TimeoutException">The pipe stayed full for <paramref name="timeout"/>; nothing was sent.</exception>
    /// <inheritdoc cref="Send{T}(T, IShmSerializer{T})" path="/exception"/>
    public void Send<T>(T value, TimeSpan timeout, IShmSerializer<T>? serializer = null)
    {
        if (!TrySend(value, timeout, serializer))
        {
            ThrowTimeout("full", timeout);
        }
    }

    /// <summary>Serializes <paramref name="value"/> and sends it if there is room within <paramref name="timeout"/>; false (nothing sent) when the time ran out.</summary>
    /// <inheritdoc cref="Send{T}(T, IShmSerializer{T})" path="/exception"/>
    public bool TrySend<T>(T value, TimeSpan timeout, IShmSerializer<T>? serializer = null) =>
        SendSerialized(value, serializer, WaitSignal.DeadlineFrom(timeout), CancellationToken.None);

    /// <summary>Sends <paramref name="message"/> as itself (not through the typed overloads), waiting until <paramref name="cancellationToken"/> is cancelled.</summary>
    /// <inheritdoc cref="Send(ReadOnlySpan{byte}, CancellationToken)" path="/exception"/>
    public void Send(byte[] message, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(message);
        Send(message.AsSpan(), cancellationToken);
    }

    /// <summary>Sends <paramref name="message"/> as itself (not through the typed overloads), waiting up to <paramref name="timeout"/> for room.</summary>
    /// <inheritdoc cref="Send(ReadOnlySpan{byte}, TimeSpan)" path="/exception"/>
    public void Send(byte[] message, TimeSpan timeout)
    {
        ArgumentNullException.ThrowIfNull(message);
        Send(message.AsSpan(), timeout);
    }

    /// <summary>Sends <paramref name="message"/> as itself (not through the typed overloads) if there is room within <paramref name="timeout"/>.</summary>
    /// <inheritdoc cref="TrySend(ReadOnlySpan{byte}, TimeSpan)" path="/exception"/>
    public bool TrySend(byte[] message, TimeSpan timeout)
    {
        ArgumentNullException.ThrowIfNull(message);
        return TrySend(message.AsSpan(), timeout);
    }

    /// <summary>
    /// Receives the next message and deserializes it straight from the pipe (no copy). The message is
    /// consumed even when deserializing fails.
    /// </summary>
    /// <exception cref="ArgumentException">No serializer was given and <typeparamref name="T"/> has no built-in one.</exception>
    /// <inheritdoc cref="Receive()" path="/exception"/>
    public T Receive<T>(IShmSerializer<T>? serializer = null) => Receive(CancellationToken.None, serializer);

    /// <summary>Receives and deserializes the next message, waiting until one arrives or <paramref name="cancellationToken"/> is cancelled.</summary>
    /// <exception cref="OperationCanceledException">Cancelled before a message arrived.</exception>
    /// <inheritdoc cref="Receive{T}(IShmSerializer{T})" path="/exception"/>
    public T Receive<T>(CancellationToken cancellationToken, IShmSerializer<T>? serializer = null)
    {
        ReceiveDeserialized(serializer, long.MaxValue, cancellationToken, out T? value);
        return value!;
    }

    /// <summary>Receives and deserializes the next message, waiting up to <paramref name="timeout"/> for one.</summary>
    /// <exception cref="TimeoutException">No message came within <paramref name="timeout"/>.</exception>
    /// <inheritdoc cref="Receive{T}(IShmSerializer{T})" path="/exception"/>
    public T Receive<T>(TimeSpan timeout, IShmSerializer<T>? serializer = null) =>
        TryReceive(out T? value, timeout, serializer) ? value : ThrowTimeout<T>("empty", timeout);

    /// <summary>Receives and deserializes the next message if one arrives within <paramref name="timeout"/>; false when the time ran out.</summary>
    /// <inheritdoc cref="Receive{T}(IShmSerializer{T})" path="/exception"/>
    public bool TryReceive<T>([MaybeNullWhen(false)] out T value, TimeSpan timeout, IShmSerializer<T>? serializer = null) =>
        ReceiveDeserialized(serializer, WaitSignal.DeadlineFrom(timeout), CancellationToken.None, out value);

    private bool SendSerialized<T>(T value, IShmSerializer<T>? serializer, long deadline, CancellationToken cancellationToken)
    {
        IShmSerializer<T> resolved = ShmSerializers.Resolve(serializer);
        ArrayBufferWriter<byte> buffer = Interlocked.Exchange(ref _serializeBuffer, null) ?? new ArrayBufferWriter<byte>(256);
        try
        {
            resolved.Serialize(value, buffer);
            return SendCore(buffer.WrittenSpan, deadline, cancellationToken);
        }
        finally
        {
            buffer.ResetWrittenCount();
            _serializeBuffer = buffer;
        }
    }

    private bool ReceiveDeserialized<T>(IShmSerializer<T>? serializer, long deadline, CancellationToken cancellationToken, [MaybeNullWhen(false)] out T value)
    {
        var reader = new DeserializingReader<T>(ShmSerializers.Resolve(serializer));
        return ReceiveCore<DeserializingReader<T>, T>(ref reader, deadline, cancellationToken, out value, out _);
    }
}
