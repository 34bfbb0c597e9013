using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using ShmIpc.Hosting;

namespace ShmIpc.Protocol;

/// <summary>
/// The messages between a parent and its child over the child's pipe. Each message is one pipe
/// message: a kind byte, then fields. Integers are little-endian; strings and byte blocks are an int32
/// length then the bytes (strings in UTF-8); a length of -1 is null.
/// </summary>
/// <remarks>
/// <code>
/// parent -> child                                   child -> parent
///  Run     serializer, target, has-result, arg       Ready     pid
///  Init    serializer, initializer?                  Returned  outcome          (after Run)
///  Define  function id, target                       Results   chunk id, n, n x outcome
///  Chunk   chunk id, function id, n, n x arg         InitFailed error
///  Stop                                              outcome = 0, value bytes | 1, error
///  RawChunk chunk id, function id, n, args block      RawResults chunk id, n, result size, results block,
///                                                               error count, error count x (index, error)
///  InPlaceChunk chunk id, function id, input, output?, InPlaceResults chunk id, 0 | 1, index, error
///               start, n        (array = name, token)
/// error = type name, message, stack trace (the child's exception, ToString of inner ones in the stack)
/// RawChunk/RawResults: a one-argument function whose argument and result are unmanaged, under the default
/// serializer; the blocks hold the n values back to back (a failed item's slot is zeros).
/// </code>
/// </remarks>
internal enum MessageKind : byte
{
    Run = 1,
    Init = 2,
    Define = 3,
    Chunk = 4,
    Stop = 5,
    RawChunk = 6,

    /// <summary>The caller's span (a W3C trace id) of the chunk that follows: the worker's span of it is a child.</summary>
    Trace = 7,

    /// <summary>A MapInPlace or ForEachChunk chunk: bounds over shared arrays named in the message (see ShmPool.InPlace.cs).</summary>
    InPlaceChunk = 8,
    Ready = 10,
    Returned = 11,
    Results = 12,
    InitFailed = 13,
    RawResults = 14,

    /// <summary>An <see cref="InPlaceChunk"/> is done (its values are in the output array), or failed at an index.</summary>
    InPlaceResults = 15,
}

/// <summary>What a child reports about an exception: enough to rebuild a <see cref="ShmRemoteException"/>.</summary>
/// <param name="TypeName">The exception's full type name.</param>
/// <param name="Message">Its message.</param>
/// <param name="StackTrace">The child's stack trace, with inner exceptions appended.</param>
internal sealed record RemoteError(string TypeName, string Message, string StackTrace)
{
    public static RemoteError From(Exception e)
    {
        string stack = e.StackTrace ?? string.Empty;
        if (e.InnerException is not null)
        {
            stack += Environment.NewLine + " ---> " + e.InnerException;
        }

        return new RemoteError(e.GetType().FullName ?? e.GetType().Name, e.Message, stack);
    }

    public ShmRemoteException ToException() => new(TypeName, Message, StackTrace);
}

/// <summary>Builds one message. Not thread-safe; reuse with <see cref="Reset"/>.</summary>
internal sealed class MessageWriter : IBufferWriter<byte>
{
    private byte[] _buffer;
    private int _length;

    public MessageWriter()
        : this(new byte[256])
    {
    }

    /// <summary>A writer that writes into <paramref name="buffer"/> until it outgrows it (then <see cref="Buffer"/> is a new array).</summary>
    public MessageWriter(byte[] buffer)
    {
        _buffer = buffer;
    }

    /// <summary>The array written into now (the one given to the constructor, unless a write outgrew it).</summary>
    public byte[] Buffer => _buffer;

    public ReadOnlySpan<byte> Written => _buffer.AsSpan(0, _length);

    /// <summary>As <see cref="Written"/>; valid until the next write or <see cref="Reset"/>.</summary>
    public ReadOnlyMemory<byte> WrittenMemory => _buffer.AsMemory(0, _length);

    public int Length => _length;

    /// <summary>The size of the buffer now (it grows as needed).</summary>
    public int Capacity => _buffer.Length;

    public MessageWriter Reset(MessageKind kind)
    {
        _length = 0;
        WriteByte((byte)kind);
        return this;
    }

    /// <summary>Drops what was written after <paramref name="length"/> (an item that failed half-way).</summary>
    public void Truncate(int length) => _length = Math.Min(length, _length);

    public void WriteByte(byte value)
    {
        GetSpan(1)[0] = value;
        _length++;
    }

    public void WriteInt32(int value)
    {
        BinaryPrimitives.WriteInt32LittleEndian(GetSpan(4), value);
        _length += 4;
    }

    public void WriteInt64(long value)
    {
        BinaryPrimitives.WriteInt64LittleEndian(GetSpan(8), value);
        _length += 8;
    }

    public void WriteString(string? value)
    {
        if (value is null)
        {
            WriteInt32(-1);
            return;
        }

        Span<byte> span = GetSpan(4 + Encoding.UTF8.GetMaxByteCount(value.Length));
        int written = Encoding.UTF8.GetBytes(value, span[4..]);
        BinaryPrimitives.WriteInt32LittleEndian(span, written);
        _length += 4 + written;
    }

    public void WriteBytes(ReadOnlySpan<byte> value)
    {
        WriteInt32(value.Length);
        value.CopyTo(GetSpan(value.Length));
        _length += value.Length;
    }

    /// <summary>Reserves a 4-byte length, lets <paramref name="write"/> append the body, then fills the length in.</summary>
    public void WriteLengthPrefixed<TState>(TState state, Action<TState, IBufferWriter<byte>> write)
    {
        int at = _length;
        WriteInt32(0);
        write(state, this);
        BinaryPrimitives.WriteInt32LittleEndian(_buffer.AsSpan(at, 4), _length - at - 4);
    }

    public void WriteTarget(TargetMethod target)
    {
        WriteString(target.AssemblyPath);
        WriteString(target.AssemblyName);
        Span<byte> guid = stackalloc byte[16];
        target.ModuleVersionId.TryWriteBytes(guid);
        guid.CopyTo(GetSpan(16));
        _length += 16;
        WriteInt32(target.MetadataToken);
        WriteString(target.DisplayName);
    }

    public void WriteError(RemoteError error)
    {
        WriteString(error.TypeName);
        WriteString(error.Message);
        WriteString(error.StackTrace);
    }

    public void Advance(int count)
    {
        if ((uint)count > (uint)(_buffer.Length - _length))
        {
            throw new ArgumentOutOfRangeException(nameof(count));
        }

        _length += count;
    }

    public Memory<byte> GetMemory(int sizeHint = 0)
    {
        Grow(sizeHint);
        return _buffer.AsMemory(_length);
    }

    public Span<byte> GetSpan(int sizeHint = 0)
    {
        Grow(sizeHint);
        return _buffer.AsSpan(_length);
    }

    private void Grow(int sizeHint)
    {
        int need = _length + Math.Max(sizeHint, 1);
        if (need > _buffer.Length)
        {
            Array.Resize(ref _buffer, Math.Max(need, _buffer.Length * 2));
        }
    }
}

/// <summary>Reads one message. Every length is checked against what is left: a bad peer gets an <see cref="InvalidDataException"/>.</summary>
internal ref struct MessageReader
{
    private readonly ReadOnlyMemory<byte> _message;

    /// <summary><see cref="_message"/>'s span, taken once: <see cref="ReadOnlyMemory{T}.Span"/> costs a few type checks per read.</summary>
    private readonly ReadOnlySpan<byte> _span;
    private int _position;

    public MessageReader(ReadOnlyMemory<byte> message)
    {
        _message = message;
        _span = message.Span;
        _position = 0;
    }

    public MessageKind ReadKind() => (MessageKind)ReadByte();

    public byte ReadByte()
    {
        Need(1);
        return _span[_position++];
    }

    public int ReadInt32()
    {
        Need(4);
        int value = BinaryPrimitives.ReadInt32LittleEndian(_span[_position..]);
        _position += 4;
        return value;
    }

    public long ReadInt64()
    {
        Need(8);
        long value = BinaryPrimitives.ReadInt64LittleEndian(_span[_position..]);
        _position += 8;
        return value;
    }

    public string? ReadString()
    {
        int length = ReadInt32();
        if (length == -1)
        {
            return null;
        }

        Need(length);
        string value = Encoding.UTF8.GetString(_span.Slice(_position, length));
        _position += length;
        return value;
    }

    public string ReadRequiredString() => ReadString() ?? throw new InvalidDataException("A required string is null.");

    public ReadOnlyMemory<byte> ReadBytes()
    {
        int length = ReadInt32();
        Need(length);
        ReadOnlyMemory<byte> value = _message.Slice(_position, length);
        _position += length;
        return value;
    }

    public TargetMethod ReadTarget()
    {
        string path = ReadRequiredString();
        string name = ReadRequiredString();
        Need(16);
        var mvid = new Guid(_span.Slice(_position, 16));
        _position += 16;
        int token = ReadInt32();
        string display = ReadRequiredString();
        return new TargetMethod(path, name, mvid, token, display);
    }

    public RemoteError ReadError() => new(ReadRequiredString(), ReadRequiredString(), ReadRequiredString());

    private readonly void Need(int count)
    {
        if (count < 0 || _span.Length - _position < count)
        {
            throw new InvalidDataException($"A ShmPool message ends early: {count} more bytes needed at offset {_position} of {_span.Length}.");
        }
    }
}
