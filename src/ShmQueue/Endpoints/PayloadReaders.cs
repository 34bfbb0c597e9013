using System.Buffers;
using System.Diagnostics.CodeAnalysis;

namespace ShmIpc.Endpoints;

/// <summary>
/// How a message's bytes leave a ring (queue record or pipe record) while they are still in shared memory: copied to an
/// array, into a caller's span or buffer writer, handed to a callback or deserialized. The endpoints' read paths are
/// generic over a struct reader, so each form is its own specialisation: no delegate, no boxing, no interface dispatch
/// per message.
/// </summary>
/// <typeparam name="TResult">What the reader makes of a message.</typeparam>
internal interface IPayloadReader<TResult>
{
    /// <summary>The longest message this reader takes; a longer one stays in the ring and the call throws.</summary>
    int MaxLength { get; }

    /// <summary>Consumes the payload, which is valid only during the call.</summary>
    TResult Read(ReadOnlySpan<byte> payload);
}

/// <summary>The message as a new array.</summary>
internal readonly struct ArrayReader : IPayloadReader<byte[]>
{
    public int MaxLength => int.MaxValue;

    public byte[] Read(ReadOnlySpan<byte> payload) => payload.ToArray();
}

/// <summary>The message copied into a caller's buffer (pinned by the caller for the call); returns its length.</summary>
internal readonly unsafe struct SpanReader : IPayloadReader<int>
{
    private readonly byte* _destination;

    public SpanReader(byte* destination, int length)
    {
        _destination = destination;
        MaxLength = length;
    }

    public int MaxLength { get; }

    public int Read(ReadOnlySpan<byte> payload)
    {
        // One compare and PayloadCopy: no span over the destination to build and check again. Callers have checked the
        // length already; this stays as the last guard.
        if ((uint)payload.Length > (uint)MaxLength)
        {
            ThrowTooLong(payload.Length, MaxLength);
        }

        Ring.PayloadCopy.Copy(_destination, payload);
        return payload.Length;
    }

    [DoesNotReturn]
    private static void ThrowTooLong(int length, int maxLength) =>
        throw new InvalidOperationException($"A message of {length} bytes does not fit a buffer of {maxLength} (the caller checks the length first).");
}

/// <summary>The message appended to a buffer writer; returns its length.</summary>
internal readonly struct BufferWriterReader : IPayloadReader<int>
{
    private readonly IBufferWriter<byte> _destination;

    public BufferWriterReader(IBufferWriter<byte> destination) => _destination = destination;

    public int MaxLength => int.MaxValue;

    public int Read(ReadOnlySpan<byte> payload)
    {
        _destination.Write(payload);
        return payload.Length;
    }
}

/// <summary>The message handed in place to a caller's <see cref="ShmMessageReader{TState, TResult}"/>.</summary>
internal readonly struct DelegateReader<TState, TResult> : IPayloadReader<TResult>
{
    private readonly ShmMessageReader<TState, TResult> _reader;
    private readonly TState _state;

    public DelegateReader(ShmMessageReader<TState, TResult> reader, TState state)
    {
        _reader = reader;
        _state = state;
    }

    public int MaxLength => int.MaxValue;

    public TResult Read(ReadOnlySpan<byte> payload) => _reader(payload, _state);
}

/// <summary>The message deserialized in place (no intermediate copy).</summary>
internal readonly struct DeserializingReader<T> : IPayloadReader<T>
{
    private readonly IShmSerializer<T> _serializer;

    public DeserializingReader(IShmSerializer<T> serializer) => _serializer = serializer;

    public int MaxLength => int.MaxValue;

    public T Read(ReadOnlySpan<byte> payload) => _serializer.Deserialize(payload);
}
